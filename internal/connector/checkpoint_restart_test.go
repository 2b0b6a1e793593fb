package connector_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// TestRestartRereadsOnlyOverlap runs the whole connector for one collection
// cycle, stops it cleanly and starts it again on the same broker and
// console. The restarted source must resume from the saved cursors and
// re-read only the MalOps and malware alerts of the overlap window, and
// dedupe must absorb them and the repeated sensor inventory: the final
// topics gain no record.
func TestRestartRereadsOnlyOverlap(t *testing.T) {
	const sensors, malops = 40, 12
	tenant := cybereasontest.GenerateTenant(11, sensors, malops, time.Now())
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
	defer console.Close()
	cfg := testConfig(t, console.URL, cybereasontest.DefaultPassword, 3)

	// Each overlap reaches back past the newest 3 items, and not as far
	// as the 4th, or past a few more when times repeat.
	var wantMalops, wantMalware int
	cfg.Source.MalopsOverlap, wantMalops = overlapOfNewest(t, itemTimes(t, tenant.Malops(), "lastUpdateTime"), 3)
	cfg.Source.MalwareOverlap, wantMalware = overlapOfNewest(t, itemTimes(t, tenant.Malware(), "timestamp"), 3)

	first := runCycle(t, cfg, func(stats source.Stats) bool {
		return stats.Inventories == 1 && stats.MalopPolls == 1 && stats.MalwarePolls == 1 && stats.PolicyPolls == 1
	})
	if first.source.MalopsPublished != malops {
		t.Fatalf("first start published %d MalOps, want all %d", first.source.MalopsPublished, malops)
	}
	if got, want := first.source.MalwarePublished, len(tenant.Malware()); got != want {
		t.Fatalf("first start published %d malware alerts, want all %d", got, want)
	}
	before := topicCounts(t, cfg)

	second := runCycle(t, cfg, func(stats source.Stats) bool {
		return stats.Inventories == 1 && stats.MalopPolls == 1 && stats.MalwarePolls == 1 && stats.PolicyPolls == 1
	})
	after := topicCounts(t, cfg)

	if got := second.source.MalopsPublished; got != wantMalops {
		t.Errorf("restarted source published %d MalOps, want the %d of the overlap window", got, wantMalops)
	}
	if got := after[cfg.Kafka.Topics.RawMalops] - before[cfg.Kafka.Topics.RawMalops]; got != wantMalops {
		t.Errorf("%s gained %d records, want the %d MalOps of the overlap window", cfg.Kafka.Topics.RawMalops, got, wantMalops)
	}
	if got := second.source.MalwarePublished; got != wantMalware {
		t.Errorf("restarted source published %d malware alerts, want the %d of the overlap window", got, wantMalware)
	}
	if got := after[cfg.Kafka.Topics.RawMalware] - before[cfg.Kafka.Topics.RawMalware]; got != wantMalware {
		t.Errorf("%s gained %d records, want the %d alerts of the overlap window", cfg.Kafka.Topics.RawMalware, got, wantMalware)
	}
	if got := second.source.SensorsPublished; got != sensors {
		t.Errorf("restarted source published %d sensors, want the whole inventory of %d", got, sensors)
	}

	if second.dedupeProduced != 0 {
		t.Errorf("dedupe published %d records after the restart, want 0", second.dedupeProduced)
	}
	for _, topic := range []string{cfg.Kafka.Topics.Assets, cfg.Kafka.Topics.Findings} {
		if after[topic] != before[topic] {
			t.Errorf("%s has %d records after the restart, want still %d", topic, after[topic], before[topic])
		}
	}
	for _, topic := range []string{cfg.Kafka.Topics.RawSensors, cfg.Kafka.Topics.RawMalops, cfg.Kafka.Topics.RawMalware,
		cfg.Kafka.Topics.NormalizedAssets, cfg.Kafka.Topics.NormalizedFindings} {
		if n := after[topic+".dlq"]; n != 0 {
			t.Errorf("%s.dlq has %d dead letters, want none", topic, n)
		}
	}
}

// cycleTimeout only guards against a hung test. A cycle takes seconds, and
// the group joins of a start can wait up to the 30s default session timeout.
const cycleTimeout = 3 * time.Minute

