// Package kafkatest holds test helpers that run an in-process Kafka-protocol
// broker on loopback and produce to and read from it with kafka-go.
package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
)

// Timeout bounds every helper's wait. It only guards against a hung test:
// on a healthy machine the helpers return in milliseconds.
const Timeout = 60 * time.Second

// NewBroker starts a broker with topics and stops it when the test ends. It
// returns the broker addresses.
func NewBroker(t testing.TB, topics ...embeddedkafka.Topic) []string {
	t.Helper()
	return StartBroker(t, topics...).Addrs()
}

// StartBroker starts a broker with topics and stops it when the test ends. Use
// it instead of NewBroker when the test injects faults through Cluster().
func StartBroker(t testing.TB, topics ...embeddedkafka.Topic) *embeddedkafka.Broker {
	t.Helper()
	broker, err := embeddedkafka.Start(embeddedkafka.Config{Topics: topics}, nil)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(broker.Close)
	return broker
}

// Produce writes msgs (each with its Topic set) with acks from all replicas
// and fails the test unless every message is acknowledged.
func Produce(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	writer := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Transport:    transport,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.Murmur2Balancer{},
		BatchTimeout: time.Millisecond,
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	err := writer.WriteMessages(ctx, msgs...)
	if closeErr := writer.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		t.Fatalf("produce %d messages: %v", len(msgs), err)
	}
}

// ReadAll returns every message of topic from the first offset up to the high
// watermark at the time of the call, without a consumer group. Messages are
// ordered by partition, then offset.
func ReadAll(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()

	msgs, err := embeddedkafka.ReadAll(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// WaitFor polls cond until it returns true and fails the test if that takes
// longer than Timeout. Call it from the test goroutine only.
func WaitFor(t testing.TB, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := poll(ctx, cond); err != nil {
		t.Fatalf("condition not met within %s", Timeout)
	}
}

// poll calls cond every 10ms until it returns true or ctx ends, and returns
// ctx's error in the latter case.
func poll(ctx context.Context, cond func() bool) error {
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return nil
}
