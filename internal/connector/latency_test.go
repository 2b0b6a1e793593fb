package connector_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/oversoc/cybereason-connector/internal/benchloop"
	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
)

// Load of BenchmarkPipelineLatency: latencyRate raw sensors per second for
// latencyEvents events.
const (
	latencyRate   = 1000
	latencyEvents = 10_000
)

// BenchmarkPipelineLatency publishes raw sensors of about 3 KB at a steady
// latencyRate per second to an in-process broker, with the enrich and dedupe
// stages running as `run` builds them, and reads the final assets topic. It
// reports the latency from each raw publish to the arrival of its record on
// the final topic: latency-p50-ms, latency-p99-ms and latency-max-ms.
func BenchmarkPipelineLatency(b *testing.B) {
	ctx := context.Background()
	raw, err := benchloop.RawInput(ctx, 13, latencyEvents, 0)
	if err != nil {
		b.Fatal(err)
	}
	normalized, err := benchloop.NormalizedInput(ctx, raw)
	if err != nil {
		b.Fatal(err)
	}
	// finalKeys[i] is the key of the final record of raw[i].
	finalKeys := make([]string, len(raw))
	for i := range normalized {
		finalKeys[i] = string(normalized[i].Key)
	}

	var latencies []time.Duration
	for b.Loop() {
		run, err := measureLatency(ctx, raw, finalKeys)
		if err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, run...)
	}
	slices.Sort(latencies)
	quantile := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(quantile(0.5), "latency-p50-ms")
	b.ReportMetric(quantile(0.99), "latency-p99-ms")
	b.ReportMetric(quantile(1), "latency-max-ms")
}

// measureLatency starts a broker and the enrich and dedupe stages, publishes
// raw at latencyRate and returns the latency of every final record.
func measureLatency(ctx context.Context, raw []kafka.Message, finalKeys []string) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, benchloop.Timeout)
	defer cancel()

	cfg := testConfigWithoutBroker("https://console.invalid", "unused")
	cfg.Stages = []string{config.StageEnrich, config.StageDedupe}
	broker, err := embeddedkafka.Start(embeddedkafka.Config{Topics: testTopicSpecs(cfg.Kafka.Topics, 4)}, nil)
	if err != nil {
		return nil, err
	}
	defer broker.Close()
	cfg.Kafka.Brokers = broker.Addrs()

	stages, err := connector.Build(cfg, connector.Options{}, nil)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var running sync.WaitGroup
	running.Go(func() { _ = stages.Run(runCtx, cfg.ShutdownTimeout) })
	defer running.Wait()
	defer stop()

	for !stages.EnrichRunner.Ready() || !stages.DedupeRunner.Ready() {
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return nil, fmt.Errorf("wait for the stages to join their groups: %w", err)
		}
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.ConsumeTopics(cfg.Kafka.Topics.Assets))
	if err != nil {
		return nil, err
	}
	defer consumer.Close()

	sent := make(map[string]time.Time, len(raw))
	var mu sync.Mutex
	produceErr := make(chan error, 1)
	go func() { produceErr <- producePaced(ctx, cfg.Kafka.Brokers, raw, finalKeys, sent, &mu) }()

	latencies := make([]time.Duration, 0, len(raw))
	for len(latencies) < len(raw) {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read final records: %d of %d arrived: %w", len(latencies), len(raw), err)
		}
		arrived := time.Now()
		mu.Lock()
		fetches.EachRecord(func(r *kgo.Record) {
			if start, ok := sent[string(r.Key)]; ok {
				latencies = append(latencies, arrived.Sub(start))
				delete(sent, string(r.Key))
			}
		})
		mu.Unlock()
	}
	return latencies, <-produceErr
}

// producePaced publishes raw[i] at its slot in a steady latencyRate schedule
// and records its start time under finalKeys[i].
func producePaced(ctx context.Context, brokers []string, raw []kafka.Message, finalKeys []string, sent map[string]time.Time, mu *sync.Mutex) error {
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer producer.Close()

	interval := time.Second / latencyRate
	start := time.Now()
	var failed error
	var failedOnce sync.Once
	for i := range raw {
		if err := sleepCtx(ctx, time.Until(start.Add(time.Duration(i)*interval))); err != nil {
			return err
		}
		record := &kgo.Record{Topic: raw[i].Topic, Key: raw[i].Key, Value: raw[i].Value}
		for _, h := range raw[i].Headers {
			record.Headers = append(record.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		mu.Lock()
		sent[finalKeys[i]] = time.Now()
		mu.Unlock()
		producer.Produce(ctx, record, func(_ *kgo.Record, err error) {
			if err != nil {
				failedOnce.Do(func() { failed = err })
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		return err
	}
	return failed
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
