// Package benchloop is the shared plumbing of the stage throughput
// benchmarks: raw input made by the real source from the fake console, and
// two reference loops (kafka-go and franz-go) that copy the same input from
// topic to topic on the same broker, so that a stage's throughput can be
// reported as a ratio to what the Kafka clients alone reach.
package benchloop

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/enrich"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// Raw topics that RawInput writes to.
const (
	RawSensorsTopic = "cybereason.raw.sensors"
	RawMalopsTopic  = "cybereason.raw.malops"
)

// Timeout bounds every step of a benchmark run, so that a stuck run fails
// instead of hanging.
const Timeout = 5 * time.Minute

// RawInput returns the messages that the source stage publishes for a
// generated tenant of the given numbers of sensors (about 3 KB each) and
// MalOps: the real client reads the fake console, and the real stage builds
// each message with its key and CloudEvents headers. Sensors come first.
func RawInput(ctx context.Context, seed int64, sensors, malops int) ([]kafka.Message, error) {
	now := time.Now()
	tenant := cybereasontest.GenerateTenant(seed, sensors, malops, now)
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
	defer console.Close()

	client, err := cybereason.NewClient(cybereason.Config{
		BaseURL:  console.URL,
		Username: cybereasontest.DefaultUsername,
		Password: func() (string, error) { return cybereasontest.DefaultPassword, nil },
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("create console client: %w", err)
	}
	defer client.CloseIdleConnections()

	captured := &capture{}
	stage, err := source.New(source.Config{
		ConsoleURL: console.URL, Tenant: "bench.cybereason.example",
		Feeds:        []string{source.FeedSensors, source.FeedMalops},
		SensorsTopic: RawSensorsTopic, SensorsInterval: time.Hour,
		MalopsTopic: RawMalopsTopic, MalopsInterval: time.Hour,
		MalopsWindow: source.Window{Lookback: 8 * 24 * time.Hour},
		Now:          func() time.Time { return now },
	}, client, captured, nil)
	if err != nil {
		return nil, fmt.Errorf("create source stage: %w", err)
	}
	if _, err := stage.CollectSensors(ctx); err != nil {
		return nil, err
	}
	if malops > 0 {
		if _, err := stage.CollectMalops(ctx); err != nil {
			return nil, err
		}
	}
	return captured.msgs, nil
}

// capture is a source Publisher that keeps what it is given.
type capture struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (c *capture) Write(_ context.Context, msgs ...kafka.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, msgs...)
	return nil
}

// Produce writes msgs (each with its Topic set) with franz-go, partitioned by
// the murmur2 hash of the key as kafka-go's sink does, and waits for every
// acknowledgement.
func Produce(ctx context.Context, brokers []string, msgs []kafka.Message) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		return fmt.Errorf("create franz-go producer: %w", err)
	}
	defer client.Close()

	records := make([]*kgo.Record, len(msgs))
	for i := range msgs {
		records[i] = toRecord(&msgs[i], msgs[i].Topic)
	}
	if err := client.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d messages: %w", len(msgs), err)
	}
	return nil
}

func toRecord(msg *kafka.Message, topic string) *kgo.Record {
	record := &kgo.Record{Topic: topic, Key: msg.Key, Value: msg.Value}
	if len(msg.Headers) > 0 {
		record.Headers = make([]kgo.RecordHeader, len(msg.Headers))
		for i, h := range msg.Headers {
			record.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return record
}

// Span is the time from the first message consumed to the commit of the last, with the CPU time
// that the whole process used meanwhile. The broker runs in the same process, so CPU includes its
// share.
type Span struct {
	First, Last time.Time
	CPU         time.Duration
}

// Duration returns Last - First.
func (s Span) Duration() time.Duration { return s.Last.Sub(s.First) }

// start records the first message at now, if none was recorded yet.
func (s *Span) start() {
	if s.First.IsZero() {
		s.First = time.Now()
		s.CPU = -processCPU()
	}
}

// end records the commit of the last message at now.
func (s *Span) end() {
	s.Last = time.Now()
	s.CPU += processCPU()
}

// KafkaGoLoop consumes topics from the start in a new consumer group, writes
// each message unchanged to out and commits each batch after its write was
// acknowledged, until n messages are committed. It batches as the pipeline
// runner does by default (up to pipeline.DefaultBatchSize messages, waiting
// pipeline.DefaultBatchWait after the first) and writes with the sink's
// default batch settings and acks from all replicas.
func KafkaGoLoop(ctx context.Context, brokers []string, group string, topics []string, out string, n int) (Span, error) {
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: group, GroupTopics: topics,
		StartOffset: kafka.FirstOffset, MaxWait: pipeline.DefaultMaxWait,
	})
	defer reader.Close()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	writer := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Transport:    transport,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    sink.DefaultBatchSize,
		BatchTimeout: sink.DefaultBatchTimeout,
		BatchBytes:   sink.DefaultBatchBytes - 64,
	}
	defer writer.Close() // before the transport's connections are closed

	var span Span
	done := 0
	for done < n {
		batch, err := fetchBatch(ctx, reader, min(pipeline.DefaultBatchSize, n-done))
		if err != nil {
			return span, fmt.Errorf("kafka-go loop: fetch: %w", err)
		}
		span.start()
		copies := make([]kafka.Message, len(batch))
		for i := range batch {
			copies[i] = kafka.Message{Topic: out, Key: batch[i].Key, Value: batch[i].Value, Headers: batch[i].Headers}
		}
		if err := writer.WriteMessages(ctx, copies...); err != nil {
			return span, fmt.Errorf("kafka-go loop: write: %w", err)
		}
		if err := reader.CommitMessages(ctx, batch...); err != nil {
			return span, fmt.Errorf("kafka-go loop: commit: %w", err)
		}
		done += len(batch)
	}
	span.end()
	return span, nil
}

