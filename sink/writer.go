// Package sink publishes messages to Kafka with acknowledgement from all
// in-sync replicas, application-level retries and CloudEvents headers.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Writer delivers messages synchronously to Kafka. It is safe for concurrent
// use. Create it with NewWriter.
type Writer struct {
	cfg             Config
	kafka           *kafka.Writer
	ownedTransport  *kafka.Transport
	maxMessageBytes int64
	logger          *slog.Logger

	messages atomic.Int64
	retries  atomic.Int64
	rejected atomic.Int64
	// retrying counts the Write calls waiting to try again after a failure.
	retrying atomic.Int32
}

// Healthy reports whether no Write call is retrying after a failure, which
// is what a broker outage looks like from here. It turns true again when the
// retries succeed or give up.
func (w *Writer) Healthy() bool { return w.retrying.Load() == 0 }

// Stats are counters since the Writer was created.
type Stats struct {
	// Messages is the count of messages the broker acknowledged.
	Messages int64
	// Retries is the count of attempts repeated after a transient failure,
	// one per attempt whatever the number of messages in it.
	Retries int64
	// Rejected is the count of messages rejected permanently (RejectedError).
	Rejected int64
}

// NewWriter validates cfg and returns a Writer that waits for acknowledgement
// from all in-sync replicas (acks=all), partitions with cfg.Balancer (by
// default by key with the murmur2 hash of Kafka's Java client), never
// creates topics and never writes asynchronously. A nil logger discards logs.
func NewWriter(cfg Config, logger *slog.Logger) (*Writer, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	w := &Writer{
		cfg:             cfg,
		maxMessageBytes: cfg.BatchBytes - recordBatchOverhead,
		logger:          logger,
	}
	transport := cfg.Transport
	if transport == nil {
		transport = &kafka.Transport{ClientID: "cybereason-connector"}
		w.ownedTransport = transport
	}
	balancer := cfg.Balancer
	if balancer == nil {
		balancer = &kafka.Murmur2Balancer{}
	}
	w.kafka = &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Balancer:               balancer,
		RequiredAcks:           kafka.RequireAll,
		Async:                  false,
		AllowAutoTopicCreation: false,
		BatchSize:              cfg.BatchSize,
		BatchBytes:             w.maxMessageBytes,
		BatchTimeout:           cfg.BatchTimeout,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		// Write retries itself, with logs and counters, so kafka-go makes one
		// attempt per call. That also keeps Close from waiting on kafka-go's
		// own retries of a batch that Write gave up on.
		MaxAttempts: 1,
		Transport:   transport,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			logger.Debug(fmt.Sprintf(format, args...), "component", "kafka-go writer")
		}),
	}
	return w, nil
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{
		Messages: w.messages.Load(),
		Retries:  w.retries.Load(),
		Rejected: w.rejected.Load(),
	}
}

// Close waits for produce requests in flight, then closes the writer's own
// connections. Write fails after Close.
func (w *Writer) Close() error {
	err := w.kafka.Close()
	if w.ownedTransport != nil {
		w.ownedTransport.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}

// Write delivers every message (each with its Topic set) and returns nil only
// when the broker acknowledged all of them.
//
// Transient failures (broker unavailable, leader changes, not enough
// replicas, timeouts) are retried for the failed messages only, with capped
// exponential backoff and jitter, until ctx ends. Messages that can never be
// written (too large, invalid, topic missing for longer than
// MissingTopicTimeout) do not stop the others: Write delivers the rest and
// then returns a *RejectedError listing them. An authentication or
// authorization failure is returned at once, and so is ctx's error when ctx
// ends. After either, the caller must assume that none of the messages were
// written, although some may have been.
//
// A retry can send a message that the broker already stored, so a message
// can be written twice. Within one partition, messages keep their order
// unless a retry follows a partial failure.
func (w *Writer) Write(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}

	var rejected []MessageError
	pending := make([]int, 0, len(msgs))
	for i := range msgs {
		if err := w.check(&msgs[i]); err != nil {
			rejected = append(rejected, newMessageError(i, &msgs[i], err))
			continue
		}
		pending = append(pending, i)
	}

	missingSince := make(map[string]time.Time)
	retrying := false
	defer func() {
		if retrying {
			w.retrying.Add(-1)
		}
	}()
	for attempt := 1; len(pending) > 0; attempt++ {
		errs := w.attempt(ctx, msgs, pending)
		if ctx.Err() != nil {
			return fmt.Errorf("write %d messages: %w", len(msgs), ctx.Err())
		}

		out := w.sortFailures(msgs, pending, errs, missingSince)
		rejected = append(rejected, out.rejected...)
		if out.fatal != nil {
			return out.fatal
		}
		if len(out.retry) == 0 {
			break
		}
		if !retrying {
			retrying = true
			w.retrying.Add(1)
		}
		if err := w.backoff(ctx, attempt, len(msgs), msgs[out.retry[0]].Topic, out); err != nil {
			return fmt.Errorf("write %d messages: %w", len(msgs), err)
		}
		pending = out.retry
	}

	if len(rejected) > 0 {
		w.rejected.Add(int64(len(rejected)))
		return &RejectedError{Messages: rejected}
	}
	return nil
}

