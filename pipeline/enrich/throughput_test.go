package enrich_test

import (
	"context"
	"testing"

	"github.com/oversoc/cybereason-connector/internal/benchloop"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/enrich"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// Input of BenchmarkEnrichThroughput: sensors of about 3 KB and MalOps,
// spread over inputPartitions partitions per topic.
const (
	benchSensors    = 8000
	benchMalops     = 2000
	inputPartitions = 4
)

// BenchmarkEnrichThroughput runs the enrich stage, as the connector builds
// it, over raw sensors and MalOps on an in-process broker, beside a plain
// kafka-go loop and a franz-go loop that copy the same input on the same
// broker in the same run. It reports the stage's msgs/s and its ratios to
// the loops (x-kafkago-loop, x-franz-loop). Each iteration starts a fresh
// broker.
func BenchmarkEnrichThroughput(b *testing.B) {
	ctx := context.Background()
	input, err := benchloop.RawInput(ctx, 7, benchSensors, benchMalops)
	if err != nil {
		b.Fatal(err)
	}
	validator, err := schemas.NewValidator()
	if err != nil {
		b.Fatal(err)
	}

	inputs := []string{benchloop.RawSensorsTopic, benchloop.RawMalopsTopic}
	var topics []embeddedkafka.Topic
	for _, name := range []string{
		benchloop.RawSensorsTopic, benchloop.RawMalopsTopic,
		enrich.DefaultAssetsTopic, enrich.DefaultFindingsTopic,
		benchloop.RawSensorsTopic + ".dlq", benchloop.RawMalopsTopic + ".dlq",
	} {
		topics = append(topics, embeddedkafka.Topic{Name: name, Partitions: inputPartitions})
	}

	newRunner := func(brokers []string, group string) (*pipeline.Runner, func(), error) {
		stage, err := enrich.New(enrich.Config{
			SensorsTopic: benchloop.RawSensorsTopic, MalopsTopic: benchloop.RawMalopsTopic,
			Validator: validator,
		}, nil)
		if err != nil {
			return nil, nil, err
		}
		writer, err := sink.NewWriter(sink.Config{Brokers: brokers}, nil)
		if err != nil {
			return nil, nil, err
		}
		runner, err := pipeline.NewRunner(pipeline.RunnerConfig{
			Name: "enrich", Brokers: brokers, GroupID: group, Topics: inputs, TrackAssignments: true,
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
