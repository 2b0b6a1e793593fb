package kafkatest_test

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestProduceThenReadAll(t *testing.T) {
	brokers := kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: "t", Partitions: 3},
		embeddedkafka.Topic{Name: "empty", Partitions: 2},
	)
	var sent []kafka.Message
	for i := range 30 {
		sent = append(sent, kafka.Message{
			Topic:   "t",
			Key:     fmt.Appendf(nil, "k%d", i%5),
			Value:   fmt.Appendf(nil, "v%02d", i),
			Headers: []kafka.Header{{Key: "h", Value: []byte("x")}},
		})
	}
	kafkatest.Produce(t, brokers, sent...)

	got := kafkatest.ReadAll(t, brokers, "t")

	if len(got) != len(sent) {
		t.Fatalf("read %d messages, want %d", len(got), len(sent))
	}
	seen := make(map[string]bool)
	for i, m := range got {
		seen[string(m.Value)] = true
		if i > 0 && (m.Partition < got[i-1].Partition || m.Partition == got[i-1].Partition && m.Offset <= got[i-1].Offset) {
			t.Errorf("message %d (partition %d offset %d) out of order", i, m.Partition, m.Offset)
		}
		if len(m.Headers) != 1 || string(m.Headers[0].Value) != "x" {
			t.Errorf("message %s headers %v", m.Value, m.Headers)
		}
	}
	for _, m := range sent {
		if !seen[string(m.Value)] {
			t.Errorf("message %s missing", m.Value)
		}
	}
	if empty := kafkatest.ReadAll(t, brokers, "empty"); len(empty) != 0 {
		t.Errorf("empty topic read %d messages", len(empty))
	}
}

func TestReadAllStopsAtHighWatermark(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "t", Partitions: 1})
	kafkatest.Produce(t, brokers, kafka.Message{Topic: "t", Value: []byte("1")})
	first := kafkatest.ReadAll(t, brokers, "t")
	kafkatest.Produce(t, brokers, kafka.Message{Topic: "t", Value: []byte("2")})

	if len(first) != 1 {
		t.Errorf("first read %d messages, want 1", len(first))
	}
	if second := kafkatest.ReadAll(t, brokers, "t"); len(second) != 2 {
		t.Errorf("second read %d messages, want 2", len(second))
	}
}

func TestWaitForReturnsWhenTrue(t *testing.T) {
	calls := 0
	kafkatest.WaitFor(t, func() bool {
		calls++
		return calls == 3
	})
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}
