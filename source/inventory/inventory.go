// Package inventory defines the control event that closes a complete sensor inventory. The source
// writes one to every partition of the raw sensors topic after every sensor event of the
// inventory was acknowledged. Enrich forwards each to the partition of the normalized assets topic
// with the same number, and dedupe treats it as the end of the inventory on that partition. An
// asset of the partition that no complete inventory showed for a while has left the fleet.
//
// An inventory that fails part-way writes no control event, so it never makes an asset look
// removed.
package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/sink"
)

// EndType is the ce_type of the control event.
const EndType = "com.oversoc.cybereason.sensors.inventory-end"

// HeaderID is the Kafka header that carries, on each sensor event and on the asset record made from
// it, the InventoryID of the inventory that listed the sensor.
const HeaderID = "inventory_id"

// End is the value of the control event, JSON encoded.
type End struct {
	// InventoryID names the inventory: "<tenant>/sensors/<start in epoch ms>".
	InventoryID string `json:"inventory_id"`
	// StartTime is when the inventory started, epoch ms. A later inventory of the same tenant has
	// a later start, which lets a consumer ignore a control event that a replay delivers again.
	StartTime int64 `json:"start_time"`
	// Count is the number of sensor events of the whole inventory, over every partition.
	Count int `json:"count"`
	// PartitionCount is the number of distinct sensors of the inventory on this partition. A
	// consumer that saw fewer keys of the inventory on the partition did not see all of it.
	PartitionCount int `json:"partition_count"`
	// Partition is the partition the event was written to, and Partitions the partition count of
	// the topic at that time.
	Partition  int `json:"partition"`
	Partitions int `json:"partitions"`
}

// Validate returns an error naming every invalid field.
func (e End) Validate() error {
	var errs []error
	if e.InventoryID == "" {
		errs = append(errs, errors.New("inventory_id: missing"))
	} else if e.Tenant() == "" {
		errs = append(errs, fmt.Errorf("inventory_id: must have the form <tenant>/sensors/<start in epoch ms>, got %q", e.InventoryID))
	}
	if e.StartTime <= 0 {
		errs = append(errs, fmt.Errorf("start_time: must be a positive epoch ms, got %d", e.StartTime))
	}
	if e.Count < 0 {
		errs = append(errs, fmt.Errorf("count: must not be negative, got %d", e.Count))
	}
	if e.PartitionCount < 0 || e.PartitionCount > e.Count {
		errs = append(errs, fmt.Errorf("partition_count: must be in [0, count %d], got %d", e.Count, e.PartitionCount))
	}
	if e.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions: must be positive, got %d", e.Partitions))
	}
	if e.Partition < 0 || e.Partition >= max(e.Partitions, 1) {
		errs = append(errs, fmt.Errorf("partition: must be in [0, %d), got %d", e.Partitions, e.Partition))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid inventory end event: %w", errors.Join(errs...))
	}
	return nil
}

// Tenant returns the tenant of the inventory: the part of InventoryID before
// its last "/sensors/".
func (e End) Tenant() string {
	i := strings.LastIndex(e.InventoryID, "/sensors/")
	if i < 0 {
		return ""
	}
	return e.InventoryID[:i]
}

// IsEnd reports whether msg is an inventory end event, by its ce_type header.
func IsEnd(msg kafka.Message) bool {
	value, ok := sink.HeaderValue(msg.Headers, sink.HeaderType)
	return ok && value == EndType
}

// Parse decodes and validates the value of an inventory end event. Unknown members are rejected, so
// that a producer and a consumer of different versions fail loudly rather than misread each other.
func Parse(value []byte) (End, error) {
	decoder := json.NewDecoder(bytes.NewReader(value))
	decoder.DisallowUnknownFields()
	var end End
	if err := decoder.Decode(&end); err != nil {
		return End{}, fmt.Errorf("decode inventory end event: %w", err)
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return End{}, errors.New("decode inventory end event: unexpected data after the object")
	}
	if err := end.Validate(); err != nil {
		return End{}, err
	}
	return end, nil
}

// ID returns the InventoryID of the tenant's inventory that started at start.
func ID(tenant string, start time.Time) string {
	return fmt.Sprintf("%s/sensors/%d", tenant, start.UnixMilli())
}

// Messages returns one end event per partition of topic for the inventory that started at start.
// partitionCounts[p] is the number of distinct sensors of the inventory on partition p, and count
// the number of its sensor events. source is the ce_source and tenant the ce_tenant.
func Messages(topic, source, tenant string, start time.Time, count int, partitionCounts []int) ([]kafka.Message, error) {
	id := ID(tenant, start)
	msgs := make([]kafka.Message, 0, len(partitionCounts))
	for partition, partitionCount := range partitionCounts {
		end := End{
			InventoryID: id, StartTime: start.UnixMilli(), Count: count, PartitionCount: partitionCount,
			Partition: partition, Partitions: len(partitionCounts),
		}
		if err := end.Validate(); err != nil {
			return nil, err
		}
		value, err := json.Marshal(end)
		if err != nil {
			return nil, fmt.Errorf("encode inventory end event: %w", err)
		}
		event := sink.Event{
			ID:      fmt.Sprintf("%s#end-%d", id, partition),
			Source:  source,
			Type:    EndType,
			Subject: id,
			Tenant:  tenant,
			Time:    start,
		}
		msgs = append(msgs, kafka.Message{Topic: topic, Partition: partition, Key: []byte(id), Value: value, Headers: event.Headers()})
	}
	return msgs, nil
}

// Partitioner gives each sensor event of one inventory its partition, as the murmur2 hash of its key
// (the partitioning of Kafka's Java client), and counts the distinct sensors per partition.
type Partitioner struct {
	partitions []int
	balancer   kafka.Murmur2Balancer
	keys       []map[string]struct{}
}

// NewPartitioner returns a Partitioner for a topic of n partitions.
func NewPartitioner(n int) *Partitioner {
	p := &Partitioner{partitions: make([]int, n), keys: make([]map[string]struct{}, n)}
	for i := range n {
		p.partitions[i] = i
		p.keys[i] = make(map[string]struct{})
	}
	return p
}

// Assign sets msg.Partition from msg.Key, records the key, and sets the HeaderID header to id.
func (p *Partitioner) Assign(msg *kafka.Message, id string) {
	msg.Partition = p.balancer.Balance(*msg, p.partitions...)
	p.keys[msg.Partition][string(msg.Key)] = struct{}{}
	msg.Headers = append(msg.Headers, kafka.Header{Key: HeaderID, Value: []byte(id)})
}

// Counts returns the number of distinct keys assigned to each partition.
func (p *Partitioner) Counts() []int {
	counts := make([]int, len(p.keys))
	for i, keys := range p.keys {
		counts[i] = len(keys)
	}
	return counts
}

// Forward returns a copy of msg for topic on the partition with the number of msg's partition.
func Forward(msg kafka.Message, topic string) kafka.Message {
	return kafka.Message{Topic: topic, Partition: msg.Partition, Key: msg.Key, Value: msg.Value, Headers: msg.Headers}
}
