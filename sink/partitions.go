package sink

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Partitions returns the partition count of topic, read from the cluster's
// metadata with the writer's brokers and transport.
func (w *Writer) Partitions(ctx context.Context, topic string) (int, error) {
	client := &kafka.Client{Addr: w.kafka.Addr, Transport: w.kafka.Transport}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("read metadata of topic %s: %w", topic, err)
	}
	for _, t := range meta.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return 0, fmt.Errorf("read metadata of topic %s: %w", topic, t.Error)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("read metadata of topic %s: the topic is missing from the response", topic)
}
