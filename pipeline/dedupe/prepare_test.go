package dedupe_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
)

func TestPrepareBatchComputesEachFingerprintOnce(t *testing.T) {
	var calls atomic.Int64
	stage, err := dedupe.New(dedupe.Config{Fingerprint: func(topic string, msg kafka.Message) (string, error) {
		calls.Add(1)
		return fingerprint(topic, msg)
	}}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	batch := []kafka.Message{
		record(assetsIn, "a", "a1|t1"), record(assetsIn, "b", "b1|t1"), record(assetsIn, "a", "a1|t2"),
		record(assetsIn, "c", "unhashable"), record(assetsIn, "d", "<nil>"), record("unrouted", "e", "e1"),
	}
	for i := range batch {
		batch[i].Offset = int64(i)
	}
	stage.PrepareBatch(context.Background(), batch)
	if got := calls.Load(); got != 4 {
		t.Errorf("PrepareBatch computed %d fingerprints, want 4 (routed records with a value)", got)
	}

	var forwarded []string
	var failed int
	for _, msg := range batch {
		outs, err := stage.Process(context.Background(), msg)
		if err != nil {
			failed++
			continue
		}
		for _, out := range outs {
			forwarded = append(forwarded, string(out.Key))
		}
	}
	stage.CommitBatch()

	if got := calls.Load(); got != 4 {
		t.Errorf("fingerprint called %d times in all, want 4: Process recomputed prepared fingerprints", got)
	}
	if want := "[a b d]"; fmt.Sprint(forwarded) != want {
		t.Errorf("forwarded keys %v, want %s", forwarded, want)
	}
	if failed != 2 {
		t.Errorf("Process failed on %d records, want 2 (unhashable and unrouted)", failed)
	}
	if got, want := stage.Stats(), (dedupe.Stats{In: 6, Forwarded: 3, Unchanged: 1, Tombstones: 1}); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}
