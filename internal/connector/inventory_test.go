package connector_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// churningFleet changes a tenant while the connector pages through it, as sensors register and
// leave a console: at page 2 of each inventory a sensor that sorts last registers, and at page 4
// sensors that sort first leave, one in odd inventories and 20 in even ones, with one that
// sorts last. It records the sensors that left.
type churningFleet struct {
	t        *testing.T
	tenant   *cybereasontest.Tenant
	pageSize int

	mu          sync.Mutex
	inventories int
	left        map[string]bool
}

func (f *churningFleet) beforeSensorsQuery(limit, offset int) {
	if limit != f.pageSize {
		return // a seam probe
	}
	f.mu.Lock()
	defer f.mu.Unlock()

	switch offset {
	case 0:
		f.inventories++
	case 2:
		f.add(fmt.Sprintf("zzz-added-%d", f.inventories))
	case 4:
		order := f.sortedIDs()
		leaving := []string{order[len(order)-1]}
		if f.inventories%2 == 1 {
			leaving = append(leaving, order[0])
		} else {
			leaving = append(leaving, order[:20]...)
		}
		for _, id := range leaving {
			if f.tenant.RemoveSensor(id) {
				f.left[id] = true
			}
		}
	}
}

// add registers a copy of a sensor with a new sensorId and machineName.
func (f *churningFleet) add(machineName string) {
	var sensor map[string]any
	if err := json.Unmarshal(f.tenant.Sensors()[0], &sensor); err != nil {
		f.t.Errorf("decode a sensor to copy: %v", err)
		return
	}
	sensor["sensorId"] = "added:" + machineName
	sensor["machineName"] = machineName
	raw, err := json.Marshal(sensor)
	if err != nil {
		f.t.Errorf("encode an added sensor: %v", err)
		return
	}
	if err := f.tenant.AddSensor(raw); err != nil {
		f.t.Errorf("AddSensor: %v", err)
	}
}

// sortedIDs returns the sensorIds in the console's order: by machineName, then sensorId.
func (f *churningFleet) sortedIDs() []string {
	type entry struct{ id, name string }
	var entries []entry
	for _, raw := range f.tenant.Sensors() {
		var sensor struct {
			SensorID    string `json:"sensorId"`
			MachineName string `json:"machineName"`
		}
		if err := json.Unmarshal(raw, &sensor); err != nil {
			f.t.Errorf("decode a sensor: %v", err)
			return nil
		}
		entries = append(entries, entry{sensor.SensorID, sensor.MachineName})
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.id, b.id)) })
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.id
	}
	return ids
}

// TestRunChangingFleetRemovesOnlyLeftSensors runs every stage while the fleet changes during
// each inventory, and checks that dedupe removes the sensors that left and no other.
func TestRunChangingFleetRemovesOnlyLeftSensors(t *testing.T) {
	const pageSize = 50 // 8 pages of 400 sensors, with seam probes of a margin of 2
	tenant := cybereasontest.GenerateTenant(5, 400, 0, time.Now())
	fleet := &churningFleet{t: t, tenant: tenant, pageSize: pageSize, left: make(map[string]bool)}
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{BeforeSensorsQuery: fleet.beforeSensorsQuery})
	defer console.Close()

	cfg := testConfig(t, console.URL, cybereasontest.DefaultPassword, 3)
	cfg.Cybereason.PageSize = pageSize
	cfg.Cybereason.PageConcurrency = 3
	cfg.Source.Feeds = []string{"sensors"}
	cfg.Source.SensorsInterval = 200 * time.Millisecond
	cfg.Kafka.DedupeMissedInventories = 1

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stages.Run(ctx, cfg.ShutdownTimeout) }()

	kafkatest.WaitFor(t, func() bool { return stages.Source.Stats().Inventories >= 6 })
	// The removals of the last complete inventory reach the assets topic after its end events.
	kafkatest.WaitFor(t, func() bool { return len(tombstones(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.Assets)) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	stats := stages.Source.Stats()
	if stats.IncompleteInventories.SeamGap == 0 {
		t.Errorf("no inventory was incomplete, want the even ones with 20 sensors leaving to be; stats %+v", stats)
	}
	fleet.mu.Lock()
	defer fleet.mu.Unlock()
	prefix := "cybereason:" + cfg.Cybereason.Tenant + ":"
	removed := tombstones(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.Assets)
	for _, key := range removed {
		id := strings.TrimPrefix(key, prefix)
		if !fleet.left[id] {
			t.Errorf("asset %s was removed, but sensor %s is still on the console", key, id)
		}
	}
	t.Logf("%d inventories (%d with a seam gap), %d sensors left the console, %d assets removed",
		stats.Inventories, stats.IncompleteInventories.SeamGap, len(fleet.left), len(removed))
}

// tombstones returns the keys of the tombstones on topic.
func tombstones(t *testing.T, brokers []string, topic string) []string {
	t.Helper()
	var keys []string
	for _, msg := range kafkatest.ReadAll(t, brokers, topic) {
		if msg.Value == nil {
			keys = append(keys, string(msg.Key))
		}
	}
	return keys
}
