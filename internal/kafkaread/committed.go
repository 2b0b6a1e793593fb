package kafkaread

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
)

// Fetcher sends one read_committed fetch request for a partition from an
// offset and returns the partition's part of the response. NewFetcher
// returns the one for a Kafka cluster; tests can pass a fake.
type Fetcher interface {
	FetchCommitted(ctx context.Context, topic string, partition int, offset int64) (*fetchAPI.ResponsePartition, error)
}

// NewFetcher returns the Fetcher that sends its requests with client.
func NewFetcher(client *kafka.Client) Fetcher {
	return clientFetcher{client: client}
}

// FetchBytes is the maximum size of one fetch response of a Fetcher from
// NewFetcher. The broker still returns a larger first batch whole.
const FetchBytes = 1 << 20

// ReadCommitted passes to fn, in offset order, every record of partition of
// topic from offset first up to end that a read_committed consumer receives:
// transaction markers and records of aborted transactions are skipped. Pass
// the partition's last stable offset as end, because the last offsets below
// it may belong to no such record, and ReadCommitted still returns once it
// has read past them. This is the case when a transaction marker ends the
// partition, when its last records were aborted, or when compaction removed
// them. An error from fn stops the read and is returned as it is.
func ReadCommitted(ctx context.Context, fetcher Fetcher, topic string, partition int, first, end int64, fn func(kafka.Message) error) error {
	for next := first; next < end; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read at offset %d of %d: %w", next, end, err)
		}
		after, err := readPage(ctx, fetcher, topic, partition, next, end, fn)
		if err != nil {
			var fnErr callbackError
			if errors.As(err, &fnErr) {
				return fnErr.err
			}
			return fmt.Errorf("read at offset %d of %d: %w", next, end, err)
		}
		next = after
	}
	return nil
}

// callbackError carries an error of ReadCommitted's fn through the read
// loop, so that ReadCommitted returns it unwrapped.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// readPage fetches partition of topic from offset next, passes each data
// record below end to fn and returns the offset to fetch next. It reads the
// fetch response batch by batch, because kafka.Client.Fetch neither drops
// records of aborted transactions nor reports the offset after a trailing
// transaction marker.
func readPage(ctx context.Context, fetcher Fetcher, topic string, partition int, next, end int64, fn func(kafka.Message) error) (int64, error) {
	resp, err := fetcher.FetchCommitted(ctx, topic, partition, next)
	if err != nil {
		return next, err
	}
	var batches []protocol.RecordReader
	switch records := resp.RecordSet.Records.(type) {
	case nil:
	case *protocol.RecordStream:
		batches = records.Records
	default:
		batches = []protocol.RecordReader{records}
	}

	if len(batches) == 0 {
		// No batch at or after next, so nothing is left below the
		// broker's last stable offset, which only grows.
		if resp.LastStableOffset >= end {
			return end, nil
		}
		return next, fmt.Errorf("no record at or after offset %d, and the last stable offset fell from %d to %d, which happens when the partition is truncated, so read it again",
			next, end, resp.LastStableOffset)
	}

	aborted := newAbortedTransactions(resp.AbortedTransactions)
	after := next
	for _, batch := range batches {
		after, err = readBatch(batch, aborted, topic, partition, after, end, fn)
		if err != nil {
			return next, err
		}
	}
	if after == next {
		// The response starts with the batch that contains offset next,
		// and none of its batches has a record at or after next. kafka-go
		// does not decode the last offset of a batch, so a batch emptied
		// by compaction is passed one offset per fetch.
		// NOTE: a trailing batch that compaction emptied thus takes as
		// many fetches as it had records.
		return next + 1, nil
	}
	return after, nil
}

// clientFetcher is the Fetcher of a kafka-go client.
type clientFetcher struct {
	client *kafka.Client
}

