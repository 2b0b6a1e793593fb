package source_test

import (
	"context"
	"errors"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// partitionedRig is a rig whose writer writes the sensor events to the partition the source sets, as
// the connector's writer does.
func partitionedRig(t *testing.T, sensors int) *rig {
	t.Helper()
	return newRigWithWriter(t, sensors, 0, cybereasontest.Options{}, sink.Config{Balancer: pipeline.PartitionBalancer(sensorsTopic)})
}

func TestCollectSensorsEndsInventoryOnEveryPartition(t *testing.T) {
	r := partitionedRig(t, 250)
	cfg := r.config()
	cfg.Partitions = r.writer
	stage := r.stage(t, cfg, nil)

	report, err := stage.CollectSensors(context.Background())
	if err != nil {
		t.Fatalf("CollectSensors: %v", err)
	}
	if report.EndEvents != 3 {
		t.Errorf("report has %d end events, want 3", report.EndEvents)
	}

	var hash kafka.Murmur2Balancer
	sensorsOn := make(map[int]int)
	ends := make(map[int]inventory.End)
	for _, msg := range kafkatest.ReadAll(t, r.brokers, sensorsTopic) {
		if inventory.IsEnd(msg) {
			end, err := inventory.Parse(msg.Value)
			if err != nil {
				t.Fatalf("end event on partition %d: %v", msg.Partition, err)
			}
			ends[msg.Partition] = end
			continue
		}
		if _, ended := ends[msg.Partition]; ended {
			t.Errorf("sensor %s follows the end event on partition %d", msg.Key, msg.Partition)
		}
		if want := hash.Balance(msg, 0, 1, 2); msg.Partition != want {
			t.Errorf("sensor %s on partition %d, want the murmur2 partition %d", msg.Key, msg.Partition, want)
		}
		if id, _ := sink.HeaderValue(msg.Headers, inventory.HeaderID); id == "" {
			t.Errorf("sensor %s has no %s header", msg.Key, inventory.HeaderID)
		}
		sensorsOn[msg.Partition]++
	}

	if len(ends) != 3 {
		t.Fatalf("end events on %d partitions, want 3", len(ends))
	}
	for partition, end := range ends {
		if end.Count != 250 {
			t.Errorf("partition %d: end event count %d, want 250", partition, end.Count)
		}
		if end.PartitionCount != sensorsOn[partition] {
			t.Errorf("partition %d: end event partition_count %d, want the %d sensors there", partition, end.PartitionCount, sensorsOn[partition])
		}
		if end.Partition != partition || end.Partitions != 3 {
			t.Errorf("partition %d: end event names partition %d of %d", partition, end.Partition, end.Partitions)
		}
	}
}

// failAfterFirstPage returns an error after passing the first page of sensors.
type failAfterFirstPage struct{ source.Client }

func (c failAfterFirstPage) ReadSensorInventory(ctx context.Context, fn func(cybereason.SensorPage) error) (cybereason.InventoryCheck, error) {
	errStop := errors.New("console connection reset")
	check, err := c.Client.ReadSensorInventory(ctx, func(page cybereason.SensorPage) error {
		if err := fn(page); err != nil {
			return err
		}
		return errStop
	})
	if errors.Is(err, errStop) {
		return check, errStop
	}
	return check, err
}

func TestCollectSensorsFailedInventoryWritesNoEnd(t *testing.T) {
	r := partitionedRig(t, 250)
	cfg := r.config()
	cfg.Partitions = r.writer
	stage := r.stage(t, cfg, failAfterFirstPage{r.client})

	report, err := stage.CollectSensors(context.Background())
	if err == nil {
		t.Fatal("CollectSensors of a failed listing returned no error")
	}
	if report.EndEvents != 0 {
		t.Errorf("report has %d end events, want 0", report.EndEvents)
	}

	msgs := kafkatest.ReadAll(t, r.brokers, sensorsTopic)
	if len(msgs) != 100 {
		t.Errorf("%d messages published, want the 100 sensors of the first page", len(msgs))
	}
	for _, msg := range msgs {
		if inventory.IsEnd(msg) {
			t.Errorf("end event on partition %d after a failed inventory", msg.Partition)
		}
	}
}

func TestCollectSensorsWithoutPartitionsWritesNoEnd(t *testing.T) {
	r := newRig(t, 20, 0, cybereasontest.Options{})
	stage := r.stage(t, r.config(), nil)

	report, err := stage.CollectSensors(context.Background())
	if err != nil {
		t.Fatalf("CollectSensors: %v", err)
	}
	if report.EndEvents != 0 {
		t.Errorf("report has %d end events, want 0", report.EndEvents)
	}
	for _, msg := range kafkatest.ReadAll(t, r.brokers, sensorsTopic) {
		if inventory.IsEnd(msg) {
			t.Errorf("end event on partition %d without Config.Partitions", msg.Partition)
		}
	}
}
