// Package dedupe is the pipeline stage that republishes a record only when
// its content changed: it compares each record's fingerprint with the one
// last forwarded for the same output topic and key, and drops the record
// when they are equal.
//
// The stage writes each record to the output partition with the number of
// its input partition. With input and output topics of the same partition
// count, the state of the keys of input partition p is then output partition
// p itself, which Restore reads back when p is assigned. Output and state
// cannot disagree, even when the process dies between two writes.
package dedupe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// DefaultResyncInterval is the resync interval that the connector uses.
const DefaultResyncInterval = 24 * time.Hour

// HeaderInputOffset is the header that carries, on each output record, the
// offset of the input record it was forwarded from. Restore reads it back.
// The Stage adds it only when Config.Brokers is set.
const HeaderInputOffset = "dedupe_input_offset"

// DefaultRoutes returns the default input topic -> output topic routes.
func DefaultRoutes() map[string]string {
	return map[string]string{
		"oversoc.normalized.assets":   "oversoc.assets",
		"oversoc.normalized.findings": "oversoc.findings",
	}
}

// Config sets up a Stage.
type Config struct {
	// Routes maps each input topic to its output topic. Nil means
	// DefaultRoutes.
	Routes map[string]string
	// Fingerprint returns the content hash of a record read from topic,
	// without its volatile fields. Required. It must be safe for concurrent
	// use, because PrepareBatch calls it on several goroutines.
	Fingerprint func(topic string, msg kafka.Message) (string, error)
	// State stores the last forwarded fingerprints. Nil means a new
	// in-memory state, lost when the process stops unless Restore rebuilds
	// it from the output topics.
	State State
	// ResyncInterval is the time after which an unchanged record is
	// forwarded again, so that consumers see the entity is still there. The
	// re-emitted record has a salted ce_id (see Process). Zero disables
	// resync.
	ResyncInterval time.Duration
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// Brokers are the bootstrap addresses that Restore and CheckPartitions
	// read the topics from. Required for them only. When set, each output
	// carries the HeaderInputOffset header.
	Brokers []string
	// Dialer carries TLS and SASL settings for Restore and CheckPartitions.
	// Optional.
	Dialer *kafka.Dialer
	// Assets turns on the asset lifecycle and the security-state records
	// for one route (see AssetConfig). Optional.
	Assets *AssetConfig
}

// Stage is the dedupe processor for a pipeline.Runner. It implements
// pipeline.Processor and pipeline.BatchCommitter, and serves one Runner.
type Stage struct {
	routes      map[string]string
	fingerprint func(string, kafka.Message) (string, error)
	resync      time.Duration
	now         func() time.Time
	brokers     []string
	dialer      *kafka.Dialer
	logger      *slog.Logger

	mu    sync.Mutex
	state State
	// keys contains the state of each key per output partition, besides its
	// fingerprint.
	keys map[topicPartition]map[string]keyInfo
	undo []change // state changes of the current batch, oldest first

	assets *AssetConfig // nil when the asset features are off
	// assetState contains the lifecycle state of each output partition of
	// the asset route.
	assetState map[topicPartition]*partitionAssets
	// undoSteps undo the asset state changes of the current batch, oldest
	// first.
	undoSteps []func()

	preparedMu sync.Mutex
	prepared   map[inputPosition]prepared // fingerprints of the current batch, see PrepareBatch

	in         atomic.Int64
	forwarded  atomic.Int64
	unchanged  atomic.Int64
	stalled    atomic.Int64
	tombstones atomic.Int64
	resynced   atomic.Int64
	restored   atomic.Int64

	removed             atomic.Int64
	securityStates      atomic.Int64
	securityStateErrors atomic.Int64
	inventoryEnds       atomic.Int64
	incompleteEnds      atomic.Int64
	endsIgnored         atomic.Int64
	invalidEnds         atomic.Int64
}

// topicPartition is an output topic's partition.
type topicPartition struct {
	topic     string
	partition int
}

// keyInfo is the state of one key of an output partition besides its
// fingerprint.
type keyInfo struct {
	// emitted is the time of the key's last forward, for resync.
	emitted time.Time
	// published is the input offset of the key's last output record that
	// Restore read, or -1. An input record of the key at or before it is
	// older than what the output already shows, so Process drops it. That
	// keeps a replay of uncommitted input from publishing a key's older
	// contents again after its newer ones.
	published int64
	// eventTime is the ce_time of the key's last forwarded record: the poll
	// time of an asset, the update time of a finding. Zero when unknown.
	eventTime time.Time
}

