package kafkaread_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkaread"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScanStopsAtCallbackError(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "t", Partitions: 2})
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	kafkatest.Produce(t, brokers, msgs...)

	stop := errors.New("stop here")
	calls := 0
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	err := kafkaread.Scan(ctx, brokers, "t", func(kafka.Message) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})

	if !errors.Is(err, stop) {
		t.Errorf("Scan error = %v, want the callback's error", err)
	}
	if calls != 3 {
		t.Errorf("callback called %d times, want 3", calls)
	}
}

func TestScanVisitsPartitionsInOrder(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "t", Partitions: 3})
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
	}
	kafkatest.Produce(t, brokers, msgs...)

	var got []kafka.Message
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	err := kafkaread.Scan(ctx, brokers, "t", func(msg kafka.Message) error {
		got = append(got, msg)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}

	if len(got) != len(msgs) {
		t.Fatalf("scanned %d messages, want %d", len(got), len(msgs))
	}
	for i := 1; i < len(got); i++ {
		prev, cur := got[i-1], got[i]
		if cur.Partition < prev.Partition || (cur.Partition == prev.Partition && cur.Offset <= prev.Offset) {
			t.Errorf("message %d is partition %d offset %d after partition %d offset %d", i, cur.Partition, cur.Offset, prev.Partition, prev.Offset)
		}
	}
}
