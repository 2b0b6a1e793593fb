package dedupe_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// produceOnPartitions writes msgs to the partition each one names, as enrich
// writes asset records and end events.
func produceOnPartitions(t *testing.T, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	writer := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Transport: transport, RequiredAcks: kafka.RequireAll,
		Balancer: pipeline.PartitionBalancer(assetsIn), BatchTimeout: time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	err := writer.WriteMessages(ctx, msgs...)
	if closeErr := writer.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		t.Fatalf("produce %d messages: %v", len(msgs), err)
	}
}

// produceInventory writes the asset records of the sensors to partition 0,
// then, unless only the records are wanted, the end events of the inventory
// of all the given sensor count on the three partitions.
func produceInventory(t *testing.T, brokers []string, n int, ids []string, total int, withEnd bool) {
	t.Helper()
	start := inventoryStart(n)
	var msgs []kafka.Message
	for _, id := range ids {
		msgs = append(msgs, assetMessage(t, sensorState{id: id}, start, 0))
	}
	if withEnd {
		msgs = append(msgs, endMessages(t, start, total, total, 0, 0)...)
	}
	produceOnPartitions(t, brokers, msgs...)
}

// removedKeys returns the keys of the removed records on the output topic, in
// order, and checks that every one is valid.
func removedKeys(t *testing.T, brokers []string) []string {
	t.Helper()
	validator := newValidator(t)
	var keys []string
	for _, msg := range kafkatest.ReadAll(t, brokers, assetsOut) {
		if msg.Value == nil {
			continue
		}
		var asset schemas.Asset
		if err := json.Unmarshal(msg.Value, &asset); err != nil {
			t.Fatal(err)
		}
		if asset.Protection.LifecycleState != schemas.LifecycleRemoved {
			continue
		}
		if err := validator.Validate(schemas.KindAsset, msg.Value); err != nil {
			t.Errorf("removed record of %s: %v", msg.Key, err)
		}
		keys = append(keys, string(msg.Key))
	}
	return keys
}

// newLifecycleBroker starts a broker with the dedupe topics of the asset
// route and the security-state topic.
func newLifecycleBroker(t *testing.T) []string {
	t.Helper()
	return kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: assetsIn, Partitions: 3},
		embeddedkafka.Topic{Name: assetsOut, Partitions: 3, Compacted: true},
		embeddedkafka.Topic{Name: assetsIn + ".dlq", Partitions: 1},
		embeddedkafka.Topic{Name: securityStateTo, Partitions: 3},
	)
}

func lifecycleInstance(t *testing.T) instanceConfig {
	t.Helper()
	return instanceConfig{
		fingerprint: assetFingerprint,
		assets:      &dedupe.AssetConfig{Topic: assetsIn, Validator: newValidator(t)},
	}
}

func TestDurableRestartNeverRemovesWrongly(t *testing.T) {
	brokers := newLifecycleBroker(t)
	cfg := lifecycleInstance(t)

	first := startInstance(t, brokers, cfg)
	produceInventory(t, brokers, 1, []string{"a", "b", "c"}, 3, true)
	waitCaughtUp(t, brokers, "dedupe")
	// The second inventory lists every sensor, but the process restarts
	// after "a": the new process reads only part of the inventory.
	produceInventory(t, brokers, 2, []string{"a"}, 3, false)
	waitCaughtUp(t, brokers, "dedupe")
	first.stop(t)

	second := startInstance(t, brokers, cfg)
	produceInventory(t, brokers, 2, []string{"b", "c"}, 3, true)
	waitCaughtUp(t, brokers, "dedupe")
	if removed := removedKeys(t, brokers); len(removed) != 0 {
		t.Fatalf("restart during an inventory removed %v", removed)
	}
	if got := second.stage.Stats().IncompleteInventories; got != 1 {
		t.Errorf("IncompleteInventories = %d, want 1 for the partially seen inventory", got)
	}

	// The third inventory lacks "a", and the restored state removes it.
	produceInventory(t, brokers, 3, []string{"b", "c"}, 2, true)
	waitCaughtUp(t, brokers, "dedupe")
	if removed := removedKeys(t, brokers); !slices.Equal(removed, []string{assetUID("a")}) {
		t.Fatalf("third inventory removed %v, want a", removed)
	}
	second.stop(t)

	// A restart between inventories: the next one, seen whole, removes "c"
	// and nothing else.
	third := startInstance(t, brokers, cfg)
	produceInventory(t, brokers, 4, []string{"b"}, 1, true)
	waitCaughtUp(t, brokers, "dedupe")
	if removed := removedKeys(t, brokers); !slices.Equal(removed, []string{assetUID("a"), assetUID("c")}) {
		t.Errorf("removed %v over all inventories, want a then c", removed)
	}
	third.stop(t)

	var tombstones []string
	for _, msg := range kafkatest.ReadAll(t, brokers, assetsOut) {
		if msg.Value == nil {
			tombstones = append(tombstones, string(msg.Key))
		}
	}
	if !slices.Equal(tombstones, []string{assetUID("a"), assetUID("c")}) {
		t.Errorf("tombstones for %v, want a then c", tombstones)
	}
}

