package embeddedkafka

import (
	"context"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkaread"
)

// ReadAll returns every committed message of topic from the first offset up
// to the last stable offset at the time of the call, without a consumer
// group. Messages are
// ordered by partition, then offset. It works with any Kafka cluster, but it
// holds the whole topic in memory, so it suits demos and tests.
func ReadAll(ctx context.Context, brokers []string, topic string) ([]kafka.Message, error) {
	var msgs []kafka.Message
	err := kafkaread.Scan(ctx, brokers, topic, func(msg kafka.Message) error {
		msgs = append(msgs, msg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return msgs, nil
}