func fetchBatch(ctx context.Context, reader *kafka.Reader, size int) ([]kafka.Message, error) {
	first, err := reader.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := append(make([]kafka.Message, 0, size), first)
	waitCtx, cancel := context.WithTimeout(ctx, pipeline.DefaultBatchWait)
	defer cancel()
	for len(batch) < size {
		msg, err := reader.FetchMessage(waitCtx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			break
		}
		batch = append(batch, msg)
	}
	return batch, nil
}

// FranzLoop does what KafkaGoLoop does with a franz-go client: poll the
// fetches buffered so far, produce them to out and wait for the acks, then
// commit their offsets, until n messages are committed.
func FranzLoop(ctx context.Context, brokers []string, group string, topics []string, out string, n int) (Span, error) {
	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
	if err != nil {
		return Span{}, fmt.Errorf("franz-go loop: create client: %w", err)
	}
	defer client.Close()

	var span Span
	done := 0
	for done < n {
		fetches := client.PollRecords(ctx, pipeline.DefaultBatchSize)
		if err := ctx.Err(); err != nil {
			return span, err
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return span, fmt.Errorf("franz-go loop: fetch %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		consumed := fetches.Records()
		if len(consumed) == 0 {
			continue
		}
		span.start()
		copies := make([]*kgo.Record, len(consumed))
		for i, r := range consumed {
			copies[i] = &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
		if err := client.ProduceSync(ctx, copies...).FirstErr(); err != nil {
			return span, fmt.Errorf("franz-go loop: produce: %w", err)
		}
		if err := client.CommitRecords(ctx, consumed...); err != nil {
			return span, fmt.Errorf("franz-go loop: commit: %w", err)
		}
		done += len(consumed)
	}
	span.end()
	return span, nil
}

// RunStage runs runner until its group has consumed and committed every one
// of the n messages of topics, then stops it. The span starts when the
// runner has consumed its first message and ends when the group's lag is
// first seen at zero. Both are polled every millisecond.
func RunStage(ctx context.Context, runner *pipeline.Runner, brokers []string, group string, topics []string, n int) (Span, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()

	span, err := watch(ctx, runner, brokers, group, topics, n, done)
	cancel()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	return span, err
}

func watch(ctx context.Context, runner *pipeline.Runner, brokers []string, group string, topics []string, n int, done <-chan error) (Span, error) {
	var span Span
	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return span, ctx.Err()
		case err := <-done:
			return span, errors.Join(errors.New("runner stopped before consuming its input"), err)
		case <-ticker.C:
		}

		consumed := runner.Stats().Consumed
		if consumed > 0 {
			span.start()
		}
		if consumed < int64(n) {
			continue
		}
		lag, err := pipeline.GroupLag(ctx, brokers, group, topics)
		if err == nil && lag == 0 {
			span.end()
			return span, nil
		}
	}
}

// Result is the throughput of a stage and of the two reference loops over
// the same input.
type Result struct {
	Messages              int
	Stage, KafkaGo, Franz Total
}

// Total is the wall time and CPU time of spans summed over runs.
type Total struct {
	Wall, CPU time.Duration
}

func (t *Total) add(s Span) {
	t.Wall += s.Duration()
	t.CPU += s.CPU
}

// Add sums the spans of one more run.
func (r *Result) Add(messages int, stage, kafkaGo, franz Span) {
	r.Messages += messages
	r.Stage.add(stage)
	r.KafkaGo.add(kafkaGo)
	r.Franz.add(franz)
}

// Metrics returns the figures of the runs by unit. msgs/s is the stage's
// rate, x-kafkago-loop and x-franz-loop its ratios to the loops' rates, and
// kafkago-msgs/s and franz-msgs/s the loops' own. cpu-us/msg,
// kafkago-cpu-us/msg and franz-cpu-us/msg are the microseconds of process
// CPU per message of each, the in-process broker's included, or 0 where the
// system does not report CPU time.
func (r Result) Metrics() map[string]float64 {
	rate := func(t Total) float64 { return float64(r.Messages) / t.Wall.Seconds() }
	cpu := func(t Total) float64 { return float64(t.CPU.Microseconds()) / float64(r.Messages) }
	return map[string]float64{
		"msgs/s":             rate(r.Stage),
		"kafkago-msgs/s":     rate(r.KafkaGo),
		"franz-msgs/s":       rate(r.Franz),
		"x-kafkago-loop":     rate(r.Stage) / rate(r.KafkaGo),
		"x-franz-loop":       rate(r.Stage) / rate(r.Franz),
		"cpu-us/msg":         cpu(r.Stage),
		"kafkago-cpu-us/msg": cpu(r.KafkaGo),
		"franz-cpu-us/msg":   cpu(r.Franz),
	}
}

// NewRunner builds the stage under test on brokers, consuming in group.
// The cleanup function closes what it opened, such as the writer.
type NewRunner func(brokers []string, group string) (runner *pipeline.Runner, cleanup func(), err error)

// Compare starts a fresh in-process broker with topics and the loops' output
// topics, writes input to it, then runs, one after the other on the same
// input: the kafka-go loop, the franz-go loop and the stage that newRunner
// builds, each in its own consumer group of inputs.
//
// Each run carries the profiler label phase (kafkago-loop, franz-loop or stage), and so do the
// goroutines it starts, so that `go tool pprof -tagfocus phase=stage` shows the CPU of the stage
// alone. The broker's goroutines, started before, carry none.
func Compare(ctx context.Context, topics []embeddedkafka.Topic, inputs []string, input []kafka.Message, newRunner NewRunner) (stage, kafkaGo, franz Span, err error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()

	partitions := 1
	for _, t := range topics {
		partitions = max(partitions, t.Partitions)
	}
	all := append(slices.Clone(topics),
		embeddedkafka.Topic{Name: "bench.loop.kafkago", Partitions: partitions},
		embeddedkafka.Topic{Name: "bench.loop.franz", Partitions: partitions})
	broker, err := embeddedkafka.Start(embeddedkafka.Config{Topics: all}, nil)
	if err != nil {
		return stage, kafkaGo, franz, err
	}
	defer broker.Close()
	brokers := broker.Addrs()

	if err := Produce(ctx, brokers, input); err != nil {
		return stage, kafkaGo, franz, err
	}
	// Each run starts without the garbage of the steps before it, which would otherwise be
	// collected during, and charged to, the next run.
	runtime.GC()
	pprof.Do(ctx, pprof.Labels("phase", "kafkago-loop"), func(ctx context.Context) {
		kafkaGo, err = KafkaGoLoop(ctx, brokers, "bench-kafkago", inputs, "bench.loop.kafkago", len(input))
	})
	if err != nil {
		return stage, kafkaGo, franz, err
	}
	runtime.GC()
	pprof.Do(ctx, pprof.Labels("phase", "franz-loop"), func(ctx context.Context) {
		franz, err = FranzLoop(ctx, brokers, "bench-franz", inputs, "bench.loop.franz", len(input))
	})
	if err != nil {
		return stage, kafkaGo, franz, err
	}

	runner, cleanup, err := newRunner(brokers, "bench-stage")
	if err != nil {
		return stage, kafkaGo, franz, err
	}
	defer cleanup()
	runtime.GC()
	pprof.Do(ctx, pprof.Labels("phase", "stage"), func(ctx context.Context) {
		stage, err = RunStage(ctx, runner, brokers, "bench-stage", inputs, len(input))
	})
	return stage, kafkaGo, franz, err
}

// Topics of the normalized records that NormalizedInput returns.
const (
	NormalizedAssetsTopic   = enrich.DefaultAssetsTopic
	NormalizedFindingsTopic = enrich.DefaultFindingsTopic
)

// NormalizedInput runs the enrich stage over raw and returns its records,
// as dedupe reads them.
func NormalizedInput(ctx context.Context, raw []kafka.Message) ([]kafka.Message, error) {
	validator, err := schemas.NewValidator()
	if err != nil {
		return nil, err
	}
	stage, err := enrich.New(enrich.Config{
		SensorsTopic: RawSensorsTopic, MalopsTopic: RawMalopsTopic,
		Validator: validator,
	}, nil)
	if err != nil {
		return nil, err
	}

	records := make([]kafka.Message, 0, len(raw))
	for _, msg := range raw {
		out, err := stage.Process(ctx, msg)
		if err != nil {
			return nil, fmt.Errorf("enrich raw message %s: %w", msg.Key, err)
		}
		records = append(records, out...)
	}
	return records, nil
}
