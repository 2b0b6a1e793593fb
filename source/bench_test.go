package source_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// heapProbe is a Publisher that drops what it is given and records the
// largest live heap seen at each page, so a benchmark measures the client
// and the stage without a broker keeping every message in memory. It
// collects garbage before each reading: without that, HeapAlloc mostly
// shows how much garbage the collector let pile up, which grows with the
// fake console's tenant held in the same process.
type heapProbe struct {
	mu       sync.Mutex
	messages int
	peak     uint64
}

func (p *heapProbe) Write(_ context.Context, msgs ...kafka.Message) error {
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.messages += len(msgs)
	p.peak = max(p.peak, stats.HeapAlloc)
	return nil
}

// benchPageDelay is the fake console's response time per page in
// BenchmarkCollectSensors.
const benchPageDelay = 50 * time.Millisecond

// BenchmarkCollectSensors runs, per inventory size, two inventories against
// the fake console, which waits benchPageDelay before each page. The client
// has its default PageConcurrency, 3, the connector's default too:
//
//   - a timed one that publishes to an in-process broker with the sink's
//     Writer, as the connector does. It reports inventory-seconds and
//     x-latency-floor: the inventory's duration over the latency floor,
//     pages x benchPageDelay, the time the console alone takes to respond to
//     one page at a time. Pages requested together overlap their waits, so the
//     ratio can be below 1.
//   - a heap one whose publisher forces a garbage collection at every page.
//     It reports peak-live-heap-MiB: the largest live heap seen while a page
//     is being published, less the live heap before the inventory, which
//     holds the fake console's tenant. The page being published and the
//     pages requested ahead of it are live then.
func BenchmarkCollectSensors(b *testing.B) {
	for _, sensors := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("sensors=%d", sensors), func(b *testing.B) {
			tenant := cybereasontest.GenerateTenant(11, sensors, 0, time.Now())
			console := cybereasontest.NewServer(tenant, cybereasontest.Options{PageDelay: benchPageDelay})
			defer console.Close()
			client, err := cybereason.NewClient(cybereason.Config{
				BaseURL:  console.URL,
				Username: cybereasontest.DefaultUsername,
				Password: func() (string, error) { return cybereasontest.DefaultPassword, nil },
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer client.CloseIdleConnections()

			newStage := func(publisher source.Publisher) *source.Stage {
				stage, err := source.New(source.Config{
					ConsoleURL: console.URL, Tenant: "bench", Feeds: []string{source.FeedSensors},
					SensorsTopic: "sensors", SensorsInterval: time.Hour,
				}, client, publisher, nil)
				if err != nil {
					b.Fatal(err)
				}
				return stage
			}

			var (
				peak        uint64
				elapsed     time.Duration
				floor       time.Duration
				inventories int
			)
			for b.Loop() {
				writer := newBrokerWriter(b)
				start := time.Now()
				report, err := newStage(writer).CollectSensors(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				floor += time.Duration(report.Pages) * benchPageDelay
				inventories++
				if published := writer.Stats().Messages; published != int64(sensors) {
					b.Fatalf("published %d sensors, want %d", published, sensors)
				}

				probe := &heapProbe{}
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				if _, err := newStage(probe).CollectSensors(context.Background()); err != nil {
					b.Fatal(err)
				}
				if probe.messages != sensors {
					b.Fatalf("published %d sensors, want %d", probe.messages, sensors)
				}
				if probe.peak > before.HeapAlloc {
					peak = max(peak, probe.peak-before.HeapAlloc)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-live-heap-MiB")
			b.ReportMetric(float64(sensors), "sensors")
			b.ReportMetric(elapsed.Seconds()/float64(inventories), "inventory-seconds")
			b.ReportMetric(elapsed.Seconds()/floor.Seconds(), "x-latency-floor")
		})
	}
}

// newBrokerWriter starts an in-process broker with the topic "sensors" and
// returns a sink Writer to it. The broker stops when the benchmark ends.
func newBrokerWriter(b *testing.B) *sink.Writer {
	b.Helper()
	brokers := kafkatest.NewBroker(b, embeddedkafka.Topic{Name: "sensors", Partitions: 4})
	writer, err := sink.NewWriter(sink.Config{Brokers: brokers}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { writer.Close() })
	return writer
}
