package dedupe_test

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
)

// produceTransaction writes a record per (key, value) pair to partition 0
// of topic in one transaction, then commits or aborts it.
func produceTransaction(t *testing.T, brokers []string, topic string, commit bool, pairs ...[2]string) {
	t.Helper()
	records := make([]kafka.Message, 0, len(pairs))
	for _, p := range pairs {
		records = append(records, record(topic, p[0], p[1]))
	}
	kafkatest.ProduceTransaction(t, brokers, topic, "restore-test", commit, records...)
}

// TestRestoreEndsAtTransactionMarker restores output partitions whose last
// offset is a commit or abort marker. Restore must return, skip the markers
// and not restore the records of the aborted transaction. kfake never
// compacts the last batch of a partition, so a partition that ends in a
// compacted-away record cannot be built here. Restore reads with
// kafkaread.ReadCommitted, whose tests serve such a partition from a fake
// Fetcher.
func TestRestoreEndsAtTransactionMarker(t *testing.T) {
	cases := []struct {
		name       string
		lastCommit bool // whether the last transaction commits
	}{
		{name: "commit marker last", lastCommit: true},
		{name: "abort marker last", lastCommit: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			brokers := kafkatest.NewBroker(t,
				embeddedkafka.Topic{Name: assetsIn, Partitions: 1},
				embeddedkafka.Topic{Name: assetsOut, Partitions: 1, Compacted: true},
			)
			produceTransaction(t, brokers, assetsOut, true, [2]string{"a", "a1|t1"}, [2]string{"b", "b1|t1"})
			produceTransaction(t, brokers, assetsOut, tc.lastCommit, [2]string{"a", "a2|t2"}, [2]string{"c", "c2|t2"})

			state := dedupe.NewMemoryState()
			stage, err := dedupe.New(dedupe.Config{
				Routes:      map[string]string{assetsIn: assetsOut},
				Fingerprint: fingerprint,
				State:       state,
				Brokers:     brokers,
			}, nil)
			if err != nil {
				t.Fatalf("dedupe.New: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
			defer cancel()

			if err := stage.Restore(ctx, assetsIn, 0); err != nil {
				t.Fatalf("Restore: %v", err)
			}

			want := map[string]string{"a": "a2", "b": "b1", "c": "c2"}
			wantRecords := int64(4)
			if !tc.lastCommit {
				want = map[string]string{"a": "a1", "b": "b1"}
				wantRecords = 2
			}
			for _, key := range []string{"a", "b", "c"} {
				got, ok := state.Get(assetsOut, key)
				wantFingerprint, wantOK := want[key]
				if ok != wantOK || got != wantFingerprint {
					t.Errorf("key %s restored as (%q, %t), want (%q, %t)", key, got, ok, wantFingerprint, wantOK)
				}
			}
			if got := state.Len(); got != len(want) {
				t.Errorf("state contains %d keys, want %d (a transaction marker read as a record adds one)", got, len(want))
			}
			if got := stage.Stats().Restored; got != wantRecords {
				t.Errorf("restored %d records, want %d", got, wantRecords)
			}
		})
	}
}
