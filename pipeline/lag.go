package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// GroupLag returns how many messages of topics the consumer group has not
// committed yet: the sum over all partitions of the high watermark minus the
// committed offset. A partition without a commit counts from its first
// offset, which is where a runner starts (StartOffset FirstOffset).
func GroupLag(ctx context.Context, brokers []string, groupID string, topics []string) (int64, error) {
	transport := &kafka.Transport{ClientID: "cybereason-connector"}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}

	lags, err := TopicLags(ctx, client, groupID, topics)
	if err != nil {
		return 0, err
	}
	var lag int64
	for _, topicLag := range lags {
		lag += topicLag
	}
	return lag, nil
}

// TopicLags returns the lag of the consumer group on each of topics, counted
// as GroupLag counts it, through client.
func TopicLags(ctx context.Context, client *kafka.Client, groupID string, topics []string) (map[string]int64, error) {
	partitions, err := topicPartitions(ctx, client, topics)
	if err != nil {
		return nil, fmt.Errorf("group %s lag: %w", groupID, err)
	}
	offsets, err := partitionOffsets(ctx, client, partitions)
	if err != nil {
		return nil, fmt.Errorf("group %s lag: %w", groupID, err)
	}
	committed, err := committedOffsets(ctx, client, groupID, partitions)
	if err != nil {
		return nil, fmt.Errorf("group %s lag: %w", groupID, err)
	}

	lags := make(map[string]int64, len(topics))
	for topic, parts := range offsets {
		for _, p := range parts {
			start := max(committed[topic][p.Partition], p.FirstOffset)
			lags[topic] += max(p.LastOffset-start, 0)
		}
	}
	return lags, nil
}

func topicPartitions(ctx context.Context, client *kafka.Client, topics []string) (map[string][]int, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}
	partitions := make(map[string][]int, len(topics))
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("fetch metadata of topic %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			partitions[t.Name] = append(partitions[t.Name], p.ID)
		}
	}
	for _, topic := range topics {
		if _, ok := partitions[topic]; !ok {
			return nil, fmt.Errorf("fetch metadata: topic %s not found", topic)
		}
	}
	return partitions, nil
}

func partitionOffsets(ctx context.Context, client *kafka.Client, partitions map[string][]int) (map[string][]kafka.PartitionOffsets, error) {
	requests := make(map[string][]kafka.OffsetRequest, len(partitions))
	for topic, ids := range partitions {
		for _, id := range ids {
			requests[topic] = append(requests[topic], kafka.FirstOffsetOf(id), kafka.LastOffsetOf(id))
		}
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: requests})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("list offsets of %s partition %d: %w", topic, p.Partition, p.Error)
			}
		}
	}
	return resp.Topics, nil
}

// committedOffsets returns the group's committed offset per topic and
// partition, -1 where there is none.
func committedOffsets(ctx context.Context, client *kafka.Client, groupID string, partitions map[string][]int) (map[string]map[int]int64, error) {
	committed := make(map[string]map[int]int64, len(partitions))
	for topic := range partitions {
		committed[topic] = make(map[int]int64)
	}

	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: groupID, Topics: partitions})
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets: %w", err)
	}
	switch {
	case errors.Is(resp.Error, kafka.GroupIdNotFound):
		// kfake returns this error for a group that never committed, where
		// Kafka returns -1 offsets.
		return committed, nil
	case resp.Error != nil:
		return nil, fmt.Errorf("fetch committed offsets: %w", resp.Error)
	}

	for topic, parts := range resp.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("fetch committed offset of %s partition %d: %w", topic, p.Partition, p.Error)
			}
			if committed[topic] != nil {
				committed[topic][p.Partition] = p.CommittedOffset
			}
		}
	}
	return committed, nil
}
