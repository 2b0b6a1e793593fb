package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
	"github.com/oversoc/cybereason-connector/pipeline"
)

// requiredTopics lists every topic the enabled stages read or write, with the
// dead-letter topics of their inputs and the source's compacted state topic.
func requiredTopics(cfg *config.Config) []string {
	t := cfg.Kafka.Topics
	dlq := func(topic string) string { return topic + pipeline.DeadLetterSuffix }

	var topics []string
	raw := []string{t.RawSensors, t.RawMalops, t.RawMalware}
	if cfg.Runs(config.StageSource) {
		topics = append(topics, t.State, t.RawPolicies, dlq(t.RawPolicies))
		for _, topic := range raw {
			topics = append(topics, topic, dlq(topic))
		}
	}
	if cfg.Runs(config.StageEnrich) {
		topics = append(topics, t.NormalizedAssets, t.NormalizedFindings)
		for _, topic := range raw {
			topics = append(topics, topic, dlq(topic))
		}
	}
	if cfg.Runs(config.StageDedupe) {
		topics = append(topics, t.NormalizedAssets, t.NormalizedFindings, dlq(t.NormalizedAssets), dlq(t.NormalizedFindings), t.Assets, t.Findings,
			t.AssetSecurityState)
	}

	slices.Sort(topics)
	return slices.Compact(topics)
}

// checkTopics fails when Kafka cannot be reached, rejects the credentials or
// a topic is missing. The connector never creates topics, because their
// partition counts, retention and compaction are the operator's choice.
func checkTopics(ctx context.Context, security *kafkaconn.Security, brokers, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	transport := security.Transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}

	metadata, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("read topic metadata from %s: %w", strings.Join(brokers, ","), security.Explain(err))
	}

	var missing []string
	for _, topic := range metadata.Topics {
		if errors.Is(topic.Error, kafka.UnknownTopicOrPartition) {
			missing = append(missing, topic.Name)
		} else if topic.Error != nil {
			return fmt.Errorf("read metadata of topic %s: %w", topic.Name, topic.Error)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("missing Kafka topics: %s; create them before the start", strings.Join(missing, ", "))
	}
	return nil
}

// RequiredTopics lists every topic the stages that cfg enables read or
// write, with the dead-letter topics and the source's state topic: the
// topics that `run` checks at start.
func RequiredTopics(cfg *config.Config) []string { return requiredTopics(cfg) }

// checkCopartitioned fails unless topic out has as many partitions as topic
// in. Enrich forwards the inventory end event of raw sensors partition p to
// normalized assets partition p, where dedupe reads it as the end of the
// inventory on that partition. With a different count, some partitions would
// get no end events, or enrich would write to a partition that does not exist.
func checkCopartitioned(ctx context.Context, security *kafkaconn.Security, brokers []string, in, out string) error {
	transport := security.Transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}

	metadata, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{in, out}})
	if err != nil {
		return fmt.Errorf("check partitions of %s and %s: read topic metadata: %w", in, out, security.Explain(err))
	}
	counts := make(map[string]int, 2)
	for _, topic := range metadata.Topics {
		if topic.Error != nil {
			return fmt.Errorf("check partitions of %s and %s: topic %s: %w", in, out, topic.Name, topic.Error)
		}
		counts[topic.Name] = len(topic.Partitions)
	}
	if counts[in] != counts[out] {
		return fmt.Errorf("partition count of %s is %d but that of %s is %d; create %s with %d partitions, because enrich writes the asset records and inventory end events of partition p to partition p",
			out, counts[out], in, counts[in], out, counts[in])
	}
	return nil
}
