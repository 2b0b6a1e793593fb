package sink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/sink"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const topic = "events"

// newWriter returns a Writer on brokers with fast retries, closed when the
// test ends.
func newWriter(t *testing.T, brokers []string, logger *slog.Logger, adjust func(*sink.Config)) *sink.Writer {
	t.Helper()
	cfg := sink.Config{
		Brokers:         brokers,
		RetryBackoffMin: 5 * time.Millisecond,
		RetryBackoffMax: 50 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	w, err := sink.NewWriter(cfg, logger)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// messages returns n messages to topic over 7 keys, each value naming its
// position.
func messages(n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		key := fmt.Sprintf("key-%d", i%7)
		event := sink.Event{
			ID: fmt.Sprintf("%s#%d", key, i), Source: "https://console.example/rest/sensors/query",
			Type: "com.oversoc.test", Subject: key, Tenant: "console.example", Time: time.Unix(1700000000, 0),
		}
		msgs[i] = kafka.Message{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, `{"n":%d}`, i), Headers: event.Headers()}
	}
	return msgs
}

// valueCounts counts how often each value was read.
func valueCounts(msgs []kafka.Message) map[string]int {
	counts := make(map[string]int)
	for _, m := range msgs {
		counts[string(m.Value)]++
	}
	return counts
}

func TestWriteDeliversWithHeaders(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 3})
	w := newWriter(t, brokers, nil, nil)
	sent := messages(50)

	if err := w.Write(t.Context(), sent...); err != nil {
		t.Fatalf("Write: %v", err)
	}

	got := kafkatest.ReadAll(t, brokers, topic)
	if len(got) != len(sent) {
		t.Fatalf("read %d messages, want %d", len(got), len(sent))
	}
	byValue := make(map[string]kafka.Message)
	for _, m := range got {
		byValue[string(m.Value)] = m
	}
	for _, want := range sent {
		m, ok := byValue[string(want.Value)]
		if !ok {
			t.Errorf("message %s missing", want.Value)
			continue
		}
		if string(m.Key) != string(want.Key) {
			t.Errorf("message %s: key %q, want %q", want.Value, m.Key, want.Key)
		}
		wantEvent, _ := sink.EventFromHeaders(want.Headers)
		gotEvent, err := sink.EventFromHeaders(m.Headers)
		if err != nil {
			t.Errorf("message %s: %v", want.Value, err)
		}
		if gotEvent != wantEvent {
			t.Errorf("message %s: event %+v, want %+v", want.Value, gotEvent, wantEvent)
		}
	}
	if stats := w.Stats(); stats.Messages != int64(len(sent)) || stats.Retries != 0 {
		t.Errorf("stats %+v, want %d messages and no retries", stats, len(sent))
	}
}

func TestWriteKeepsKeyOrderAndPartition(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 4})
	w := newWriter(t, brokers, nil, nil)
	sent := messages(70)

	if err := w.Write(t.Context(), sent[:35]...); err != nil {
		t.Fatalf("first Write: %v", err)
	}
	if err := w.Write(t.Context(), sent[35:]...); err != nil {
		t.Fatalf("second Write: %v", err)
	}

	partitionOf := make(map[string]int)
	lastValue := make(map[string]int)
	for _, m := range kafkatest.ReadAll(t, brokers, topic) {
		key := string(m.Key)
		if p, seen := partitionOf[key]; seen && p != m.Partition {
			t.Errorf("key %s in partitions %d and %d", key, p, m.Partition)
		}
		partitionOf[key] = m.Partition

		var n int
		if _, err := fmt.Sscanf(string(m.Value), `{"n":%d}`, &n); err != nil {
			t.Fatalf("value %s: %v", m.Value, err)
		}
		if last, seen := lastValue[key]; seen && n <= last {
			t.Errorf("key %s: value %d after %d", key, n, last)
		}
		lastValue[key] = n
	}
	if len(partitionOf) != 7 {
		t.Errorf("read %d keys, want 7", len(partitionOf))
	}
}

