// Package source is the collection stage: it polls a Cybereason console on a
// schedule and publishes every sensor, MalOp, malware alert and policy it
// returns, unchanged, to the raw Kafka topics.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// CloudEvents types of the raw events. Each names the shape of its value.
const (
	// SensorEventType is a sensor object from /rest/sensors/query.
	SensorEventType = "com.oversoc.cybereason.sensor.raw"
	// MalopEventType is a MalopInboxModel object from /rest/detection/inbox.
	MalopEventType = "com.oversoc.cybereason.malop.raw"
	// MalopV2EventType is a MalOp object from /rest/mmng/v2/malops.
	MalopV2EventType = "com.oversoc.cybereason.malop.v2.raw"
	// DetailedMalopEventType is a DetailedMalop: a MalOp with its details.
	DetailedMalopEventType = "com.oversoc.cybereason.malop.detailed.raw"
	// MalwareEventType is a malware alert object from /rest/malware/query.
	MalwareEventType = "com.oversoc.cybereason.malware.raw"
	// PolicyEventType is a policy list item from /rest/policies.
	PolicyEventType = "com.oversoc.cybereason.policy.raw"
)

// Feed names, as in Config.Feeds.
const (
	FeedSensors  = "sensors"
	FeedMalops   = "malops"
	FeedMalware  = "malware"
	FeedPolicies = "policies"
)

// AllFeeds lists every feed the stage can collect.
func AllFeeds() []string { return []string{FeedSensors, FeedMalops, FeedMalware, FeedPolicies} }

// Client is the part of the Cybereason API client the stage uses.
type Client interface {
	// ReadSensorInventory calls fn once per page of the sensor inventory, in
	// order, and reports whether the pages may have skipped a sensor.
	ReadSensorInventory(ctx context.Context, fn func(cybereason.SensorPage) error) (cybereason.InventoryCheck, error)
	// MalopsV2 returns every MalOp updated between from and to through the
	// MalOp management API, or an error wrapping cybereason.ErrNotSupported.
	MalopsV2(ctx context.Context, from, to time.Time) ([]cybereason.Malop, error)
	// MalopsInbox returns every MalOp active between from and to.
	MalopsInbox(ctx context.Context, from, to time.Time) ([]cybereason.Malop, error)
	// EDRMalopDetails and EPPMalopDetails return the details of one MalOp.
	EDRMalopDetails(ctx context.Context, guid string) (json.RawMessage, error)
	EPPMalopDetails(ctx context.Context, guid string) (json.RawMessage, error)
	// QueryMalware calls fn once per page of the malware alerts between from and to.
	QueryMalware(ctx context.Context, from, to time.Time, fn func(cybereason.MalwarePage) error) error
	// Policies returns every security policy.
	Policies(ctx context.Context) ([]cybereason.Policy, error)
}

// Publisher delivers messages to Kafka. Write returns nil only when every
// message was acknowledged.
type Publisher interface {
	Write(ctx context.Context, msgs ...kafka.Message) error
}

// PartitionCounter returns the partition count of a Kafka topic.
type PartitionCounter interface {
	Partitions(ctx context.Context, topic string) (int, error)
}

// CheckpointStore keeps the cursors of the alert feeds across restarts. The
// stage's keys are "<tenant>/<feed>", one per console and feed.
type CheckpointStore interface {
	// Load returns the cursor last saved under key. found is false when
	// there is none, because it was never saved or was deleted.
	Load(ctx context.Context, key string) (cursor time.Time, found bool, err error)
	// Save stores cursor under key and returns nil only once it is durable.
	Save(ctx context.Context, key string, cursor time.Time) error
}

// Config holds the stage settings.
type Config struct {
	// ConsoleURL is the console base URL; it prefixes the events' ce_source. Required.
	ConsoleURL string
	// Tenant is the tenant id carried in the ce_tenant header. Required.
	Tenant string

	// Feeds lists the feeds to collect. Default: AllFeeds().
	Feeds []string

	// The raw topics. Each is required when its feed is collected.
	SensorsTopic  string
	MalopsTopic   string
	MalwareTopic  string
	PoliciesTopic string

	// The schedule used by Run. Each is required when its feed is collected.
	SensorsInterval  time.Duration
	MalopsInterval   time.Duration
	MalwareInterval  time.Duration
	PoliciesInterval time.Duration

	// MalopsWindow and MalwareWindow set the data-time windows of the alert feeds.
	MalopsWindow  Window
	MalwareWindow Window

	// MalopDetails fetches the details of every MalOp (from /rest/crimes/unified
	// for EDR MalOps, /rest/detection/details for EPP ones) and publishes each
	// MalOp with them as a DetailedMalop.
	MalopDetails bool

	// Checkpoints stores the alert feeds' cursors, so a new stage for the same
	// tenant resumes where the last one stopped. nil keeps the cursors in
	// memory only: each new stage starts at the windows' Start or Lookback.
	Checkpoints CheckpointStore

	// Partitions returns the partition count of SensorsTopic, to which every
	// complete inventory writes one end event per partition. nil writes
	// none, and dedupe then never marks an asset removed.
	Partitions PartitionCounter

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// ObserveRun, when set, is called after every scheduled collection with
	// its feed, its duration and its error, nil when it succeeded. Optional.
	ObserveRun func(feed string, duration time.Duration, err error)
}

