package enrich

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/inventory"
)

// endMessage returns the inventory end event of partition 1 of 3, read from partition read.
func endMessage(t *testing.T, read int) kafka.Message {
	t.Helper()
	msgs, err := inventory.Messages(DefaultSensorsTopic, testSensorsSource, testTenant, time.UnixMilli(1767225600000), 5, []int{2, 1, 2})
	if err != nil {
		t.Fatalf("inventory.Messages: %v", err)
	}
	msg := msgs[1]
	msg.Partition = read
	return msg
}

func TestProcessForwardsInventoryEnd(t *testing.T) {
	stage := newTestStage(t)
	in := endMessage(t, 1)

	out := processOne(t, stage, in)
	if out.Topic != DefaultAssetsTopic || out.Partition != 1 {
		t.Errorf("end event forwarded to %s partition %d, want %s partition 1", out.Topic, out.Partition, DefaultAssetsTopic)
	}
	if !bytes.Equal(out.Value, in.Value) || !bytes.Equal(out.Key, in.Key) || !inventory.IsEnd(out) {
		t.Errorf("forwarded end event differs from the input: key %s value %s", out.Key, out.Value)
	}
	if got := stage.Stats().InventoryEnds; got != 1 {
		t.Errorf("InventoryEnds = %d, want 1", got)
	}
}

func TestProcessRejectsMalformedInventoryEnd(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(*kafka.Message)
		want   string
	}{
		{"wrong partition", func(msg *kafka.Message) { msg.Partition = 2 }, "names partition 1 but was read from partition 2"},
		{"bad value", func(msg *kafka.Message) { msg.Value = []byte(`{"inventory_id":""}`) }, "inventory_id: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newTestStage(t)
			msg := endMessage(t, 1)
			tt.adjust(&msg)

			_, err := stage.Process(context.Background(), msg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Process error = %v, want one containing %q", err, tt.want)
			}
			if stats := stage.Stats(); stats.InvalidInventoryEnds != 1 || stats.Rejected != 1 {
				t.Errorf("InvalidInventoryEnds = %d and Rejected = %d, want 1 and 1", stats.InvalidInventoryEnds, stats.Rejected)
			}
		})
	}
}

func TestProcessSensorKeepsPartitionAndInventory(t *testing.T) {
	stage := newTestStage(t)
	in := sensorMessage(t, readTestdata(t, "sensor-full.json"))
	in.Partition = 2
	in.Headers = append(in.Headers, kafka.Header{Key: inventory.HeaderID, Value: []byte("console.example.net/sensors/1")})

	out := processOne(t, stage, in)
	if out.Partition != 2 {
		t.Errorf("asset record on partition %d, want the input partition 2", out.Partition)
	}
	if got := headerValue(t, out, inventory.HeaderID); got != "console.example.net/sensors/1" {
		t.Errorf("%s header = %q, want the input's", inventory.HeaderID, got)
	}
}
