package kafkatest

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceTransaction writes the key and value of each record to partition 0
// of topic in one transaction of a franz-go transactional producer, then
// commits or aborts it. The broker appends the commit or abort marker after
// the records, so the partition ends in a control record that no consumer
// receives. kafka-go has no transactional producer, hence franz-go.
func ProduceTransaction(t *testing.T, brokers []string, topic, transactionalID string, commit bool, records ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	client, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.TransactionalID(transactionalID),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	if err != nil {
		t.Fatalf("new transactional producer: %v", err)
	}
	defer client.Close()

	if err := client.BeginTransaction(); err != nil {
		t.Fatalf("begin transaction: %v", err)
	}
	for _, record := range records {
		rec := &kgo.Record{Key: record.Key, Value: record.Value, Partition: 0}
		if err := client.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce %s in a transaction: %v", record.Key, err)
		}
	}

	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	if err := client.EndTransaction(ctx, end); err != nil {
		t.Fatalf("end transaction (commit %t): %v", commit, err)
	}
}