func TestDurableDeadLettersMalformedEndEvent(t *testing.T) {
	brokers := newLifecycleBroker(t)
	in := startInstance(t, brokers, lifecycleInstance(t))

	produceInventory(t, brokers, 1, []string{"a", "b"}, 2, true)
	malformed := endMessages(t, inventoryStart(2), 1, 1, 0, 0)[1]
	malformed.Value = []byte(`{"inventory_id": "console.example.net/sensors/1", "count": "many"}`)
	produceOnPartitions(t, brokers, malformed)
	produceInventory(t, brokers, 3, []string{"a", "b"}, 2, true)
	waitCaughtUp(t, brokers, "dedupe")
	in.stop(t)

	letters := kafkatest.ReadAll(t, brokers, assetsIn+".dlq")
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want the malformed end event", len(letters))
	}
	if reason, _ := sink.HeaderValue(letters[0].Headers, "dlq_error"); !strings.Contains(reason, "decode inventory end event") {
		t.Errorf("dead letter reason %q, want one naming the end event", reason)
	}
	if partition, _ := sink.HeaderValue(letters[0].Headers, "dlq_partition"); partition != "1" {
		t.Errorf("dead letter from partition %q, want 1", partition)
	}
	stats := in.stage.Stats()
	if stats.InvalidInventoryEnds != 1 || stats.Removed != 0 {
		t.Errorf("InvalidInventoryEnds = %d and Removed = %d, want 1 and 0", stats.InvalidInventoryEnds, stats.Removed)
	}
	if got := len(kafkatest.ReadAll(t, brokers, assetsOut)); got != 2 {
		t.Errorf("%d asset records, want the 2 of the first inventory", got)
	}
}

// TestDurableReplayAfterRemovalAddsNothing removes an asset, then starts a
// new instance in another consumer group, which reads the whole input again.
// The removal's last records point at the input offset of an inventory end
// event, whose key is not the asset's. The restored state must still drop
// every replayed record and end event, so the output gains nothing.
func TestDurableReplayAfterRemovalAddsNothing(t *testing.T) {
	brokers := newLifecycleBroker(t)
	cfg := lifecycleInstance(t)

	first := startInstance(t, brokers, cfg)
	produceInventory(t, brokers, 1, []string{"a", "b"}, 2, true)
	produceInventory(t, brokers, 2, []string{"b"}, 1, true)
	waitCaughtUp(t, brokers, "dedupe")
	first.stop(t)
	if removed := removedKeys(t, brokers); !slices.Equal(removed, []string{assetUID("a")}) {
		t.Fatalf("second inventory removed %v, want a", removed)
	}
	before := len(kafkatest.ReadAll(t, brokers, assetsOut))

	replay := lifecycleInstance(t)
	replay.group = "dedupe-replay"
	second := startInstance(t, brokers, replay)
	waitCaughtUp(t, brokers, replay.group)
	second.stop(t)

	if after := len(kafkatest.ReadAll(t, brokers, assetsOut)); after != before {
		t.Errorf("the replay added %d records to %s, want none", after-before, assetsOut)
	}
	if removed := removedKeys(t, brokers); !slices.Equal(removed, []string{assetUID("a")}) {
		t.Errorf("removed %v after the replay, want a once", removed)
	}
}
