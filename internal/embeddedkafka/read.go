package embeddedkafka

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadAll returns every message of topic from the first offset up to the high
// watermark at the time of the call, without a consumer group. Messages are
// ordered by partition, then offset. It works with any Kafka cluster, but it
// holds the whole topic in memory, so it suits demos and tests.
func ReadAll(ctx context.Context, brokers []string, topic string) ([]kafka.Message, error) {
	ranges, err := offsetRanges(ctx, brokers, topic)
	if err != nil {
		return nil, fmt.Errorf("read topic %s: %w", topic, err)
	}

	var msgs []kafka.Message
	for _, r := range ranges {
		part, err := readPartition(ctx, brokers, topic, r)
		if err != nil {
			return nil, fmt.Errorf("read topic %s: %w", topic, err)
		}
		msgs = append(msgs, part...)
	}
	return msgs, nil
}

// offsetRange is the offsets [first, end) of one partition.
type offsetRange struct {
	partition  int
	first, end int64
}

func offsetRanges(ctx context.Context, brokers []string, topic string) ([]offsetRange, error) {
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}

	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}
	if len(meta.Topics) != 1 {
		return nil, fmt.Errorf("fetch metadata: %d topics in the response, expected 1", len(meta.Topics))
	}
	if err := meta.Topics[0].Error; err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}

	var requests []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		requests = append(requests, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	offsets, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: requests}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}

	var ranges []offsetRange
	for _, p := range offsets.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("list offsets of partition %d: %w", p.Partition, p.Error)
		}
		ranges = append(ranges, offsetRange{partition: p.Partition, first: p.FirstOffset, end: p.LastOffset})
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].partition < ranges[j].partition })
	return ranges, nil
}

func readPartition(ctx context.Context, brokers []string, topic string, r offsetRange) ([]kafka.Message, error) {
	if r.first >= r.end {
		return nil, nil
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   brokers,
		Topic:     topic,
		Partition: r.partition,
		MaxWait:   100 * time.Millisecond,
	})
	defer reader.Close()
	if err := reader.SetOffset(r.first); err != nil {
		return nil, fmt.Errorf("seek partition %d to offset %d: %w", r.partition, r.first, err)
	}

	var msgs []kafka.Message
	for {
		msg, err := reader.FetchMessage(ctx)
		if err != nil {
			return nil, fmt.Errorf("fetch partition %d after %d of %d messages: %w", r.partition, len(msgs), r.end-r.first, err)
		}
		msgs = append(msgs, msg)
		if msg.Offset >= r.end-1 {
			return msgs, nil
		}
	}
}