// change is the state of one (topic, partition, key) before a batch changed
// it.
type change struct {
	topic, key  string
	partition   int
	fingerprint string
	existed     bool
	info        keyInfo
	hadInfo     bool
}

// Stats are counters of Process outcomes since the Stage was created. A batch
// rolled back and consumed again is counted again.
type Stats struct {
	// In is the count of records processed, errors included.
	In int64
	// Forwarded is the count of records forwarded, tombstones included.
	Forwarded int64
	// Unchanged is the count of records dropped because their fingerprint
	// equals the last one forwarded for their key, or because Restore found
	// a newer output record of their key.
	Unchanged int64
	// Stale is the count of records dropped because their key's last
	// forwarded record has a later ce_time, as in a replayed batch.
	Stale int64
	// Tombstones is the count of tombstones (records without a value)
	// forwarded.
	Tombstones int64
	// Resynced is the count of unchanged records forwarded again because
	// the resync interval had passed since the last forward of their key.
	Resynced int64
	// Restored is the count of output records read by Restore.
	Restored int64

	// Removed is the count of assets published as removed, each followed by
	// a tombstone (counted in Tombstones).
	Removed int64
	// SecurityStates is the count of security-state records published, and
	// SecurityStateErrors the count of those that could not be built.
	SecurityStates, SecurityStateErrors int64
	// InventoryEnds is the count of inventory end events applied as
	// complete inventories, IncompleteInventories the count of those not seen
	// whole on their partition, ReplayedInventoryEnds the count ignored as
	// replays, and InvalidInventoryEnds the count of malformed ones, which
	// were dead-lettered.
	InventoryEnds, IncompleteInventories, ReplayedInventoryEnds, InvalidInventoryEnds int64
}

