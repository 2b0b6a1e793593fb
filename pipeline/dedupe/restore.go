package dedupe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkaread"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// restoredKey is the state of one key read back from an output partition.
type restoredKey struct {
	fingerprint string // "" after a tombstone
	emitted     time.Time
	published   int64     // HeaderInputOffset of the key's last record, or -1
	eventTime   time.Time // ce_time of the key's last record
	// snapshot is the key's last record, decoded, on the asset route with
	// the asset features on; nil otherwise and after a tombstone.
	snapshot *schemas.Asset
	// removal is set when the key's last record is a removed record or its
	// tombstone, whose input offset is that of an inventory end event.
	removal bool
}

// Restore rebuilds the state of input topic's partition from the output
// partition with the same number. It reads the committed records of the
// output partition from its first offset to the last stable offset taken
// when Restore starts (see readOutput). Per key it
// keeps the fingerprint of the last record (Config.Fingerprint called with
// the input topic) and the record's Kafka timestamp as the last emit time. A
// tombstone deletes the key. Process compares the HeaderInputOffset header of
// the key's last record with the offsets of replayed input records, and drops
// those that are older than the output. The result replaces whatever the Stage held for that output
// partition. Restore implements pipeline.PartitionRestorer.
//
// The pipeline.Runner calls it before any message of the partition reaches
// Process, so nothing else writes to that output partition meanwhile, unless
// the previous owner of the partition is still writing in the short time
// before it notices the rebalance.
func (s *Stage) Restore(ctx context.Context, topic string, partition int) error {
	out, ok := s.routes[topic]
	if !ok {
		return fmt.Errorf("restore %s partition %d: no dedupe route for the topic", topic, partition)
	}
	if len(s.brokers) == 0 {
		return fmt.Errorf("restore %s partition %d: no brokers in the dedupe config", topic, partition)
	}

	start := time.Now()
	_, inputEnd, err := s.offsets(ctx, topic, partition, kafka.ReadUncommitted)
	if err != nil {
		return fmt.Errorf("restore %s partition %d: %w", topic, partition, err)
	}
	keys, records, err := s.readOutput(ctx, topic, out, partition)
	if err != nil {
		return fmt.Errorf("restore %s partition %d from %s: %w", topic, partition, out, err)
	}

	sameLog, err := s.checkInputOffsets(ctx, topic, partition, keys, inputEnd)
	if err != nil {
		return fmt.Errorf("restore %s partition %d: %w", topic, partition, err)
	}

	at := topicPartition{topic: out, partition: partition}
	s.mu.Lock()
	s.drop(at)
	if s.assets != nil && s.assets.Topic == topic {
		// The inventories seen before are unknown, so misses count again
		// from the next complete inventory on.
		s.assetState[at] = newPartitionAssets()
	}
	for key, k := range keys {
		if k.published >= inputEnd || !sameLog {
			// The input partition has no such offset, or another record
			// there, so it was recreated after that output, and the offset
			// is not comparable to its records.
			k.published = -1
		}
		if k.fingerprint != "" {
			s.state.Put(out, key, k.fingerprint)
		} else if k.published < 0 {
			continue // a tombstone is only kept for its input offset
		}
		s.setInfo(at, key, keyInfo{emitted: k.emitted, published: k.published, eventTime: k.eventTime})
		if k.snapshot != nil && k.fingerprint != "" {
			s.assetState[at].snapshots[key] = k.snapshot
		}
	}
	s.mu.Unlock()

	s.restored.Add(int64(records))
	s.logger.Info("dedupe state restored", "topic", out, "partition", partition,
		"keys", len(keys), "records", records, "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// Release drops the state of the output partition of input topic's
// partition, after the partition was revoked. It implements
// pipeline.PartitionRestorer. Fingerprints that a caller put in Config.State
// directly stay, because the Stage does not know their partition.
func (s *Stage) Release(topic string, partition int) {
	out, ok := s.routes[topic]
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(topicPartition{topic: out, partition: partition})
}

// drop deletes every key of the output partition. The caller holds s.mu.
func (s *Stage) drop(at topicPartition) {
	for key := range s.keys[at] {
		s.state.Delete(at.topic, key)
	}
	delete(s.keys, at)
	delete(s.assetState, at)
}

// checkInputOffsets reports whether the HeaderInputOffset values in keys
// are offsets of the input partition as it is now. It reads the input record
// at the highest such offset below inputEnd, leaving out removals, and
// compares its key with the key of the output record that carries the
// offset. Another key, or no record at
// that offset (deleted or compacted away), means the offsets cannot be
// trusted, and the caller then forwards replayed records instead of dropping
// them: a duplicate at worst, never a loss.
func (s *Stage) checkInputOffsets(ctx context.Context, topic string, partition int, keys map[string]restoredKey, inputEnd int64) (bool, error) {
	var key string
	offset := int64(-1)
	for k, restored := range keys {
		// The input record of a removal is an inventory end event, whose
		// key is the inventory's and not the asset's.
		if restored.removal {
			continue
		}
		if restored.published > offset && restored.published < inputEnd {
			key, offset = k, restored.published
		}
	}
	if offset < 0 {
		return true, nil
	}

	client, closeClient := s.client()
	defer closeClient()
	resp, err := client.Fetch(ctx, &kafka.FetchRequest{
		Topic: topic, Partition: partition, Offset: offset,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 250 * time.Millisecond,
	})
	if err != nil {
		return false, fmt.Errorf("fetch input offset %d: %w", offset, err)
	}
	if errors.Is(resp.Error, kafka.OffsetOutOfRange) {
		return false, nil
	}
	if resp.Error != nil {
		return false, fmt.Errorf("fetch input offset %d: %w", offset, resp.Error)
	}
	for {
		record, err := resp.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read input record at offset %d: %w", offset, err)
		}
		if record.Offset < offset {
			continue
		}
		if record.Offset > offset || record.Key == nil {
			return false, nil
		}
		inputKey, err := kafka.ReadAll(record.Key)
		if err != nil {
			return false, fmt.Errorf("read key of input record at offset %d: %w", offset, err)
		}
		return string(inputKey) == key, nil
	}
}

// readOutput reads partition of the output topic out as a read_committed
// consumer, from its first offset up to its last stable offset taken at the
// start. It returns the state of each key and the count of records read.
// Transaction markers and records of aborted transactions are skipped.
// Without open transactions, the last stable offset is the high watermark.
func (s *Stage) readOutput(ctx context.Context, in, out string, partition int) (map[string]restoredKey, int, error) {
	first, end, err := s.offsets(ctx, out, partition, kafka.ReadCommitted)
	if err != nil {
		return nil, 0, err
	}
	keys := make(map[string]restoredKey)
	client, closeClient := s.client()
	defer closeClient()

	records := 0
	err = kafkaread.ReadCommitted(ctx, kafkaread.NewFetcher(client), out, partition, first, end, func(msg kafka.Message) error {
		records++
		s.restoreRecord(keys, in, msg)
		return nil
	})
	if err != nil {
		return nil, records, err
	}
	return keys, records, nil
}

// restoreRecord applies one output record to keys.
func (s *Stage) restoreRecord(keys map[string]restoredKey, in string, msg kafka.Message) {
	if len(msg.Key) == 0 {
		return
	}
	key := string(msg.Key)
	restored := restoredKey{emitted: msg.Time, published: inputOffset(msg), eventTime: recordTime(msg.Headers)}
	if id, ok := sink.HeaderValue(msg.Headers, sink.HeaderID); ok {
		restored.removal = strings.Contains(id, removedIDMarker) || strings.Contains(id, tombstoneIDMarker)
	}
	if msg.Value == nil {
		keys[key] = restored
		return
	}
	fingerprint, err := s.fingerprint(in, msg)
	if err != nil {
		// Without a fingerprint, the next input record of the key is forwarded.
		s.logger.Warn("output record has no fingerprint; its key will be forwarded again",
			"topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "error", err)
		keys[key] = restored
		return
	}
	restored.fingerprint = fingerprint
	if s.assets != nil && s.assets.Topic == in {
		snapshot, err := decodeSnapshot(msg.Value)
		if err != nil {
			s.logger.Warn("output asset record cannot be decoded; its key cannot be marked removed or report a security-state change until its next record",
				"topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "error", err)
		}
		restored.snapshot = snapshot
	}
	keys[key] = restored
}

// inputOffset returns the HeaderInputOffset of an output record, or -1 when
// it has none, as records written without Config.Brokers.
func inputOffset(msg kafka.Message) int64 {
	value, ok := sink.HeaderValue(msg.Headers, HeaderInputOffset)
	if !ok {
		return -1
	}
	offset, err := strconv.ParseInt(value, 10, 64)
	if err != nil || offset < 0 {
		return -1
	}
	return offset
}

// offsets returns the first offset and the end of a partition, which is the
// high watermark with kafka.ReadUncommitted and the last stable offset with
// kafka.ReadCommitted.
func (s *Stage) offsets(ctx context.Context, topic string, partition int, isolation kafka.IsolationLevel) (first, end int64, err error) {
	client, closeClient := s.client()
	defer closeClient()

	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{
			topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)},
		},
		IsolationLevel: isolation,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list offsets: %w", err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Partition != partition {
			continue
		}
		if p.Error != nil {
			return 0, 0, fmt.Errorf("list offsets: %w", p.Error)
		}
		return p.FirstOffset, p.LastOffset, nil
	}
	return 0, 0, errors.New("list offsets: partition missing from the response")
}

