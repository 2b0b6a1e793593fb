// Package kafkaread reads a topic from its first offset up to its last
// stable offset without a consumer group. The source restores its checkpoints
// from the compacted state topic this way, and the demo and the tests read
// their results with it.
package kafkaread

import (
	"context"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
)

// Scan calls fn for every message of topic from the first offset up to the
// last stable offset taken at the start of the call, in partition order and
// then offset order. Without open transactions, the last stable offset is
// the high watermark. Scan reads as a read_committed consumer (see
// ReadCommitted), so it skips transaction markers and records of aborted
// transactions, and it returns when a partition ends in such offsets.
// Messages written after the call starts are not read. An error from fn
// stops the scan and is returned as it is; every other error names the topic.
func Scan(ctx context.Context, brokers []string, topic string, fn func(kafka.Message) error) error {
	return ScanWithDialer(ctx, nil, brokers, topic, fn)
}

// ScanWithDialer is Scan with the TLS and SASL settings of dialer; a nil
// dialer connects over plain TCP.
func ScanWithDialer(ctx context.Context, dialer *kafka.Dialer, brokers []string, topic string, fn func(kafka.Message) error) error {
	transport := kafkaconn.TransportFor(dialer)
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}

	ranges, err := offsetRanges(ctx, client, topic)
	if err != nil {
		return fmt.Errorf("read topic %s: %w", topic, err)
	}

	fetcher := NewFetcher(client)
	for _, r := range ranges {
		if err := scanPartition(ctx, fetcher, topic, r, fn); err != nil {
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

// offsetRanges returns the first offset and the last stable offset of every
// partition of topic, sorted by partition.
func offsetRanges(ctx context.Context, client *kafka.Client, topic string) ([]offsetRange, error) {
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
	offsets, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics:         map[string][]kafka.OffsetRequest{topic: requests},
		IsolationLevel: kafka.ReadCommitted,
	})
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

// scanPartition reads one partition's range.
func scanPartition(ctx context.Context, fetcher Fetcher, topic string, r offsetRange, fn func(kafka.Message) error) error {
	var fnErr error
	err := ReadCommitted(ctx, fetcher, topic, r.partition, r.first, r.end, func(msg kafka.Message) error {
		if err := fn(msg); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if err != nil && fnErr == nil {
		return fmt.Errorf("read topic %s partition %d: %w", topic, r.partition, err)
	}
	return err
}
