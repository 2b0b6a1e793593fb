// Package enrich turns raw Cybereason messages into OverSOC records: sensors into asset records,
// MalOps and malware alerts into finding records, each validated against its schema and published
// with CloudEvents headers whose id is the record's content fingerprint.
package enrich

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// Default topics of the message contract.
const (
	DefaultSensorsTopic  = "cybereason.raw.sensors"
	DefaultMalopsTopic   = "cybereason.raw.malops"
	DefaultMalwareTopic  = "cybereason.raw.malware"
	DefaultAssetsTopic   = "oversoc.normalized.assets"
	DefaultFindingsTopic = "oversoc.normalized.findings"
)

// DefaultMachineIndexSize is the default number of machine guids that a Stage remembers.
const DefaultMachineIndexSize = 100_000

// DefaultLogProvider is the default connector name in metadata.log_provider.
const DefaultLogProvider = "cybereason-connector"

// CloudEvents types (ce_type) of the raw input that Process accepts. A message without ce_type is
// read as the only, or for MalopsTopic the original, type of its topic.
const (
	// RawSensorType is a sensor object from /rest/sensors/query, on SensorsTopic.
	RawSensorType = "com.oversoc.cybereason.sensor.raw"
	// RawMalopType is a MalopInboxModel object from /rest/detection/inbox, on MalopsTopic.
	RawMalopType = "com.oversoc.cybereason.malop.raw"
	// RawMalopV2Type is a MalOp object from /rest/mmng/v2/malops, on MalopsTopic.
	RawMalopV2Type = "com.oversoc.cybereason.malop.v2.raw"
	// RawMalopDetailedType is a MalOp with its details, on MalopsTopic:
	// {"malop", "malopType", "details", "detailsEndpoint"}.
	RawMalopDetailedType = "com.oversoc.cybereason.malop.detailed.raw"
	// RawMalwareType is a malware alert object from /rest/malware/query, on MalwareTopic.
	RawMalwareType = "com.oversoc.cybereason.malware.raw"
)

// CloudEvents types of the records.
const (
	assetType   = "com.oversoc.asset.v1"
	findingType = "com.oversoc.finding.v1"
)

// maxLoggedUnknownValues caps the distinct unknown (field, value) pairs that are logged, so that a
// console sending a new value on every sensor cannot flood the log. Counting goes on past the cap.
const maxLoggedUnknownValues = 1000

// Config configures a Stage. Empty topics take the defaults of the message contract.
type Config struct {
	SensorsTopic  string // input: raw sensors, default DefaultSensorsTopic
	MalopsTopic   string // input: raw MalOps of every RawMalop*Type, default DefaultMalopsTopic
	MalwareTopic  string // input: raw malware alerts, default DefaultMalwareTopic
	AssetsTopic   string // output for records made from SensorsTopic, default DefaultAssetsTopic
	FindingsTopic string // output for records made from MalopsTopic and MalwareTopic, default DefaultFindingsTopic

	// Validator checks every record before it is returned. Required.
	Validator *schemas.Validator

	// Now returns the time written into metadata.processed_time. Default time.Now.
	Now func() time.Time

	// LogProvider names this connector in metadata.log_provider, default DefaultLogProvider.
	LogProvider string

	// ProductVersion is the version of this connector. When set, metadata.log_provider is
	// "<LogProvider>/<ProductVersion>". metadata.product describes Cybereason instead, and its
	// version comes from the sensor's consoleVersion.
	ProductVersion string

	// MachineIndexSize is the number of machine guid -> sensorId pairs kept to fill uid and
	// asset_uid of the devices of findings, default DefaultMachineIndexSize. As many pylumId ->
	// sensorId pairs are kept besides, for MalOps that name a machine by pylumId. The pairs come
	// only from sensors that this Stage has processed and live in memory, so the links are best
	// effort.
	MachineIndexSize int
}

// Stage is the enrich processor of the pipeline runner. It is safe for concurrent use.
type Stage struct {
	cfg      Config
	logger   *slog.Logger
	machines *machineIndex // machine guid -> sensorId
	pylumIDs *machineIndex // pylumId -> sensorId, for machines whose guid the sensor lacks

	sensors       atomic.Int64
	malops        atomic.Int64
	malware       atomic.Int64
	detailsFailed atomic.Int64
	rejected      atomic.Int64

	inventoryEnds        atomic.Int64
	invalidInventoryEnds atomic.Int64

	mu                  sync.Mutex
	unknownCounts       map[string]int64    // per qualified vendor field
	loggedUnknown       map[string]struct{} // field + "=" + value pairs already logged
	loggedDetailsErrors int                 // details problems logged so far, capped by maxLoggedDetailsErrors
}

// ProcessesConcurrently returns true: Process is safe for concurrent use, so the pipeline runner
// may process several messages of a batch at once. A MalOp processed at the same time as the sensor
// of its machine may then miss that sensor's id, which the machine index only links best effort.
func (s *Stage) ProcessesConcurrently() bool { return true }

