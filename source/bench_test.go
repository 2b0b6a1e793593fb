package source_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

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

// BenchmarkCollectSensors reports, per inventory size, the live heap that one
// inventory adds on top of the fake console's own tenant: peak-live-heap-MiB
// is the largest live heap seen while a page is being published, less the
// live heap before the inventory. The page being published is live then.
func BenchmarkCollectSensors(b *testing.B) {
	for _, sensors := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("sensors=%d", sensors), func(b *testing.B) {
			tenant := cybereasontest.GenerateTenant(11, sensors, 0, time.Now())
			console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
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

			var peak uint64
			for b.Loop() {
				probe := &heapProbe{}
				stage, err := source.New(source.Config{
					ConsoleURL: console.URL, Tenant: "bench", Feeds: []string{source.FeedSensors},
					SensorsTopic: "sensors", SensorsInterval: time.Hour,
				}, client, probe, nil)
				if err != nil {
					b.Fatal(err)
				}

				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				if _, err := stage.CollectSensors(context.Background()); err != nil {
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
		})
	}
}
