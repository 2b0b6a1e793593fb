package connector

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// instruments are the metrics that the stages update as events happen,
// through the hooks Build installs. The counters the stages keep themselves
// are read at scrape time by statsCollector.
type instruments struct {
	pollDuration    *prometheus.HistogramVec
	polls           *prometheus.CounterVec
	logins          *prometheus.CounterVec
	published       *prometheus.CounterVec
	deadLetters     *prometheus.CounterVec
	restoreDuration *prometheus.HistogramVec
	restoreFailures *prometheus.CounterVec
}

// Results of a poll in the result label of source_polls_total.
const (
	pollSuccess = "success"
	pollFailure = "failure"
	pollStopped = "stopped"
)

// deadLetterReasons are the values of the reason label of dead_letters_total.
var deadLetterReasons = []string{"schema_violation", "rejected_by_broker", "unreadable_object", "unprocessable"}

// newInstruments returns the metrics, with the series of every stage and
// known label value at zero, so that alerts on rates see them from the start.
func newInstruments() *instruments {
	m := newInstrumentsEmpty()
	for _, stage := range []string{"source", "enrich", "dedupe"} {
		for _, reason := range deadLetterReasons {
			m.deadLetters.WithLabelValues(stage, reason)
		}
	}
	for _, result := range []string{cybereason.LoginSucceeded, cybereason.LoginRejected, cybereason.LoginFailed, cybereason.LoginNotSent} {
		m.logins.WithLabelValues(result)
	}
	return m
}

func newInstrumentsEmpty() *instruments {
	return &instruments{
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricsPrefix + "source_poll_duration_seconds",
			Help:    "Duration of the scheduled collections of each feed, from the first request to the last acknowledged event.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"feed"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "source_polls_total",
			Help: "Scheduled collections of each feed, by result: success, failure, or stopped by shutdown.",
		}, []string{"feed", "result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "source_logins_total",
			Help: "Console logins by result: success, rejected (credentials or TOTP code), error, or not_sent because the same credentials were rejected before.",
		}, []string{"result"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "kafka_messages_published_total",
			Help: "Messages the brokers acknowledged, by topic, dead letters and checkpoints included.",
		}, []string{"topic"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "dead_letters_total",
			Help: "Records published to a dead-letter topic, by stage and reason: schema_violation, rejected_by_broker, unreadable_object or unprocessable.",
		}, []string{"stage", "reason"}),
		restoreDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricsPrefix + "dedupe_restore_duration_seconds",
			Help:    "Duration of each successful restore of a partition's dedupe state from its output topic.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"topic"}),
		restoreFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricsPrefix + "dedupe_restore_failures_total",
			Help: "Restores of a partition's dedupe state that failed and are tried again.",
		}, []string{"topic"}),
	}
}

func (m *instruments) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.pollDuration, m.polls, m.logins, m.published, m.deadLetters, m.restoreDuration, m.restoreFailures}
}

// observeRun records one scheduled collection of the source.
func (m *instruments) observeRun(feed string, duration time.Duration, err error) {
	result := pollSuccess
	switch {
	case errors.Is(err, context.Canceled):
		result = pollStopped
	case err != nil:
		result = pollFailure
	}
	m.polls.WithLabelValues(feed, result).Inc()
	m.pollDuration.WithLabelValues(feed).Observe(duration.Seconds())
}

func (m *instruments) observeLogin(result string) {
	m.logins.WithLabelValues(result).Inc()
}

// countingPublisher is the shared writer as the stages see it: it counts the
// messages the brokers acknowledged, by topic, and the dead letters by reason.
type countingPublisher struct {
	writer  *sink.Writer
	metrics *instruments
}

func (p countingPublisher) Write(ctx context.Context, msgs ...kafka.Message) error {
	err := p.writer.Write(ctx, msgs...)

	var rejectedErr *sink.RejectedError
	switch {
	case err == nil:
		p.count(msgs, nil)
	case errors.As(err, &rejectedErr):
		rejected := make(map[int]bool, len(rejectedErr.Messages))
		for _, failure := range rejectedErr.Messages {
			rejected[failure.Index] = true
		}
		p.count(msgs, rejected)
	}
	return err
}

func (p countingPublisher) count(msgs []kafka.Message, rejected map[int]bool) {
	for i := range msgs {
		if rejected[i] {
			continue
		}
		p.metrics.published.WithLabelValues(msgs[i].Topic).Inc()
		if strings.HasSuffix(msgs[i].Topic, pipeline.DeadLetterSuffix) {
			stage, reason := deadLetterReason(&msgs[i])
			p.metrics.deadLetters.WithLabelValues(stage, reason).Inc()
		}
	}
}

// deadLetterReason returns the stage and a reason from a short, fixed list,
// so that the label stays bounded, for the dlq_ headers of a dead letter.
func deadLetterReason(msg *kafka.Message) (stage, reason string) {
	var cause string
	var hasOffset bool
	for _, header := range msg.Headers {
		switch header.Key {
		case pipeline.HeaderDLQStage:
			stage = string(header.Value)
		case pipeline.HeaderDLQError:
			cause = string(header.Value)
		case pipeline.HeaderDLQOffset:
			hasOffset = true
		}
	}

	switch {
	case strings.HasPrefix(cause, "message to topic "):
		// The text of a sink.MessageError: the broker rejected the output.
		reason = "rejected_by_broker"
	case strings.Contains(cause, "validate ") && strings.Contains(cause, " record"):
		reason = "schema_violation"
	case stage == "source" && !hasOffset && msg.Key == nil:
		reason = "unreadable_object"
	default:
		reason = "unprocessable"
	}
	if stage == "" {
		stage = "unknown"
	}
	return stage, reason
}

// timedRestore is the dedupe stage with its restores timed. It embeds the
// stage, so the runner finds every interface the stage implements.
type timedRestore struct {
	*dedupe.Stage
	metrics *instruments
}

func (s timedRestore) Restore(ctx context.Context, topic string, partition int) error {
	start := time.Now()
	if err := s.Stage.Restore(ctx, topic, partition); err != nil {
		s.metrics.restoreFailures.WithLabelValues(topic).Inc()
		return err
	}
	s.metrics.restoreDuration.WithLabelValues(topic).Observe(time.Since(start).Seconds())
	return nil
}