// Stats are the counters of a Stage since it was created.
type Stats struct {
	Sensors  int64 // sensor messages turned into asset records
	Malops   int64 // MalOp messages of any RawMalop*Type turned into finding records
	Malware  int64 // malware alert messages turned into finding records
	Rejected int64 // messages for which Process returned an error

	// InventoryEnds counts inventory end events forwarded, and InvalidInventoryEnds those that
	// were malformed and dead-lettered (also counted in Rejected).
	InventoryEnds, InvalidInventoryEnds int64
	Machines                            int // machine guids in the index that links findings to assets

	// DetailsFailed counts detailed MalOps whose details were missing or unusable. Their finding
	// was built from the MalOp object alone.
	DetailsFailed int64

	// UnknownValues counts vendor values that no mapping recognized, per field, e.g.
	// "sensor.preventionStatus" or "malop.severity". Such values map to unknown.
	UnknownValues map[string]int64
}

// New checks cfg, applies its defaults and returns a Stage. The error names every invalid setting.
// A nil logger discards the log.
func New(cfg Config, logger *slog.Logger) (*Stage, error) {
	cfg = withDefaults(cfg)
	if err := validateConfig(cfg); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Stage{
		cfg:           cfg,
		logger:        logger,
		machines:      newMachineIndex(cfg.MachineIndexSize),
		pylumIDs:      newMachineIndex(cfg.MachineIndexSize),
		unknownCounts: make(map[string]int64),
		loggedUnknown: make(map[string]struct{}),
	}, nil
}

func withDefaults(cfg Config) Config {
	setDefault := func(value *string, def string) {
		if *value == "" {
			*value = def
		}
	}
	setDefault(&cfg.SensorsTopic, DefaultSensorsTopic)
	setDefault(&cfg.MalopsTopic, DefaultMalopsTopic)
	setDefault(&cfg.MalwareTopic, DefaultMalwareTopic)
	setDefault(&cfg.AssetsTopic, DefaultAssetsTopic)
	setDefault(&cfg.FindingsTopic, DefaultFindingsTopic)
	setDefault(&cfg.LogProvider, DefaultLogProvider)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MachineIndexSize == 0 {
		cfg.MachineIndexSize = DefaultMachineIndexSize
	}
	return cfg
}

// validTopic matches the names Kafka accepts: at most 249 of [a-zA-Z0-9._-].
func validTopic(name string) bool {
	return len(name) <= 249 && regexp.MustCompile(`^[a-zA-Z0-9._-]+$`).MatchString(name)
}