// check rejects a message before sending when it can never be written.
func (w *Writer) check(msg *kafka.Message) error {
	if msg.Topic == "" {
		return ErrNoTopic
	}
	if size := messageSize(msg); size > w.maxMessageBytes {
		return fmt.Errorf("%d bytes is over the %d-byte limit: %w", size, w.maxMessageBytes, kafka.MessageSizeTooLarge)
	}
	return nil
}

// attempt sends msgs[pending] once and returns the error of each, in the
// order of pending. Each topic gets its own WriteMessages call, run
// concurrently, because kafka-go fails the whole call when one topic is
// missing.
func (w *Writer) attempt(ctx context.Context, msgs []kafka.Message, pending []int) []error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.WriteTimeout)
	defer cancel()

	byTopic := make(map[string][]int) // topic -> positions in pending
	for j, i := range pending {
		byTopic[msgs[i].Topic] = append(byTopic[msgs[i].Topic], j)
	}

	errs := make([]error, len(pending))
	var wg sync.WaitGroup
	for _, positions := range byTopic {
		wg.Go(func() {
			batch := make([]kafka.Message, len(positions))
			for k, j := range positions {
				batch[k] = msgs[pending[j]]
			}
			err := w.kafka.WriteMessages(ctx, batch...)
			var writeErrs kafka.WriteErrors
			for k, j := range positions {
				switch {
				case err == nil:
				case errors.As(err, &writeErrs):
					errs[j] = writeErrs[k]
				default:
					errs[j] = err
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// outcome sorts the messages of one attempt.
type outcome struct {
	retry      []int          // indexes into msgs
	retryCause error          // error of the first message in retry, for the log
	rejected   []MessageError // rejected for good
	fatal      error          // ends Write
}

// sortFailures counts the acknowledged messages of an attempt and sorts the
// failed ones into those to retry, those rejected for good and the first
// failure that no retry can fix.
func (w *Writer) sortFailures(msgs []kafka.Message, pending []int, errs []error, missingSince map[string]time.Time) outcome {
	var out outcome
	now := time.Now()
	for j, i := range pending {
		msg := &msgs[i]
		failure := errs[j]
		switch classify(failure) {
		case acknowledged:
			w.messages.Add(1)
		case permanent:
			out.rejected = append(out.rejected, newMessageError(i, msg, failure))
		case fatal:
			if out.fatal == nil {
				e := newMessageError(i, msg, failure)
				out.fatal = fmt.Errorf("write messages: %w", &e)
			}
		case missingTopic:
			since, seen := missingSince[msg.Topic]
			if !seen {
				since = now
				missingSince[msg.Topic] = now
			}
			if now.Sub(since) >= w.cfg.MissingTopicTimeout {
				failure = fmt.Errorf("topic still missing after %s: %w", w.cfg.MissingTopicTimeout, failure)
				out.rejected = append(out.rejected, newMessageError(i, msg, failure))
				continue
			}
			out.addRetry(i, failure)
		default:
			out.addRetry(i, failure)
		}
	}
	return out
}

func (out *outcome) addRetry(i int, cause error) {
	if len(out.retry) == 0 {
		out.retryCause = cause
	}
	out.retry = append(out.retry, i)
}

// backoff logs a failed attempt and waits before the next one, or until ctx
// ends.
func (w *Writer) backoff(ctx context.Context, attempt, total int, topic string, out outcome) error {
	w.retries.Add(1)
	delay := backoffDelay(attempt, w.cfg.RetryBackoffMin, w.cfg.RetryBackoffMax)
	w.logger.Warn("kafka write failed; retrying",
		"attempt", attempt,
		"failed", len(out.retry),
		"messages", total,
		"topic", topic,
		"error", out.retryCause,
		"backoff", delay)

	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