// collects reports whether the feed is enabled.
func (c *Config) collects(feed string) bool { return slices.Contains(c.Feeds, feed) }

func (c *Config) validate() error {
	var problems []string
	require := func(ok bool, problem string) {
		if !ok {
			problems = append(problems, problem)
		}
	}

	require(c.ConsoleURL != "", "ConsoleURL is empty")
	require(c.Tenant != "", "Tenant is empty")
	require(len(c.Feeds) > 0, "Feeds is empty")
	for _, feed := range c.Feeds {
		require(slices.Contains(AllFeeds(), feed), fmt.Sprintf("unknown feed %q", feed))
	}

	feeds := []struct {
		name     string
		topic    string
		interval time.Duration
	}{
		{FeedSensors, c.SensorsTopic, c.SensorsInterval},
		{FeedMalops, c.MalopsTopic, c.MalopsInterval},
		{FeedMalware, c.MalwareTopic, c.MalwareInterval},
		{FeedPolicies, c.PoliciesTopic, c.PoliciesInterval},
	}
	for _, feed := range feeds {
		if !c.collects(feed.name) {
			continue
		}
		require(feed.topic != "", feed.name+" topic is empty")
		require(feed.interval > 0, fmt.Sprintf("%s interval must be positive, got %s", feed.name, feed.interval))
	}
	if c.collects(FeedMalops) {
		problems = append(problems, c.MalopsWindow.problems(FeedMalops)...)
	}
	if c.collects(FeedMalware) {
		problems = append(problems, c.MalwareWindow.problems(FeedMalware)...)
	}

	if len(problems) > 0 {
		return fmt.Errorf("invalid source config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Stage collects the sensor inventory, MalOps, malware alerts and policies.
type Stage struct {
	cfg       Config
	client    Client
	publisher Publisher
	logger    *slog.Logger

	// Each mutex serializes the collections of one alert feed, so its cursor
	// moves in order.
	malopsMu      sync.Mutex
	malopsCursor  cursor
	noMalopsV2    bool // the console lacks the MalOp management API
	malwareMu     sync.Mutex
	malwareCursor cursor

	statsMu sync.Mutex
	stats   Stats
}

// Stats counts what the stage did since it was created. Published counts
// include events that went to a dead-letter topic because the broker
// rejected them.
type Stats struct {
	Inventories       int // sensor inventories read to the end, incomplete ones included
	SensorsPublished  int
	MalopPolls        int // complete MalOp polls
	MalopsPublished   int
	MalopDetailErrors int // MalOps published without details because fetching them failed
	MalwarePolls      int
	MalwarePublished  int
	PolicyPolls       int
	PoliciesPublished int
	DeadLettered      int
	FailedRuns        int
	// IncompleteInventories counts the inventories read to the end that may
	// have skipped a sensor, so they published no inventory end event.
	IncompleteInventories IncompleteInventories
}

// IncompleteInventories counts incomplete sensor inventories by the reason
// of their cybereason.InventoryCheck.
type IncompleteInventories struct {
	SeamGap    int // cybereason.GapSeam
	EndedEarly int // cybereason.GapEndedEarly
}

// New returns a stage. A nil logger discards logs.
func New(cfg Config, client Client, publisher Publisher, logger *slog.Logger) (*Stage, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Feeds == nil {
		cfg.Feeds = AllFeeds()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if client == nil || publisher == nil {
		return nil, errors.New("invalid source config: client and publisher are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("stage", "source")

	cfg.ConsoleURL = strings.TrimSuffix(cfg.ConsoleURL, "/")
	return &Stage{
		cfg:           cfg,
		client:        client,
		publisher:     publisher,
		logger:        logger,
		malopsCursor:  newCursor(cfg, FeedMalops, cfg.MalopsWindow, logger),
		malwareCursor: newCursor(cfg, FeedMalware, cfg.MalwareWindow, logger),
	}, nil
}

func newCursor(cfg Config, feed string, window Window, logger *slog.Logger) cursor {
	return cursor{
		feed:   feed,
		window: window,
		logger: logger,
		store:  cfg.Checkpoints,
		key:    cfg.Tenant + "/" + feed,
	}
}

// Stats returns a snapshot of the counters.
func (s *Stage) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.stats
}

func (s *Stage) count(update func(*Stats)) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	update(&s.stats)
}
