package kafkaread_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkaread"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
)

// produceTransaction writes one record per key to partition 0 of topic in
// one transaction, then commits or aborts it.
func produceTransaction(t *testing.T, brokers []string, topic string, commit bool, keys ...string) {
	t.Helper()
	records := make([]kafka.Message, 0, len(keys))
	for _, key := range keys {
		records = append(records, kafka.Message{Key: []byte(key), Value: []byte("value of " + key)})
	}
	kafkatest.ProduceTransaction(t, brokers, topic, "scan-test", commit, records...)
}

// TestScanEndsAtTransactionMarker scans topics whose partition ends in a
// commit or an abort marker. Scan must return, and pass only the records
// of committed transactions.
func TestScanEndsAtTransactionMarker(t *testing.T) {
	cases := []struct {
		name       string
		lastCommit bool // whether the last transaction commits
		want       []string
	}{
		{name: "commit marker last", lastCommit: true, want: []string{"a", "b", "c", "d"}},
		{name: "abort marker last", lastCommit: false, want: []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "t", Partitions: 1, Compacted: true})
			produceTransaction(t, brokers, "t", true, "a", "b")
			produceTransaction(t, brokers, "t", tc.lastCommit, "c", "d")

			ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
			defer cancel()
			var got []string
			err := kafkaread.Scan(ctx, brokers, "t", func(msg kafka.Message) error {
				got = append(got, string(msg.Key))
				return nil
			})

			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("scanned keys %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeBatch is a record batch that a fakeFetcher serves. last is the
// batch's last offset, which stays when compaction removes the batch's
// records, as Kafka keeps a producer's last batch header.
type fakeBatch struct {
	base, last int64
	offsets    []int64 // offsets of the records still in the batch
}

// fakeFetcher serves batches as a broker does: a fetch at an offset
// returns every batch whose last offset is at or after it, whole.
type fakeFetcher struct {
	batches          []fakeBatch
	lastStableOffset int64
	fetches          int
}

func (f *fakeFetcher) FetchCommitted(_ context.Context, topic string, partition int, offset int64) (*fetchAPI.ResponsePartition, error) {
	f.fetches++
	var readers []protocol.RecordReader
	for _, b := range f.batches {
		if b.last < offset {
			continue
		}
		var records []protocol.Record
		for _, o := range b.offsets {
			records = append(records, protocol.Record{
				Offset: o,
				Key:    protocol.NewBytes(fmt.Appendf(nil, "k%d", o)),
				Value:  protocol.NewBytes([]byte("v")),
			})
		}
		readers = append(readers, &protocol.RecordBatch{BaseOffset: b.base, Records: protocol.NewRecordReader(records...)})
	}

	resp := &fetchAPI.ResponsePartition{
		Partition:        int32(partition),
		HighWatermark:    f.lastStableOffset,
		LastStableOffset: f.lastStableOffset,
	}
	if len(readers) > 0 {
		resp.RecordSet = protocol.RecordSet{Version: 2, Records: &protocol.RecordStream{Records: readers}}
	}
	return resp, nil
}

// TestReadCommittedEndsAtCompactedTail reads partitions whose offsets
// below the last stable offset end in records that compaction removed.
// kfake never compacts the last batch of a partition, so a fake fetcher
// serves these partitions. Scan and dedupe's Restore read each partition
// with ReadCommitted.
func TestReadCommittedEndsAtCompactedTail(t *testing.T) {
	cases := []struct {
		name    string
		batches []fakeBatch
	}{
		{
			name:    "tail batches removed",
			batches: []fakeBatch{{base: 0, last: 2, offsets: []int64{0, 1, 2}}},
		},
		{
			name: "tail batch emptied",
			batches: []fakeBatch{
				{base: 0, last: 2, offsets: []int64{0, 1, 2}},
				{base: 3, last: 9},
			},
		},
		{
			name: "tail of the last batch removed",
			batches: []fakeBatch{
				{base: 0, last: 9, offsets: []int64{0, 1, 2}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fetcher := &fakeFetcher{batches: tc.batches, lastStableOffset: 10}
			ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
			defer cancel()

			var got []int64
			err := kafkaread.ReadCommitted(ctx, fetcher, "t", 0, 0, 10, func(msg kafka.Message) error {
				got = append(got, msg.Offset)
				return nil
			})

			if err != nil {
				t.Fatalf("ReadCommitted: %v", err)
			}
			if want := []int64{0, 1, 2}; !slices.Equal(got, want) {
				t.Errorf("read offsets %v, want %v", got, want)
			}
			// At most one fetch per offset: a loop that never advanced
			// would have run into the context's deadline instead.
			if fetcher.fetches > 10 {
				t.Errorf("%d fetches for 10 offsets", fetcher.fetches)
			}
		})
	}
}

// TestReadCommittedFailsWhenTruncated reads a partition whose last stable
// offset fell below the end it was asked for. ReadCommitted must return an
// error instead of waiting for offsets that are gone.
func TestReadCommittedFailsWhenTruncated(t *testing.T) {
	fetcher := &fakeFetcher{batches: []fakeBatch{{base: 0, last: 1, offsets: []int64{0, 1}}}, lastStableOffset: 2}
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()

	err := kafkaread.ReadCommitted(ctx, fetcher, "t", 0, 0, 5, func(kafka.Message) error { return nil })

	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("ReadCommitted error = %v, want one about a truncated partition", err)
	}
}

func TestReadCommittedReturnsCallbackError(t *testing.T) {
	fetcher := &fakeFetcher{batches: []fakeBatch{{base: 0, last: 2, offsets: []int64{0, 1, 2}}}, lastStableOffset: 3}
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	stop := errors.New("stop here")

	calls := 0
	err := kafkaread.ReadCommitted(ctx, fetcher, "t", 0, 0, 3, func(kafka.Message) error {
		calls++
		return stop
	})

	if err != stop {
		t.Errorf("ReadCommitted error = %v, want the callback's error unwrapped", err)
	}
	if calls != 1 {
		t.Errorf("callback called %d times, want 1", calls)
	}
}
