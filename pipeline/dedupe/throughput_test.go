package dedupe_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/benchloop"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// BenchmarkDedupeThroughput runs the dedupe stage, as the connector builds
// it (state kept in its output topics, partitions tracked), over the
// normalized records of 8,000 sensors and 2,000 MalOps on an in-process
// broker, beside a plain kafka-go loop and a franz-go loop that copy the same
// input on the same broker in the same run. Every record is new to the
// stage, so every one is forwarded. It reports the stage's msgs/s and its
// ratios to the loops (x-kafkago-loop, x-franz-loop).
func BenchmarkDedupeThroughput(b *testing.B) {
	const partitions = 4
	ctx := context.Background()
	raw, err := benchloop.RawInput(ctx, 7, 8000, 2000)
	if err != nil {
		b.Fatal(err)
	}
	input, err := benchloop.NormalizedInput(ctx, raw)
	if err != nil {
		b.Fatal(err)
	}

	routes := map[string]string{
		benchloop.NormalizedAssetsTopic:   "oversoc.assets",
		benchloop.NormalizedFindingsTopic: "oversoc.findings",
	}
	kinds := map[string]schemas.Kind{
		benchloop.NormalizedAssetsTopic:   schemas.KindAsset,
		benchloop.NormalizedFindingsTopic: schemas.KindFinding,
	}
	inputs := []string{benchloop.NormalizedAssetsTopic, benchloop.NormalizedFindingsTopic}
	var topics []embeddedkafka.Topic
	for in, out := range routes {
		topics = append(topics,
			embeddedkafka.Topic{Name: in, Partitions: partitions},
			embeddedkafka.Topic{Name: out, Partitions: partitions, Compacted: true},
			embeddedkafka.Topic{Name: in + ".dlq", Partitions: 1})
	}

	newRunner := func(brokers []string, group string) (*pipeline.Runner, func(), error) {
		stage, err := dedupe.New(dedupe.Config{
			Routes: routes,
			Fingerprint: func(topic string, msg kafka.Message) (string, error) {
				kind, ok := kinds[topic]
				if !ok {
					return "", fmt.Errorf("no record kind for topic %q", topic)
				}
				return schemas.Fingerprint(kind, msg.Value)
			},
			ResyncInterval: dedupe.DefaultResyncInterval,
			Brokers:        brokers,
		}, nil)
		if err != nil {
			return nil, nil, err
		}
		writer, err := sink.NewWriter(sink.Config{
			Brokers:  brokers,
			Balancer: pipeline.PartitionBalancer("oversoc.assets", "oversoc.findings"),
		}, nil)
		if err != nil {
			return nil, nil, err
		}
		runner, err := pipeline.NewRunner(pipeline.RunnerConfig{
			Name: "dedupe", Brokers: brokers, GroupID: group, Topics: inputs,
			TrackAssignments: true, StartCheck: stage.CheckPartitions,
		}, stage, writer, nil)
		if err != nil {
			writer.Close()
			return nil, nil, err
		}
		return runner, func() { writer.Close() }, nil
	}

	var result benchloop.Result
	for b.Loop() {
		stage, kafkaGo, franz, err := benchloop.Compare(ctx, topics, inputs, input, newRunner)
		if err != nil {
			b.Fatal(err)
		}
		result.Add(len(input), stage, kafkaGo, franz)
	}
	for unit, value := range result.Metrics() {
		b.ReportMetric(value, unit)
	}
}