// cycleResult is what one start of the connector did.
type cycleResult struct {
	source         source.Stats
	dedupeProduced int64
}

// runCycle builds and runs every stage until the source's stats satisfy
// done and enrich and dedupe have committed everything the source added,
// then stops them cleanly.
func runCycle(t *testing.T, cfg *config.Config, done func(source.Stats) bool) cycleResult {
	t.Helper()
	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	go func() { finished <- stages.Run(ctx, cfg.ShutdownTimeout) }()
	stopRun := sync.OnceValue(func() error {
		cancel()
		return <-finished
	})
	defer stopRun()

	// Once the source has published, enrich has caught up when its group
	// committed every raw record but policies, and then dedupe has when its
	// group committed every normalized record. A rebalance can make a
	// runner consume a batch twice, so its counters are no measure.
	topics := cfg.Kafka.Topics
	raw := []string{topics.RawSensors, topics.RawMalops, topics.RawMalware}
	normalized := []string{topics.NormalizedAssets, topics.NormalizedFindings}
	deadline := time.Now().Add(cycleTimeout)
	for !done(stages.Source.Stats()) ||
		groupLag(t, cfg.Kafka.Brokers, cfg.Kafka.EnrichGroup, raw) != 0 ||
		groupLag(t, cfg.Kafka.Brokers, cfg.Kafka.DedupeGroup, normalized) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the cycle did not complete within %s: source %+v, enrich %+v, dedupe %+v",
				cycleTimeout, stages.Source.Stats(), stages.EnrichRunner.Stats(), stages.DedupeRunner.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stopRun(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return cycleResult{source: stages.Source.Stats(), dedupeProduced: stages.DedupeRunner.Stats().Produced}
}

// topicCounts returns the record count of every topic of cfg and of its
// dead-letter topic.
func topicCounts(t *testing.T, cfg *config.Config) map[string]int {
	t.Helper()
	topics := cfg.Kafka.Topics
	counts := map[string]int{}
	for _, topic := range []string{topics.RawSensors, topics.RawMalops, topics.RawMalware, topics.RawPolicies,
		topics.NormalizedAssets, topics.NormalizedFindings, topics.Assets, topics.Findings} {
		counts[topic] = len(kafkatest.ReadAll(t, cfg.Kafka.Brokers, topic))
		counts[topic+".dlq"] = len(kafkatest.ReadAll(t, cfg.Kafka.Brokers, topic+".dlq"))
	}
	return counts
}

// itemTimes returns the epoch-millisecond value of field of each item.
func itemTimes(t *testing.T, items []json.RawMessage, field string) []int64 {
	t.Helper()
	times := make([]int64, 0, len(items))
	for _, raw := range items {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		var value int64
		if err := json.Unmarshal(fields[field], &value); err != nil {
			t.Fatalf("item %s has no epoch-millisecond %s: %v", raw, field, err)
		}
		times = append(times, value)
	}
	return times
}

// overlapOfNewest returns an overlap that, subtracted from the newest of
// times, gives a window start after which lie the newest n items, or a
// few more when the n-th newest time repeats, and no other. It also
// returns that count. It fails the test when every item would be inside.
func overlapOfNewest(t *testing.T, times []int64, n int) (time.Duration, int) {
	t.Helper()
	sorted := slices.Sorted(slices.Values(times))
	slices.Reverse(sorted)
	for count := n; count < len(sorted); count++ {
		// The start sits 1ms after the first item left out, and at least
		// 1ms before the last item inside.
		if sorted[count-1]-sorted[count] >= 2 {
			start := sorted[count] + 1
			return time.Duration(sorted[0]-start) * time.Millisecond, count
		}
	}
	t.Fatalf("no overlap leaves out an item among %d times", len(times))
	return 0, 0
}

// groupLag returns the count of messages of topics that groupID has not
// committed, or -1 when it cannot be read yet.
func groupLag(t *testing.T, brokers []string, groupID string, topics []string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	lag, err := pipeline.GroupLag(ctx, brokers, groupID, topics)
	if err != nil {
		return -1
	}
	return lag
}
