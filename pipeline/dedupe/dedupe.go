// Package dedupe is the pipeline stage that republishes a record only when
// its content changed: it compares each record's fingerprint with the one
// last forwarded for the same output topic and key, and drops the record
// when they are equal.
package dedupe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/segmentio/kafka-go"
)

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
	// without its volatile fields. Required.
	Fingerprint func(topic string, msg kafka.Message) (string, error)
	// State stores the last forwarded fingerprints. Nil means a new
	// in-memory state, lost when the process stops.
	State State
}

// Stage is the dedupe processor for a pipeline.Runner. It implements
// pipeline.Processor and pipeline.BatchCommitter, and serves one Runner.
type Stage struct {
	routes      map[string]string
	fingerprint func(string, kafka.Message) (string, error)
	logger      *slog.Logger

	mu    sync.Mutex
	state State
	undo  []change // state changes of the current batch, oldest first

	in         atomic.Int64
	forwarded  atomic.Int64
	unchanged  atomic.Int64
	tombstones atomic.Int64
}

// change is the state of one (topic, key) before a batch changed it.
type change struct {
	topic, key  string
	fingerprint string
	existed     bool
}

// Stats are counters of Process outcomes since the Stage was created. A batch
// rolled back and consumed again is counted again.
type Stats struct {
	// In is the count of records processed, errors included.
	In int64
	// Forwarded is the count of records forwarded, tombstones included.
	Forwarded int64
	// Unchanged is the count of records dropped because their fingerprint
	// equals the last one forwarded for their key.
	Unchanged int64
	// Tombstones is the count of tombstones (records without a value)
	// forwarded.
	Tombstones int64
}

// New validates cfg and returns a Stage. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Stage, error) {
	if cfg.Routes == nil {
		cfg.Routes = DefaultRoutes()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.State == nil {
		cfg.State = NewMemoryState()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	routes := make(map[string]string, len(cfg.Routes))
	for in, out := range cfg.Routes {
		routes[in] = out
	}
	return &Stage{routes: routes, fingerprint: cfg.Fingerprint, state: cfg.State, logger: logger}, nil
}

func (cfg *Config) validate() error {
	var errs []error
	if cfg.Fingerprint == nil {
		errs = append(errs, errors.New("fingerprint: required"))
	}
	if len(cfg.Routes) == 0 {
		errs = append(errs, errors.New("routes: at least one is required"))
	}
	for in, out := range cfg.Routes {
		switch {
		case in == "" || out == "":
			errs = append(errs, fmt.Errorf("routes: empty topic name in route %q -> %q", in, out))
		case cfg.Routes[out] != "":
			errs = append(errs, fmt.Errorf("routes: output topic %q of input %q is also an input topic, which would feed the stage its own output", out, in))
		}
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
		Tombstones: s.tombstones.Load(),
	}
}

// Process forwards msg to its output topic with its key, value and headers
// unchanged. It returns no message when the fingerprint equals the last one
// forwarded for the same output topic and key. A tombstone (nil value) is
// always forwarded and clears the key's fingerprint. A message without a
// key, from a topic without a route, or whose fingerprint fails is an error,
// so the runner dead-letters it.
func (s *Stage) Process(_ context.Context, msg kafka.Message) ([]kafka.Message, error) {
	s.in.Add(1)
	out, ok := s.routes[msg.Topic]
	if !ok {
		return nil, fmt.Errorf("no dedupe route for topic %q", msg.Topic)
	}
	if len(msg.Key) == 0 {
		return nil, errors.New("record has no key")
	}
	key := string(msg.Key)
	forward := []kafka.Message{{Topic: out, Key: msg.Key, Value: msg.Value, Headers: msg.Headers}}

	if msg.Value == nil {
		s.record(out, key, "", false)
		s.tombstones.Add(1)
		s.forwarded.Add(1)
		return forward, nil
	}

	fingerprint, err := s.fingerprint(msg.Topic, msg)
	if err != nil {
		return nil, fmt.Errorf("fingerprint record: %w", err)
	}
	if !s.record(out, key, fingerprint, true) {
		s.unchanged.Add(1)
		s.logger.Debug("record unchanged; dropped", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "fingerprint", fingerprint)
		return nil, nil
	}
	s.forwarded.Add(1)
	return forward, nil
}

// record stores fingerprint for (topic, key), or deletes the entry when
// present is false, and reports whether the state changed. Each change is
// logged for RollbackBatch.
func (s *Stage) record(topic, key, fingerprint string, present bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	previous, existed := s.state.Get(topic, key)
	if existed == present && previous == fingerprint {
		return false
	}
	s.undo = append(s.undo, change{topic: topic, key: key, fingerprint: previous, existed: existed})
	if present {
		s.state.Put(topic, key, fingerprint)
	} else {
		s.state.Delete(topic, key)
	}
	return true
}

// CommitBatch keeps the state changes of the batch: its outputs were
// acknowledged.
func (s *Stage) CommitBatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undo = s.undo[:0]
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
	}
	s.undo = s.undo[:0]
}
