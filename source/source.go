// Package source is the collection stage: it polls a Cybereason console on a
// schedule and publishes every sensor and MalOp it returns, unchanged, to the
// raw Kafka topics.
package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// CloudEvents types of the raw events.
const (
	SensorEventType = "com.oversoc.cybereason.sensor.raw"
	MalopEventType  = "com.oversoc.cybereason.malop.raw"
)

// Client is the part of the Cybereason API client the stage uses.
type Client interface {
	// QuerySensors calls fn once per page of the sensor inventory, in order.
	QuerySensors(ctx context.Context, fn func(cybereason.SensorPage) error) error
	// MalopsInbox returns every MalOp active between from and to.
	MalopsInbox(ctx context.Context, from, to time.Time) ([]cybereason.Malop, error)
}

// Publisher delivers messages to Kafka. Write returns nil only when every
// message was acknowledged.
type Publisher interface {
	Write(ctx context.Context, msgs ...kafka.Message) error
}

// Config holds the stage settings.
type Config struct {
	// ConsoleURL is the console base URL; it prefixes the events' ce_source. Required.
	ConsoleURL string
	// Tenant is the tenant id carried in the ce_tenant header. Required.
	Tenant string

	// SensorsTopic and MalopsTopic receive the raw events. Required.
	SensorsTopic string
	MalopsTopic  string

	// SensorsInterval and MalopsInterval are the schedule used by Run. Required.
	SensorsInterval time.Duration
	MalopsInterval  time.Duration

	// MalopsLookback sets the start of the first MalOp window, before now.
	// Required unless MalopsStart is set.
	MalopsLookback time.Duration
	// MalopsStart, when not zero, is the start of the first MalOp window instead.
	MalopsStart time.Time
	// MalopsOverlap is re-read before the cursor of every later window. Default: 0.
	MalopsOverlap time.Duration

	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

func (c *Config) validate() error {
	var problems []string
	require := func(ok bool, problem string) {
		if !ok {
			problems = append(problems, problem)
		}
	}

	require(c.ConsoleURL != "", "ConsoleURL is empty")
	require(c.Tenant != "", "Tenant is empty")
	require(c.SensorsTopic != "", "SensorsTopic is empty")
	require(c.MalopsTopic != "", "MalopsTopic is empty")
	require(c.SensorsInterval > 0, fmt.Sprintf("SensorsInterval must be positive, got %s", c.SensorsInterval))
	require(c.MalopsInterval > 0, fmt.Sprintf("MalopsInterval must be positive, got %s", c.MalopsInterval))
	require(c.MalopsLookback > 0 || !c.MalopsStart.IsZero(), "MalopsLookback must be positive when MalopsStart is not set")
	require(c.MalopsOverlap >= 0, fmt.Sprintf("MalopsOverlap must not be negative, got %s", c.MalopsOverlap))

	if len(problems) > 0 {
		return fmt.Errorf("invalid source config: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Stage collects the sensor inventory and MalOps.
type Stage struct {
	cfg       Config
	client    Client
	publisher Publisher
	logger    *slog.Logger

	// malopsMu serializes MalOp collections, so the cursor moves in order.
	malopsMu sync.Mutex
	// malopsCursor is the newest MalOp lastUpdateTime delivered so far.
	malopsCursor time.Time

	statsMu sync.Mutex
	stats   Stats
}

// Stats counts what the stage did since it was created.
type Stats struct {
	Inventories      int // complete sensor inventories
	SensorsPublished int // on the raw topic or, when rejected there, its dead-letter topic
	MalopPolls       int // complete MalOp polls
	MalopsPublished  int // on the raw topic or, when rejected there, its dead-letter topic
	DeadLettered     int
	FailedRuns       int
}

// New returns a stage. A nil logger discards logs.
func New(cfg Config, client Client, publisher Publisher, logger *slog.Logger) (*Stage, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
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

	cfg.ConsoleURL = strings.TrimSuffix(cfg.ConsoleURL, "/")
	return &Stage{cfg: cfg, client: client, publisher: publisher, logger: logger.With("stage", "source")}, nil
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

// InventoryReport describes one sensor inventory.
type InventoryReport struct {
	Pages    int
	Sensors  int
	Duration time.Duration
}

// CollectSensors reads the whole sensor inventory and publishes one message
// per sensor, page by page, so memory stays bounded by one page. On error the
// sensors of the pages already published stay published.
func (s *Stage) CollectSensors(ctx context.Context) (InventoryReport, error) {
	start := s.cfg.Now()
	var report InventoryReport

	err := s.client.QuerySensors(ctx, func(page cybereason.SensorPage) error {
		msgs := make([]kafka.Message, 0, len(page.Sensors))
		for _, sensor := range page.Sensors {
			msgs = append(msgs, s.sensorMessage(sensor, start))
		}
		if err := s.publish(ctx, msgs); err != nil {
			return fmt.Errorf("publish sensors page %d: %w", page.Index, err)
		}

		report.Pages++
		report.Sensors += len(msgs)
		s.count(func(st *Stats) { st.SensorsPublished += len(msgs) })
		s.logger.Debug("sensors page published", "page", page.Index, "sensors", len(msgs), "total_results", page.TotalResults)
		return nil
	})
	report.Duration = s.cfg.Now().Sub(start)
	if err != nil {
		return report, fmt.Errorf("collect sensors: %w", err)
	}

	s.count(func(st *Stats) { st.Inventories++ })
	s.logger.Info("sensor inventory complete", "sensors", report.Sensors, "pages", report.Pages, "duration", report.Duration.Round(time.Millisecond).String())
	return report, nil
}

// MalopReport describes one MalOp poll.
type MalopReport struct {
	From, To time.Time
	Malops   int
	Cursor   time.Time // the cursor after the poll
	Duration time.Duration
}

// CollectMalops publishes every MalOp active in the window that starts at the
// cursor less the overlap (or at the configured first start) and ends now.
// The cursor moves to the newest lastUpdateTime only after every MalOp of the
// window was acknowledged.
func (s *Stage) CollectMalops(ctx context.Context) (MalopReport, error) {
	s.malopsMu.Lock()
	defer s.malopsMu.Unlock()

	start := s.cfg.Now()
	report := MalopReport{From: s.windowStart(start), To: start}

	malops, err := s.client.MalopsInbox(ctx, report.From, report.To)
	if err != nil {
		return report, fmt.Errorf("collect malops from %s to %s: %w", report.From.Format(time.RFC3339), report.To.Format(time.RFC3339), err)
	}

	msgs := make([]kafka.Message, 0, len(malops))
	newest := s.malopsCursor
	for _, malop := range malops {
		msgs = append(msgs, s.malopMessage(malop))
		if malop.LastUpdateTime.After(newest) {
			newest = malop.LastUpdateTime
		}
	}
	if err := s.publish(ctx, msgs); err != nil {
		return report, fmt.Errorf("publish %d malops: %w", len(msgs), err)
	}

	s.malopsCursor = newest
	report.Malops = len(msgs)
	report.Cursor = newest
	report.Duration = s.cfg.Now().Sub(start)
	s.count(func(st *Stats) {
		st.MalopPolls++
		st.MalopsPublished += len(msgs)
	})
	s.logger.Info("malop poll complete", "malops", report.Malops, "from", report.From, "to", report.To,
		"cursor", report.Cursor, "duration", report.Duration.Round(time.Millisecond).String())
	return report, nil
}

// windowStart returns the start of the next MalOp window. The cursor is a
// console time, so when the console's clock runs ahead of this host's, the
// start is kept before now: a window that ends before it starts is rejected
// by the console, and the MalOps past now are read once this clock gets there.
func (s *Stage) windowStart(now time.Time) time.Time {
	var start time.Time
	switch {
	case !s.malopsCursor.IsZero():
		start = s.malopsCursor.Add(-s.cfg.MalopsOverlap)
	case !s.cfg.MalopsStart.IsZero():
		start = s.cfg.MalopsStart
	default:
		start = now.Add(-s.cfg.MalopsLookback)
	}

	if start.After(now) {
		clamped := now.Add(-max(s.cfg.MalopsOverlap, time.Minute))
		s.logger.Warn("MalOp cursor is ahead of this host's clock; check both clocks",
			"cursor", s.malopsCursor, "now", now, "window_start", clamped)
		start = clamped
	}
	return start
}

func (s *Stage) sensorMessage(sensor cybereason.Sensor, polled time.Time) kafka.Message {
	event := sink.Event{
		ID:      sensor.ID + "#" + digest(sensor.Raw),
		Source:  s.cfg.ConsoleURL + "/rest/sensors/query",
		Type:    SensorEventType,
		Subject: sensor.ID,
		Tenant:  s.cfg.Tenant,
		Time:    polled,
	}
	return kafka.Message{Topic: s.cfg.SensorsTopic, Key: []byte(sensor.ID), Value: sensor.Raw, Headers: event.Headers()}
}

func (s *Stage) malopMessage(malop cybereason.Malop) kafka.Message {
	updated := strconv.FormatInt(malop.LastUpdateTime.UnixMilli(), 10)
	event := sink.Event{
		ID:      malop.GUID + "#" + updated + "#" + digest(malop.Raw),
		Source:  s.cfg.ConsoleURL + "/rest/detection/inbox",
		Type:    MalopEventType,
		Subject: malop.GUID,
		Tenant:  s.cfg.Tenant,
		Time:    malop.LastUpdateTime,
	}
	return kafka.Message{Topic: s.cfg.MalopsTopic, Key: []byte(malop.GUID), Value: malop.Raw, Headers: event.Headers()}
}

// digest returns the first 16 hex characters of the SHA-256 of raw, so the
// same vendor object always gets the same event id.
func digest(raw json.RawMessage) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