// New validates cfg and returns a Stage. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Stage, error) {
	if cfg.Routes == nil {
		cfg.Routes = DefaultRoutes()
	}
	if cfg.Assets != nil {
		// validate sets the defaults in the copy, not in the caller's value.
		assets := *cfg.Assets
		cfg.Assets = &assets
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.State == nil {
		cfg.State = NewMemoryState()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	routes := make(map[string]string, len(cfg.Routes))
	for in, out := range cfg.Routes {
		routes[in] = out
	}
	return &Stage{
		assets:      cfg.Assets,
		assetState:  make(map[topicPartition]*partitionAssets),
		routes:      routes,
		fingerprint: cfg.Fingerprint,
		resync:      cfg.ResyncInterval,
		now:         cfg.Now,
		brokers:     append([]string(nil), cfg.Brokers...),
		dialer:      cfg.Dialer,
		state:       cfg.State,
		keys:        make(map[topicPartition]map[string]keyInfo),
		logger:      logger,
	}, nil
}

func (cfg *Config) validate() error {
	var errs []error
	if cfg.Fingerprint == nil {
		errs = append(errs, errors.New("fingerprint: required"))
	}
	if len(cfg.Routes) == 0 {
		errs = append(errs, errors.New("routes: at least one is required"))
	}
	if cfg.ResyncInterval < 0 {
		errs = append(errs, fmt.Errorf("resync interval: must not be negative, got %s", cfg.ResyncInterval))
	}
	inputOf := make(map[string]string, len(cfg.Routes))
	for in, out := range cfg.Routes {
		// Restore rebuilds the state of output partition p for one input
		// partition p, so two inputs must not share an output topic.
		if other, shared := inputOf[out]; shared && len(cfg.Brokers) > 0 {
			errs = append(errs, fmt.Errorf("routes: inputs %q and %q share the output topic %q, which Restore cannot rebuild for each input", min(in, other), max(in, other), out))
		}
		inputOf[out] = in
		switch {
		case in == "" || out == "":
			errs = append(errs, fmt.Errorf("routes: empty topic name in route %q -> %q", in, out))
		case cfg.Routes[out] != "":
			errs = append(errs, fmt.Errorf("routes: output topic %q of input %q is also an input topic, which would feed the stage its own output", out, in))
		}
	}
	if cfg.Assets != nil {
		errs = append(errs, cfg.Assets.validate(cfg.Routes)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid dedupe config: %w", errors.Join(errs...))
	}
	return nil
}

// Stats returns the stage's counters. It is safe for concurrent use.
func (s *Stage) Stats() Stats {
	return Stats{
		In:         s.in.Load(),
		Forwarded:  s.forwarded.Load(),
		Unchanged:  s.unchanged.Load(),
		Stale:      s.stalled.Load(),
		Tombstones: s.tombstones.Load(),
		Resynced:   s.resynced.Load(),
		Restored:   s.restored.Load(),

		Removed:               s.removed.Load(),
		SecurityStates:        s.securityStates.Load(),
		SecurityStateErrors:   s.securityStateErrors.Load(),
		InventoryEnds:         s.inventoryEnds.Load(),
		IncompleteInventories: s.incompleteEnds.Load(),
		ReplayedInventoryEnds: s.endsIgnored.Load(),
		InvalidInventoryEnds:  s.invalidEnds.Load(),
	}
}

// Process forwards msg to the partition of its output topic with the same
// number as its input partition. The output keeps the key, value and headers
// (plus HeaderInputOffset when Config.Brokers is set) and has the current
// time (Config.Now) as its timestamp.
//
// Process returns no message when the fingerprint equals the last one
// forwarded for the same output topic and key, unless ResyncInterval has
// passed since that forward. Then it forwards the record again with its ce_id
// header salted as "<ce_id>#resync-<epoch>", so that consumers that drop
// repeated CloudEvents ids keep it. The epoch is the count of whole resync
// intervals since the Unix epoch. It also returns no message for a record
// that is not newer than the key's last output found by Restore.
//
// A tombstone (nil value) is forwarded and clears the key's fingerprint. A
// message without a key, from a topic without a route, or whose fingerprint
// fails is an error, so the runner dead-letters it.
func (s *Stage) Process(_ context.Context, msg kafka.Message) ([]kafka.Message, error) {
	s.in.Add(1)
	out, ok := s.routes[msg.Topic]
	if !ok {
		return nil, fmt.Errorf("no dedupe route for topic %q", msg.Topic)
	}
	if len(msg.Key) == 0 {
		return nil, errors.New("record has no key")
	}
	now := s.now()
	if inventory.IsEnd(msg) {
		if !s.isAssetInput(msg) {
			s.invalidEnds.Add(1)
			return nil, fmt.Errorf("inventory end event on topic %q, which is not the asset topic of the dedupe config", msg.Topic)
		}
		return s.processInventoryEnd(msg, out, now)
	}
	return s.processRecord(msg, out, now)
}

// processRecord decides whether to forward one record to out, as Process
// describes.
func (s *Stage) processRecord(msg kafka.Message, out string, now time.Time) ([]kafka.Message, error) {
	key := string(msg.Key)
	at := topicPartition{topic: out, partition: msg.Partition}
	// The record's timestamp is its emit time, which Restore reads back.
	forward := kafka.Message{Topic: out, Partition: msg.Partition, Key: msg.Key, Value: msg.Value, Headers: msg.Headers, Time: now}
	if len(s.brokers) > 0 {
		forward.Headers = withInputOffset(msg.Headers, msg.Offset)
	}
	if s.isAssetInput(msg) {
		// The inventory id matters to this stage only.
		forward.Headers = withoutHeader(forward.Headers, inventory.HeaderID)
		if msg.Value != nil {
			s.noteSeen(at, key, msg.Headers)
		}
	}

	if s.published(at, key, msg.Offset) {
		s.unchanged.Add(1)
		s.logger.Debug("record older than the key's output before the restore; dropped", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset)
		return nil, nil
	}
	eventTime := recordTime(msg.Headers)
	if s.stale(at, key, eventTime) {
		s.stalled.Add(1)
		s.logger.Debug("record older than the key's last forwarded record; dropped", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "time", eventTime)
		return nil, nil
	}
	if msg.Value == nil {
		s.mu.Lock()
		s.recordLocked(at, key, "", false, now, eventTime)
		if s.isAssetInput(msg) {
			s.forgetAsset(at, key)
		}
		s.mu.Unlock()
		s.tombstones.Add(1)
		s.forwarded.Add(1)
		return []kafka.Message{forward}, nil
	}

	fingerprint, err := s.fingerprintOf(msg)
	if err != nil {
		return nil, fmt.Errorf("fingerprint record: %w", err)
	}
	switch s.record(at, key, fingerprint, true, now, eventTime) {
	case unchanged:
		s.unchanged.Add(1)
		s.logger.Debug("record unchanged; dropped", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "fingerprint", fingerprint)
		return nil, nil
	case resyncDue:
		forward.Headers = saltID(forward.Headers, now.UnixNano()/int64(s.resync))
		s.resynced.Add(1)
	}
	s.forwarded.Add(1)

	outs := []kafka.Message{forward}
	if s.isAssetInput(msg) {
		if state := s.trackAsset(at, key, msg, now); state != nil {
			outs = append(outs, *state)
		}
	}
	return outs, nil
}

// verdict is the decision of record about one input record.
type verdict int

const (
	changed   verdict = iota // forward: new key, new fingerprint or tombstone
	unchanged                // drop
	resyncDue                // forward again: unchanged, but the resync interval has passed
)

// record stores fingerprint and the emit time now for the key in the output
// partition, or deletes the key when present is false, and returns the
// verdict. Each change is logged for RollbackBatch.
func (s *Stage) record(at topicPartition, key, fingerprint string, present bool, now, eventTime time.Time) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordLocked(at, key, fingerprint, present, now, eventTime)
}

// recordLocked is record for a caller that holds s.mu.
func (s *Stage) recordLocked(at topicPartition, key, fingerprint string, present bool, now, eventTime time.Time) verdict {
	previous, existed := s.state.Get(at.topic, key)
	info, hadInfo := s.keys[at][key]
	v := changed
	if present && existed && previous == fingerprint {
		switch {
		case !hadInfo:
			// A fingerprint from a State filled by the caller has no emit
			// time: the resync interval starts now.
			v = unchanged
		case s.resync > 0 && now.Sub(info.emitted) >= s.resync:
			v = resyncDue
		default:
			return unchanged
		}
	}

	s.undo = append(s.undo, change{
		topic: at.topic, key: key, partition: at.partition,
		fingerprint: previous, existed: existed,
		info: info, hadInfo: hadInfo,
	})
	if present {
		s.state.Put(at.topic, key, fingerprint)
		s.setInfo(at, key, keyInfo{emitted: now, published: -1, eventTime: eventTime})
	} else {
		s.state.Delete(at.topic, key)
		s.deleteInfo(at, key)
	}
	return v
}

// stale reports whether the key's last forwarded record has a later event
// time than eventTime. An upstream stage that replays a batch after a failed
// commit sends a key's versions A, B again after B: without this check A
// would be forwarded again, then B, and consumers would see both twice.
func (s *Stage) stale(at topicPartition, key string, eventTime time.Time) bool {
	if eventTime.IsZero() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.keys[at][key]
	return ok && eventTime.Before(info.eventTime)
}

// recordTime returns a record's ce_time header, or the zero time when it is
// missing or invalid.
func recordTime(headers []kafka.Header) time.Time {
	value, ok := sink.HeaderValue(headers, sink.HeaderTime)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}
	}
	return t
}

