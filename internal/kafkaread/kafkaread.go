// Package kafkaread reads a topic from its first offset up to its high
// watermark without a consumer group. The source restores its checkpoints
// from the compacted state topic this way, and the demo and the tests read
// their results with it.
package kafkaread

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
)

// Scan calls fn for every message of topic from the first offset up to the
// high watermark taken at the start of the call, in partition order and then
// offset order. Messages written after that are not read. An error from fn
// stops the scan and is returned as it is; every other error names the topic.
//
// NOTE: the last message before the high watermark must be a record a
// consumer receives. A topic written by a transactional producer can end in a
// control record, and Scan then waits until ctx ends.
func Scan(ctx context.Context, brokers []string, topic string, fn func(kafka.Message) error) error {
	return ScanWithDialer(ctx, nil, brokers, topic, fn)
}

// ScanWithDialer is Scan with the TLS and SASL settings of dialer; a nil
// dialer connects over plain TCP.
func ScanWithDialer(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string, fn func(kafka.Message) error) error {
	ranges, err := offsetRanges(ctx, dialer, brokers, topic)
	if err != nil {
		return fmt.Errorf("read topic %s: %w", topic, err)
	}

	for _, r := range ranges {
		if err := scanPartition(ctx, dialer, brokers, topic, r, fn); err != nil {
			return err
		}
	}
	return nil
}

// offsetRange is the offsets [first, end) of one partition.
type offsetRange struct {
	partition  int
	first, end int64
}

func offsetRanges(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string) ([]offsetRange, error) {
	transport := kafkaconn.TransportFor(dialer)
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

// scanPartition reads one partition's range. The offsets of a compacted
// partition have gaps, so the loop ends at the first message at or past the
// last offset of the range rather than after a count of messages.
func scanPartition(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string, r offsetRange, fn func(kafka.Message) error) error {
	if r.first >= r.end {
		return nil
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   brokers,
		Dialer:    dialer,
		Topic:     topic,
		Partition: r.partition,
		MaxWait:   100 * time.Millisecond,
	})
	defer reader.Close()
	if err := reader.SetOffset(r.first); err != nil {
		return fmt.Errorf("read topic %s: seek partition %d to offset %d: %w", topic, r.partition, r.first, err)
	}

	for read := 0; ; read++ {
		msg, err := reader.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read topic %s: fetch partition %d after %d messages, at most %d: %w", topic, r.partition, read, r.end-r.first, err)
		}
		if err := fn(msg); err != nil {
			return err
		}
		if msg.Offset >= r.end-1 {
			return nil
		}
	}
}
