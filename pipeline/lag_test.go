package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
)

func TestGroupLag(t *testing.T) {
	broker := kafkatest.StartBroker(t,
		embeddedkafka.Topic{Name: "a", Partitions: 2},
		embeddedkafka.Topic{Name: "b", Partitions: 1},
	)
	brokers := broker.Addrs()
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Topic: "a", Partition: 0, Key: []byte{byte(i)}, Value: []byte("x")})
	}
	for range 4 {
		msgs = append(msgs, kafka.Message{Topic: "b", Value: []byte("y")})
	}
	kafkatest.Produce(t, brokers, msgs...)

	if got := groupLag(t, brokers, "a", "b"); got != 14 {
		t.Errorf("lag of a group without commits %d, want 14", got)
	}

	// Records deleted from the head of b no longer count.
	if err := broker.Cluster().DeleteRecords("b", 0, 3); err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	if got := groupLag(t, brokers, "a", "b"); got != 11 {
		t.Errorf("lag after deleting 3 records of b %d, want 11", got)
	}

	commitAll(t, brokers, "b")
	if got := groupLag(t, brokers, "a", "b"); got != 10 {
		t.Errorf("lag after committing b %d, want 10", got)
	}
	if got := groupLag(t, brokers, "b"); got != 0 {
		t.Errorf("lag of b alone %d, want 0", got)
	}
}

func TestGroupLagMissingTopic(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "a", Partitions: 1})

	if _, err := pipeline.GroupLag(context.Background(), brokers, "g", []string{"a", "missing"}); err == nil {
		t.Error("GroupLag of a missing topic returned no error")
	}
}

func groupLag(t *testing.T, brokers []string, topics ...string) int64 {
	t.Helper()
	lag, err := pipeline.GroupLag(context.Background(), brokers, "g", topics)
	if err != nil {
		t.Fatalf("GroupLag: %v", err)
	}
	return lag
}

// commitAll consumes topic in group g up to its end and commits.
func commitAll(t *testing.T, brokers []string, topic string) {
	t.Helper()
	end := int64(len(kafkatest.ReadAll(t, brokers, topic)))
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "g", GroupTopics: []string{topic}, MaxWait: 100 * time.Millisecond})
	defer reader.Close()

	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	for {
		msg, err := reader.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch %s: %v", topic, err)
		}
		if err := reader.CommitMessages(ctx, msg); err != nil {
			t.Fatalf("commit %s offset %d: %v", topic, msg.Offset, err)
		}
		if msg.Offset == msg.HighWaterMark-1 && end > 0 {
			return
		}
	}
}