// client returns a Kafka client with the Dialer's TLS and SASL settings and
// a function that closes its connections.
func (s *Stage) client() (*kafka.Client, func()) {
	transport := &kafka.Transport{}
	if s.dialer != nil {
		transport.TLS = s.dialer.TLS
		transport.SASL = s.dialer.SASLMechanism
		transport.ClientID = s.dialer.ClientID
	}
	client := &kafka.Client{Addr: kafka.TCP(s.brokers...), Transport: transport}
	return client, transport.CloseIdleConnections
}

// CheckPartitions fails unless every output topic has the same partition
// count as its input topic, which Restore needs: the state of input partition
// p is output partition p. It also fails when a topic is missing.
func (s *Stage) CheckPartitions(ctx context.Context) error {
	if len(s.brokers) == 0 {
		return errors.New("check dedupe partitions: no brokers in the dedupe config")
	}
	var topics []string
	for in, out := range s.routes {
		topics = append(topics, in, out)
	}

	client, closeClient := s.client()
	defer closeClient()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("check dedupe partitions: read topic metadata: %w", err)
	}
	counts := make(map[string]int, len(meta.Topics))
	var errs []error
	for _, t := range meta.Topics {
		if t.Error != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", t.Name, t.Error))
			continue
		}
		counts[t.Name] = len(t.Partitions)
	}

	ins := make([]string, 0, len(s.routes))
	for in := range s.routes {
		ins = append(ins, in)
	}
	slices.Sort(ins)
	for _, in := range ins {
		out := s.routes[in]
		nIn, okIn := counts[in]
		nOut, okOut := counts[out]
		if okIn && okOut && nIn != nOut {
			errs = append(errs, fmt.Errorf("partition count of output topic %s is %d but that of its input %s is %d; create %s with %d partitions, because dedupe keeps the state of input partition p in output partition p",
				out, nOut, in, nIn, out, nIn))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("check dedupe partitions: %w", errors.Join(errs...))
	}
	return nil
}
