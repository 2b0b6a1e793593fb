package source_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// changingRig is a partitioned rig whose console applies change once, before it reads the
// tenant for the first request of sensors page atPage. order is the sort order of the sensors
// before any change.
func changingRig(t *testing.T, sensors, atPage int, change func(tenant *cybereasontest.Tenant, order []string)) *rig {
	t.Helper()
	var (
		current atomic.Pointer[rig]
		order   []string
		once    sync.Once
	)
	hook := func(limit, offset int) {
		r := current.Load()
		if r == nil || limit != 100 || offset != atPage {
			return
		}
		once.Do(func() { change(r.tenant, order) })
	}
	r := newRigWithWriter(t, sensors, 0, cybereasontest.Options{BeforeSensorsQuery: hook},
		sink.Config{Balancer: pipeline.PartitionBalancer(sensorsTopic)})

	err := r.client.QuerySensors(context.Background(), func(page cybereason.SensorPage) error {
		for _, sensor := range page.Sensors {
			order = append(order, sensor.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("QuerySensors to read the sort order: %v", err)
	}
	current.Store(r)
	return r
}

// addSensorsFirst adds count sensors whose machineName sorts before every generated one.
func addSensorsFirst(t *testing.T, tenant *cybereasontest.Tenant, count int) {
	t.Helper()
	var sensor map[string]any
	if err := json.Unmarshal(tenant.Sensors()[0], &sensor); err != nil {
		t.Fatalf("decode a sensor to copy: %v", err)
	}
	for i := range count {
		sensor["sensorId"] = fmt.Sprintf("added-%d:PYLUM-ADDED-%d", i, i)
		sensor["machineName"] = fmt.Sprintf("000-added-%d", i)
		raw, err := json.Marshal(sensor)
		if err != nil {
			t.Fatalf("encode an added sensor: %v", err)
		}
		if err := tenant.AddSensor(raw); err != nil {
			t.Errorf("AddSensor: %v", err)
		}
	}
}

// sensorEvents returns the sensor events of the sensors topic by key, and its end events.
func sensorEvents(t *testing.T, r *rig) (map[string]int, []inventory.End) {
	t.Helper()
	keys := make(map[string]int)
	var ends []inventory.End
	for _, msg := range kafkatest.ReadAll(t, r.brokers, sensorsTopic) {
		if inventory.IsEnd(msg) {
			end, err := inventory.Parse(msg.Value)
			if err != nil {
				t.Fatalf("end event on partition %d: %v", msg.Partition, err)
			}
			ends = append(ends, end)
			continue
		}
		keys[string(msg.Key)]++
	}
	return keys, ends
}

func TestCollectSensorsShiftedInventoryWritesNoEnd(t *testing.T) {
	// 40 sensors removed from the front shift the list far beyond the seam probes' margin.
	r := changingRig(t, 300, 2, func(tenant *cybereasontest.Tenant, order []string) {
		for _, id := range order[:40] {
			tenant.RemoveSensor(id)
		}
	})
	cfg := r.config()
	cfg.Partitions = r.writer
	stage := r.stage(t, cfg, nil)

	report, err := stage.CollectSensors(context.Background())
	if err != nil {
		t.Fatalf("CollectSensors: %v", err)
	}
	if report.Check.Complete || report.Check.Reason != cybereason.GapSeam {
		t.Errorf("check = %+v, want incomplete with %q", report.Check, cybereason.GapSeam)
	}
	if report.EndEvents != 0 {
		t.Errorf("report has %d end events, want 0", report.EndEvents)
	}
	if got := stage.Stats().IncompleteInventories.SeamGap; got != 1 {
		t.Errorf("stats count %d incomplete inventories with a seam gap, want 1", got)
	}

	keys, ends := sensorEvents(t, r)
	if len(ends) != 0 {
		t.Errorf("%d end events published for an incomplete inventory, want 0", len(ends))
	}
	if len(keys) != report.Sensors {
		t.Errorf("%d distinct sensors on the topic, report says %d published", len(keys), report.Sensors)
	}
}

func TestCollectSensorsChangingFleetPublishesEachSensorOnce(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, tenant *cybereasontest.Tenant, order []string)
	}{
		{"sensors added before the cursor", func(t *testing.T, tenant *cybereasontest.Tenant, _ []string) {
			addSensorsFirst(t, tenant, 3)
		}},
		{"sensors removed before the cursor", func(t *testing.T, tenant *cybereasontest.Tenant, order []string) {
			tenant.RemoveSensor(order[0])
			tenant.RemoveSensor(order[1])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := changingRig(t, 300, 2, func(tenant *cybereasontest.Tenant, order []string) { tt.change(t, tenant, order) })
			cfg := r.config()
			cfg.Partitions = r.writer
			stage := r.stage(t, cfg, nil)

			report, err := stage.CollectSensors(context.Background())
			if err != nil {
				t.Fatalf("CollectSensors: %v", err)
			}
			if !report.Check.Complete {
				t.Fatalf("check = %+v, want complete", report.Check)
			}
			if report.EndEvents != 3 {
				t.Errorf("report has %d end events, want 3", report.EndEvents)
			}

			keys, ends := sensorEvents(t, r)
			for key, times := range keys {
				if times != 1 {
					t.Errorf("sensor %s published %d times, want once", key, times)
				}
			}
			for _, id := range r.tenant.SensorIDs() {
				// A sensor added during the inventory may be published or not.
				if keys[id] == 0 && !strings.HasPrefix(id, "added-") {
					t.Errorf("sensor %s, still on the console, was not published", id)
				}
			}
			partitionCounts := 0
			for _, end := range ends {
				if end.Count != len(keys) {
					t.Errorf("end event on partition %d counts %d sensors, want the %d published", end.Partition, end.Count, len(keys))
				}
				partitionCounts += end.PartitionCount
			}
			if partitionCounts != len(keys) {
				t.Errorf("end events count %d sensors over the partitions, want the %d published", partitionCounts, len(keys))
			}
		})
	}
}
