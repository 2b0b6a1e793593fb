package inventory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/inventory"
)

func TestParseRejectsMalformedEvents(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"not JSON", `{"inventory_id":`, "decode inventory end event"},
		{"unknown member", `{"inventory_id":"t/sensors/1","start_time":1,"count":1,"partition_count":1,"partition":0,"partitions":1,"extra":1}`, "unknown field"},
		{"missing id", `{"start_time":1,"count":1,"partition_count":1,"partition":0,"partitions":1}`, "inventory_id: missing"},
		{"id without tenant", `{"inventory_id":"sensors-1","start_time":1,"count":1,"partition_count":1,"partition":0,"partitions":1}`, "inventory_id: must have the form"},
		{"zero start", `{"inventory_id":"t/sensors/1","start_time":0,"count":1,"partition_count":1,"partition":0,"partitions":1}`, "start_time"},
		{"negative count", `{"inventory_id":"t/sensors/1","start_time":1,"count":-1,"partition_count":0,"partition":0,"partitions":1}`, "count: must not be negative"},
		{"partition count above count", `{"inventory_id":"t/sensors/1","start_time":1,"count":1,"partition_count":2,"partition":0,"partitions":1}`, "partition_count"},
		{"partition out of range", `{"inventory_id":"t/sensors/1","start_time":1,"count":1,"partition_count":1,"partition":3,"partitions":3}`, "partition: must be in [0, 3)"},
		{"no partitions", `{"inventory_id":"t/sensors/1","start_time":1,"count":1,"partition_count":1,"partition":0,"partitions":0}`, "partitions: must be positive"},
		{"trailing data", `{"inventory_id":"t/sensors/1","start_time":1,"count":1,"partition_count":1,"partition":0,"partitions":1} {}`, "unexpected data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inventory.Parse([]byte(tt.value))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	start := time.UnixMilli(1767225600000)
	msgs, err := inventory.Messages("raw", "https://console.example/rest/sensors/query", "tenant", start, 7, []int{3, 0, 4})
	if err != nil {
		t.Fatalf("Messages: %v", err)
	}
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	for partition, msg := range msgs {
		if !inventory.IsEnd(msg) {
			t.Errorf("message %d is not an end event", partition)
		}
		end, err := inventory.Parse(msg.Value)
		if err != nil {
			t.Fatalf("Parse message %d: %v", partition, err)
		}
		want := inventory.End{
			InventoryID: "tenant/sensors/1767225600000", StartTime: 1767225600000, Count: 7,
			PartitionCount: []int{3, 0, 4}[partition], Partition: partition, Partitions: 3,
		}
		if end != want || msg.Partition != partition {
			t.Errorf("message on partition %d = %+v, want %+v", msg.Partition, end, want)
		}
	}
}

func TestPartitionerMatchesMurmur2(t *testing.T) {
	partitioner := inventory.NewPartitioner(4)
	var hash kafka.Murmur2Balancer
	keys := []string{"a", "b", "c", "d", "e", "f", "a"}
	for _, key := range keys {
		msg := kafka.Message{Key: []byte(key)}
		partitioner.Assign(&msg, "tenant/sensors/1")
		if want := hash.Balance(msg, 0, 1, 2, 3); msg.Partition != want {
			t.Errorf("key %s on partition %d, want %d", key, msg.Partition, want)
		}
	}
	total := 0
	for _, count := range partitioner.Counts() {
		total += count
	}
	if total != 6 {
		t.Errorf("counts add up to %d, want 6 distinct keys", total)
	}
}

func TestEndTenant(t *testing.T) {
	tests := []struct {
		id, want string
	}{
		{"console.example.net/sensors/1767225600000", "console.example.net"},
		{"team/a/sensors/1", "team/a"},
		{"a/sensors/b/sensors/2", "a/sensors/b"},
		{"no-tenant", ""},
	}
	for _, tt := range tests {
		if got := (inventory.End{InventoryID: tt.id}).Tenant(); got != tt.want {
			t.Errorf("End{InventoryID: %q}.Tenant() = %q, want %q", tt.id, got, tt.want)
		}
	}
}
