package dedupe_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/schemas"
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

func TestDurableRestartNeverRemovesWrongly(t *testing.T) {
	brokers := kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: assetsIn, Partitions: 3},
		embeddedkafka.Topic{Name: assetsOut, Partitions: 3, Compacted: true},
		embeddedkafka.Topic{Name: assetsIn + ".dlq", Partitions: 1},
		embeddedkafka.Topic{Name: securityStateTo, Partitions: 3},
	)
	cfg := instanceConfig{
		fingerprint: assetFingerprint,
		assets:      &dedupe.AssetConfig{Topic: assetsIn, Validator: newValidator(t)},
	}

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
