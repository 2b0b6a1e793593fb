package dedupe_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/inventory"
)

// BenchmarkInventoryOfUnchangedAssets measures one inventory of 2,000
// unchanged assets on one partition, end event included: the work dedupe does
// at every sensor poll of a quiet fleet.
func BenchmarkInventoryOfUnchangedAssets(b *testing.B) {
	const assets = 2000
	stage := newLifecycleStage(b, 1)
	states := make([]sensorState, assets)
	for i := range states {
		states[i] = sensorState{id: fmt.Sprintf("s%05d", i)}
	}
	runInventory(b, stage, 1, states, false)

	msgs := make([]kafka.Message, 0, assets)
	for _, s := range states {
		msgs = append(msgs, assetMessage(b, s, inventoryStart(2), 0))
	}

	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		// Each round is a new inventory, so that its end event applies.
		start := inventoryStart(2 + n)
		id := []byte(inventory.ID(testTenant, start))
		for i := range msgs {
			setInventory(msgs[i].Headers, id)
			if _, err := stage.Process(context.Background(), msgs[i]); err != nil {
				b.Fatal(err)
			}
		}
		outs, err := stage.Process(context.Background(), endMessages(b, start, assets, assets)[0])
		if err != nil {
			b.Fatal(err)
		}
		if len(outs) != 0 {
			b.Fatalf("inventory %d published %d records, want none", n, len(outs))
		}
		stage.CommitBatch()
	}
}

// setInventory sets the value of the inventory id header in place.
func setInventory(headers []kafka.Header, id []byte) {
	for i := range headers {
		if headers[i].Key == inventory.HeaderID {
			headers[i].Value = id
		}
	}
}