func TestWriteRetriesTransientErrors(t *testing.T) {
	tests := []struct {
		name string
		err  *kerr.Error
		// appended is true when the broker stores the batch before it
		// returns err, so the retry writes it a second time.
		appended bool
	}{
		{"not enough replicas", kerr.NotEnoughReplicas, false},
		{"leader not available", kerr.LeaderNotAvailable, false},
		{"timed out after append", kerr.RequestTimedOut, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := kafkatest.StartBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 3})
			logs := &syncBuffer{}
			w := newWriter(t, broker.Addrs(), slog.New(slog.NewTextHandler(logs, nil)), nil)
			const failures = 4
			fault := broker.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: tt.err, Count: failures})
			sent := messages(30)

			if err := w.Write(t.Context(), sent...); err != nil {
				t.Fatalf("Write: %v", err)
			}

			if hits := fault.Hits(); hits != failures {
				t.Errorf("fault answered %d produce requests, want %d", hits, failures)
			}
			counts := valueCounts(kafkatest.ReadAll(t, broker.Addrs(), topic))
			for _, m := range sent {
				n := counts[string(m.Value)]
				if n == 0 {
					t.Errorf("message %s lost", m.Value)
				}
				if n > 1 && !tt.appended {
					t.Errorf("message %s written %d times", m.Value, n)
				}
			}
			if stats := w.Stats(); stats.Retries == 0 || stats.Messages != int64(len(sent)) {
				t.Errorf("stats %+v, want retries and %d messages", stats, len(sent))
			}
			if !strings.Contains(logs.String(), "level=WARN msg=\"kafka write failed; retrying\" attempt=1") {
				t.Errorf("no Warn log for attempt 1 in:\n%s", logs)
			}
		})
	}
}

func TestWriteRejectsOversizedMessageBeforeSending(t *testing.T) {
	broker := kafkatest.StartBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 1})
	w := newWriter(t, broker.Addrs(), nil, nil)
	produces := broker.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Observe: true, Count: -1})

	huge := kafka.Message{Topic: topic, Key: []byte("huge"), Value: make([]byte, sink.DefaultBatchBytes)}
	err := w.Write(t.Context(), huge)

	var rejected *sink.RejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("Write error %v, want *sink.RejectedError", err)
	}
	if !errors.Is(err, kafka.MessageSizeTooLarge) {
		t.Errorf("error %v does not match kafka.MessageSizeTooLarge", err)
	}
	for _, want := range []string{`topic "events"`, `key "huge"`, "bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if hits := produces.Hits(); hits != 0 {
		t.Errorf("%d produce requests sent for a rejected message", hits)
	}
}

func TestWriteSizeLimitMatchesBroker(t *testing.T) {
	// With the default 1 MiB BatchBytes, the largest message Write accepts
	// must fit in kfake's default message.max.bytes, and one byte more must
	// be rejected by Write itself.
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 1})
	w := newWriter(t, brokers, nil, nil)
	key := []byte("k")
	// 22 bytes of fixed framing and 1 byte for the empty header count.
	largest := sink.DefaultBatchBytes - 64 - 22 - 1 - len(key)

	fits := kafka.Message{Topic: topic, Key: key, Value: make([]byte, largest)}
	if err := w.Write(t.Context(), fits); err != nil {
		t.Fatalf("Write of the largest accepted message: %v", err)
	}
	over := kafka.Message{Topic: topic, Key: key, Value: make([]byte, largest+1)}
	err := w.Write(t.Context(), over)
	var rejected *sink.RejectedError
	if !errors.As(err, &rejected) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Write of one byte more: %v, want a rejection by the size limit", err)
	}
}

func TestWriteDeliversOthersWhenOneIsRejected(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 2})
	w := newWriter(t, brokers, nil, func(cfg *sink.Config) { cfg.MissingTopicTimeout = 100 * time.Millisecond })
	sent := []kafka.Message{
		{Topic: topic, Key: []byte("a"), Value: []byte("1")},
		{Topic: "no-such-topic", Key: []byte("b"), Value: []byte("2")},
		{Topic: topic, Key: []byte("c"), Value: make([]byte, 2<<20)},
		{Topic: topic, Key: []byte("d"), Value: []byte("4")},
		{Key: []byte("e"), Value: []byte("5")},
	}

	err := w.Write(t.Context(), sent...)

	var rejected *sink.RejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("Write error %v, want *sink.RejectedError", err)
	}
	var indexes []int
	for _, m := range rejected.Messages {
		indexes = append(indexes, m.Index)
	}
	if fmt.Sprint(indexes) != "[2 4 1]" {
		t.Errorf("rejected indexes %v, want [2 4 1] (checked before sending first)", indexes)
	}
	if !errors.Is(err, kafka.UnknownTopicOrPartition) || !errors.Is(err, sink.ErrNoTopic) {
		t.Errorf("error %v does not wrap both causes", err)
	}
	if counts := valueCounts(kafkatest.ReadAll(t, brokers, topic)); counts["1"] != 1 || counts["4"] != 1 || len(counts) != 2 {
		t.Errorf("topic holds %v, want values 1 and 4 once", counts)
	}
	if stats := w.Stats(); stats.Rejected != 3 || stats.Messages != 2 {
		t.Errorf("stats %+v, want 3 rejected and 2 messages", stats)
	}
}

func TestWriteReturnsPermanentBrokerErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      *kerr.Error
		rejected bool // a *RejectedError, else an error returned at once
	}{
		{"invalid record", kerr.InvalidRecord, true},
		{"message too large", kerr.MessageTooLarge, true},
		{"topic authorization", kerr.TopicAuthorizationFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker := kafkatest.StartBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 1})
			w := newWriter(t, broker.Addrs(), nil, nil)
			broker.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: tt.err, Count: -1})

			err := w.Write(t.Context(), kafka.Message{Topic: topic, Key: []byte("k"), Value: []byte("v")})

			var rejected *sink.RejectedError
			if errors.As(err, &rejected) != tt.rejected {
				t.Errorf("Write error %v (%T): rejected=%v, want %v", err, err, !tt.rejected, tt.rejected)
			}
			if err == nil || !strings.Contains(err.Error(), `topic "events" with key "k"`) {
				t.Errorf("Write error %v does not name the message", err)
			}
			if retries := w.Stats().Retries; retries != 0 {
				t.Errorf("%d retries of a permanent error", retries)
			}
		})
	}
}

func TestWriteReturnsWhenContextEnds(t *testing.T) {
	broker := kafkatest.StartBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 1})
	w := newWriter(t, broker.Addrs(), nil, func(cfg *sink.Config) {
		// Without ctx handling, Write would wait this long between attempts.
		cfg.RetryBackoffMin = time.Hour
		cfg.RetryBackoffMax = time.Hour
	})
	fault := broker.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)

	go func() { done <- w.Write(ctx, messages(3)...) }()
	if err := fault.Wait(t.Context(), 1); err != nil {
		t.Fatalf("wait for the first produce request: %v", err)
	}
	cancel()

	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Write error %v, want context.Canceled", err)
		}
	case <-time.After(kafkatest.Timeout):
		t.Fatal("Write did not return after ctx was canceled")
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 1})
	w, err := sink.NewWriter(sink.Config{Brokers: brokers}, nil)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	err = w.Write(t.Context(), messages(1)...)
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Write after Close: %v, want io.ErrClosedPipe", err)
	}
}

func TestNewWriterNamesBadSettings(t *testing.T) {
	tests := []struct {
		name string
		cfg  sink.Config
		want []string
	}{
		{"no brokers", sink.Config{}, []string{"brokers: at least one"}},
		{"bad address", sink.Config{Brokers: []string{"localhost"}}, []string{`invalid address "localhost"`}},
		{"negative numbers", sink.Config{
			Brokers: []string{"127.0.0.1:9092"}, BatchSize: -1, BatchBytes: 100,
			BatchTimeout: -1, WriteTimeout: -1, MissingTopicTimeout: -1,
		}, []string{"batch size", "batch bytes", "batch timeout", "write timeout", "missing topic timeout"}},
		{"backoff order", sink.Config{
			Brokers: []string{"127.0.0.1:9092"}, RetryBackoffMin: time.Minute, RetryBackoffMax: time.Second,
		}, []string{"retry backoff min 1m0s is greater than retry backoff max 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := sink.NewWriter(tt.cfg, nil)
			if err == nil {
				w.Close()
				t.Fatal("NewWriter accepted the config")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWriterUnhealthyWhileRetrying(t *testing.T) {
	broker := kafkatest.StartBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 1})
	w := newWriter(t, broker.Addrs(), nil, nil)
	if !w.Healthy() {
		t.Fatal("a new writer is not healthy")
	}

	// The broker rejects every produce request until the fault is removed.
	fault := broker.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	done := make(chan error, 1)
	go func() { done <- w.Write(t.Context(), messages(3)...) }()

	if err := fault.Wait(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if w.Healthy() {
		t.Error("writer healthy while its writes are being retried")
	}
	fault.Remove()
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !w.Healthy() {
		t.Error("writer not healthy after its retries succeeded")
	}
}

func TestWriterPartitions(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: topic, Partitions: 3})
	w := newWriter(t, brokers, nil, nil)

	n, err := w.Partitions(context.Background(), topic)
	if err != nil {
		t.Fatalf("Partitions(%s): %v", topic, err)
	}
	if n != 3 {
		t.Errorf("Partitions(%s) = %d, want 3", topic, n)
	}
	if _, err := w.Partitions(context.Background(), "no-such-topic"); err == nil {
		t.Error("Partitions of a missing topic returned no error")
	}
}