// FetchCommitted sends one read_committed fetch request for partition of
// topic at offset and returns the partition's part of the response.
func (f clientFetcher) FetchCommitted(ctx context.Context, topic string, partition int, offset int64) (*fetchAPI.ResponsePartition, error) {
	msg, err := f.client.Transport.RoundTrip(ctx, f.client.Addr, &fetchAPI.Request{
		ReplicaID:      -1,
		MaxWaitTime:    250,
		MinBytes:       1,
		MaxBytes:       FetchBytes,
		IsolationLevel: int8(kafka.ReadCommitted),
		SessionID:      -1,
		SessionEpoch:   -1,
		Topics: []fetchAPI.RequestTopic{{
			Topic: topic,
			Partitions: []fetchAPI.RequestPartition{{
				Partition:          int32(partition),
				CurrentLeaderEpoch: -1,
				FetchOffset:        offset,
				LogStartOffset:     -1,
				PartitionMaxBytes:  FetchBytes,
			}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	resp, ok := msg.(*fetchAPI.Response)
	if !ok {
		return nil, fmt.Errorf("fetch: unexpected response type %T", msg)
	}
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("fetch: %w", kafka.Error(resp.ErrorCode))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, errors.New("fetch: response does not contain exactly the requested partition")
	}
	p := &resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return nil, fmt.Errorf("fetch: %w", kafka.Error(p.ErrorCode))
	}
	return p, nil
}

// abortedTransactions tracks, while the batches of one fetch response are
// read in offset order, which producers' transactional batches belong to an
// aborted transaction. The broker lists each aborted transaction that
// overlaps the response by producer id and first offset.
type abortedTransactions struct {
	pending []fetchAPI.ResponseTransaction // sorted by first offset, not reached yet
	open    map[int64]bool                 // producer ids inside an aborted transaction
}

func newAbortedTransactions(list []fetchAPI.ResponseTransaction) *abortedTransactions {
	pending := slices.Clone(list)
	slices.SortFunc(pending, func(a, b fetchAPI.ResponseTransaction) int {
		return cmp.Compare(a.FirstOffset, b.FirstOffset)
	})
	return &abortedTransactions{pending: pending, open: make(map[int64]bool)}
}

// reach marks the producers of the aborted transactions that start at or
// before offset.
func (a *abortedTransactions) reach(offset int64) {
	for len(a.pending) > 0 && a.pending[0].FirstOffset <= offset {
		a.open[a.pending[0].ProducerID] = true
		a.pending = a.pending[1:]
	}
}

// readBatch passes the data records of batch at or after next and below end
// to fn, unless the batch belongs to an aborted transaction, and returns the
// offset after the last record or marker of the batch.
func readBatch(batch protocol.RecordReader, aborted *abortedTransactions, topic string, partition int, next, end int64, fn func(kafka.Message) error) (int64, error) {
	skip := false
	switch b := batch.(type) {
	case *protocol.ControlBatch:
		// A commit or abort marker ends the producer's transaction.
		aborted.reach(b.BaseOffset)
		delete(aborted.open, b.ProducerID)
		skip = true
	case *protocol.RecordBatch:
		if b.Attributes.Transactional() {
			aborted.reach(b.BaseOffset)
			skip = aborted.open[b.ProducerID]
		}
	}

	for {
		record, err := batch.ReadRecord()
		if errors.Is(err, io.EOF) {
			return next, nil
		}
		if err != nil {
			return next, fmt.Errorf("read record after offset %d: %w", next, err)
		}
		msg, err := recordMessage(record, topic, partition)
		if err != nil {
			return next, err
		}
		if record.Offset < next {
			continue // the batch starts before the fetch offset
		}
		next = record.Offset + 1
		if skip || record.Offset >= end {
			continue
		}
		if err := fn(msg); err != nil {
			return next, callbackError{err}
		}
	}
}

// recordMessage converts a fetched record to a kafka.Message and releases
// the record's key and value buffers.
func recordMessage(record *protocol.Record, topic string, partition int) (kafka.Message, error) {
	key, err := readBytes(record.Key)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("read key of record at offset %d: %w", record.Offset, err)
	}
	value, err := readBytes(record.Value)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("read value of record at offset %d: %w", record.Offset, err)
	}
	return kafka.Message{
		Topic:     topic,
		Partition: partition,
		Offset:    record.Offset,
		Key:       key,
		Value:     value,
		Headers:   record.Headers,
		Time:      record.Time,
	}, nil
}

// readBytes returns the content of b, nil for a nil b, and closes b.
func readBytes(b protocol.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	return protocol.ReadAll(b)
}