func validateConfig(cfg Config) error {
	var problems []string
	topics := []struct{ setting, name string }{
		{"SensorsTopic", cfg.SensorsTopic},
		{"MalopsTopic", cfg.MalopsTopic},
		{"MalwareTopic", cfg.MalwareTopic},
		{"AssetsTopic", cfg.AssetsTopic},
		{"FindingsTopic", cfg.FindingsTopic},
	}
	for _, topic := range topics {
		if !validTopic(topic.name) {
			problems = append(problems, fmt.Sprintf("%s %q is not a valid Kafka topic name (at most 249 of a-z A-Z 0-9 . _ -)", topic.setting, topic.name))
		}
	}
	for i, a := range topics {
		for _, b := range topics[i+1:] {
			if a.name == b.name {
				problems = append(problems, fmt.Sprintf("%s and %s are both %q; the topics must differ", a.setting, b.setting, a.name))
			}
		}
	}
	if cfg.Validator == nil {
		problems = append(problems, "Validator is required (use schemas.NewValidator)")
	}
	if cfg.MachineIndexSize < 0 {
		problems = append(problems, fmt.Sprintf("MachineIndexSize is %d, expected a positive number or 0 for the default", cfg.MachineIndexSize))
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid enrich config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Process turns one raw message into one record message: a sensor from SensorsTopic into an asset
// record for AssetsTopic, a MalOp from MalopsTopic or a malware alert from MalwareTopic into a
// finding record for FindingsTopic. On MalopsTopic the ce_type header selects the shape of the
// value (RawMalopType, RawMalopV2Type or RawMalopDetailedType). An error means the input cannot be
// processed and names what is wrong with it, such as an unsupported ce_type; the runner
// dead-letters the message. Details of a detailed MalOp that cannot be used are no error: the
// finding is built from the MalOp alone and Stats.DetailsFailed counts it. Process ignores ctx
// because it makes no blocking call apart from logging.
func (s *Stage) Process(_ context.Context, msg kafka.Message) ([]kafka.Message, error) {
	var out kafka.Message
	var err error
	switch msg.Topic {
	case s.cfg.SensorsTopic:
		if inventory.IsEnd(msg) {
			out, err = s.forwardInventoryEnd(msg)
		} else {
			out, err = s.processSensor(msg)
		}
	case s.cfg.MalopsTopic:
		out, err = s.processMalop(msg)
	case s.cfg.MalwareTopic:
		out, err = s.processMalware(msg)
	default:
		err = fmt.Errorf("enrich: no route for topic %q, expected %q, %q or %q", msg.Topic, s.cfg.SensorsTopic, s.cfg.MalopsTopic, s.cfg.MalwareTopic)
	}
	if err != nil {
		s.rejected.Add(1)
		return nil, err
	}
	return []kafka.Message{out}, nil
}

// forwardInventoryEnd checks an inventory end event and forwards it unchanged to the partition of
// AssetsTopic with the number of its input partition, which dedupe reads it from.
func (s *Stage) forwardInventoryEnd(msg kafka.Message) (kafka.Message, error) {
	end, err := inventory.Parse(msg.Value)
	if err != nil {
		s.invalidInventoryEnds.Add(1)
		return kafka.Message{}, fmt.Errorf("enrich: %w", err)
	}
	if end.Partition != msg.Partition {
		s.invalidInventoryEnds.Add(1)
		return kafka.Message{}, fmt.Errorf("enrich: inventory end event %s names partition %d but was read from partition %d", end.InventoryID, end.Partition, msg.Partition)
	}
	s.inventoryEnds.Add(1)
	return inventory.Forward(msg, s.cfg.AssetsTopic), nil
}

// processSensor makes the asset record of a sensor. The record goes to the partition of AssetsTopic
// with the number of the sensor's input partition, and keeps its inventory.HeaderID header, so
// that dedupe finds it before the inventory's end event on that partition.
func (s *Stage) processSensor(msg kafka.Message) (kafka.Message, error) {
	env, sensor, sensorID, err := readRaw(msg, RawSensorType, "sensorId")
	if err != nil {
		return kafka.Message{}, fmt.Errorf("enrich sensor: %w", err)
	}
	asset := s.mapSensor(sensor, sensorID, env, s.reportUnknown)
	out, err := s.recordMessage(schemas.KindAsset, s.cfg.AssetsTopic, assetType, asset.AssetUID, &asset, &asset.Metadata, env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("enrich sensor %q: %w", sensorID, err)
	}
	out.Partition = msg.Partition
	if id, ok := header(msg.Headers, inventory.HeaderID); ok {
		out.Headers = append(out.Headers, kafka.Header{Key: inventory.HeaderID, Value: []byte(id)})
	}
	s.machines.store(env.tenant, asset.Device.UIDAlt, sensorID)
	s.pylumIDs.store(env.tenant, sensor.text("pylumId"), sensorID)
	s.sensors.Add(1)
	return out, nil
}

// readRaw parses the headers and value of a raw message and checks that the value's id field is set
// and equals the message key.
func readRaw(msg kafka.Message, wantType, idField string) (envelope, vendorObject, string, error) {
	env, err := parseEnvelope(msg.Headers, wantType)
	if err != nil {
		return envelope{}, nil, "", err
	}
	object, err := decodeVendorObject(msg.Value)
	if err != nil {
		return envelope{}, nil, "", err
	}
	id := object.text(idField)
	if err := checkKey(msg.Key, idField, id); err != nil {
		return envelope{}, nil, "", err
	}
	return env, object, id, nil
}

// metadata returns the record metadata without its uid. consoleVersion is the Cybereason version,
// "" when unknown.
func (s *Stage) metadata(env envelope, consoleVersion string) schemas.Metadata {
	logProvider := s.cfg.LogProvider
	if s.cfg.ProductVersion != "" {
		logProvider += "/" + s.cfg.ProductVersion
	}
	return schemas.Metadata{
		Version:       schemas.OCSFVersion,
		Product:       schemas.Product{Name: productName, VendorName: vendorName, Version: consoleVersion},
		TenantUID:     env.tenant,
		ProcessedTime: s.cfg.Now().UnixMilli(),
		LogProvider:   logProvider,
	}
}

// reportUnknown counts a vendor value that no mapping recognized and logs the first sight of each
// (field, value) pair.
func (s *Stage) reportUnknown(field, value string) {
	s.mu.Lock()
	s.unknownCounts[field]++
	pair := field + "=" + value
	_, logged := s.loggedUnknown[pair]
	firstSight := !logged && len(s.loggedUnknown) < maxLoggedUnknownValues
	if firstSight {
		s.loggedUnknown[pair] = struct{}{}
	}
	s.mu.Unlock()

	if firstSight {
		s.logger.Warn("unrecognized vendor value, record field set to unknown", "field", field, "value", truncate(value, 100))
	}
}

// truncate shortens s to at most max runes.
func truncate(s string, max int) string {
	runes := []rune(s)
	if len(runes) <= max {
		return s
	}
	return string(runes[:max]) + "..."
}

// Stats returns a snapshot of the counters.
func (s *Stage) Stats() Stats {
	stats := Stats{
		Sensors:       s.sensors.Load(),
		Malops:        s.malops.Load(),
		Malware:       s.malware.Load(),
		DetailsFailed: s.detailsFailed.Load(),
		Rejected:      s.rejected.Load(),

		InventoryEnds:        s.inventoryEnds.Load(),
		InvalidInventoryEnds: s.invalidInventoryEnds.Load(),
		Machines:             s.machines.len(),
		UnknownValues:        make(map[string]int64),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for field, count := range s.unknownCounts {
		stats.UnknownValues[field] = count
	}
	return stats
}