// published reports whether the output already shows a newer record of the
// key than the input record at offset.
func (s *Stage) published(at topicPartition, key string, offset int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.keys[at][key]
	return ok && offset <= info.published
}

func (s *Stage) setInfo(at topicPartition, key string, info keyInfo) {
	keys := s.keys[at]
	if keys == nil {
		keys = make(map[string]keyInfo)
		s.keys[at] = keys
	}
	keys[key] = info
}

func (s *Stage) deleteInfo(at topicPartition, key string) {
	delete(s.keys[at], key)
}

// withInputOffset returns a copy of headers with HeaderInputOffset set to
// offset.
func withInputOffset(headers []kafka.Header, offset int64) []kafka.Header {
	out := make([]kafka.Header, 0, len(headers)+1)
	for _, h := range headers {
		if h.Key != HeaderInputOffset {
			out = append(out, h)
		}
	}
	return append(out, kafka.Header{Key: HeaderInputOffset, Value: strconv.AppendInt(nil, offset, 10)})
}

// saltID returns a copy of headers whose ce_id header ends in
// "#resync-<epoch>".
func saltID(headers []kafka.Header, epoch int64) []kafka.Header {
	salted := make([]kafka.Header, len(headers))
	copy(salted, headers)
	for i := range salted {
		if salted[i].Key == sink.HeaderID {
			salted[i].Value = fmt.Appendf(nil, "%s#resync-%d", salted[i].Value, epoch)
		}
	}
	return salted
}

// CommitBatch keeps the state changes of the batch: its outputs were
// acknowledged.
func (s *Stage) CommitBatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undo = s.undo[:0]
	s.undoSteps = s.undoSteps[:0]
}

// RollbackBatch restores the state from before the batch, so that records it
// forwarded but that were not written are forwarded again when consumed again.
func (s *Stage) RollbackBatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.undo) - 1; i >= 0; i-- {
		c := s.undo[i]
		if c.existed {
			s.state.Put(c.topic, c.key, c.fingerprint)
		} else {
			s.state.Delete(c.topic, c.key)
		}
		at := topicPartition{topic: c.topic, partition: c.partition}
		if c.hadInfo {
			s.setInfo(at, c.key, c.info)
		} else {
			s.deleteInfo(at, c.key)
		}
	}
	for i := len(s.undoSteps) - 1; i >= 0; i-- {
		s.undoSteps[i]()
	}
	s.undoSteps = s.undoSteps[:0]
	s.undo = s.undo[:0]
}
