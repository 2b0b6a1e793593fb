package checkpoint_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/checkpoint"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const key = "acme.cybereason.example/malops"

// doc returns a valid version 1 checkpoint value of the malops feed.
func doc(cursor int64) []byte {
	return fmt.Appendf(nil, `{"version":1,"feed":"malops","cursor":%d,"updated":1}`, cursor)
}

func newWriter(t *testing.T, brokers []string) *sink.Writer {
	t.Helper()
	writer, err := sink.NewWriter(sink.Config{Brokers: brokers, MissingTopicTimeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() {
		if err := writer.Close(); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})
	return writer
}

func newStore(t *testing.T, brokers []string, topic string, now func() time.Time) *checkpoint.Store {
	t.Helper()
	store, err := checkpoint.New(checkpoint.Config{Brokers: brokers, Topic: topic, Publisher: newWriter(t, brokers), Now: now})
	if err != nil {
		t.Fatalf("checkpoint.New: %v", err)
	}
	return store
}

func TestLoadLatestRecordOfKey(t *testing.T) {
	type record struct {
		key   string
		value []byte // nil is a tombstone
	}
	tests := []struct {
		name       string
		records    []record
		wantCursor int64
		wantFound  bool
		wantError  []string
	}{
		{name: "empty topic"},
		{name: "other keys only", records: []record{
			{"acme.cybereason.example/malware", doc(5000)},
			{"other.cybereason.example/malops", doc(6000)},
		}},
		{name: "latest value wins", records: []record{
			{key, doc(1000)},
			{"other.cybereason.example/malops", doc(9000)},
			{key, doc(2000)},
		}, wantCursor: 2000, wantFound: true},
		{name: "tombstone deletes", records: []record{
			{key, doc(1000)},
			{key, nil},
		}},
		{name: "value after tombstone", records: []record{
			{key, nil},
			{key, doc(3000)},
		}, wantCursor: 3000, wantFound: true},
		{name: "older corrupt value ignored", records: []record{
			{key, []byte("{not json")},
			{key, doc(4000)},
		}, wantCursor: 4000, wantFound: true},
		{name: "corrupt json", records: []record{
			{key, doc(1000)},
			{key, []byte("{not json")},
		}, wantError: []string{"invalid JSON", key, "topic state-corrupt-json"}},
		{name: "unsupported version", records: []record{
			{key, []byte(`{"version":2,"feed":"malops","cursor":1000,"updated":1}`)},
		}, wantError: []string{"unsupported version 2", key, "topic state-unsupported-version"}},
		{name: "feed mismatch", records: []record{
			{key, []byte(`{"version":1,"feed":"malware","cursor":1000,"updated":1}`)},
		}, wantError: []string{`feed "malware" does not match`, key}},
		{name: "cursor missing", records: []record{
			{key, []byte(`{"version":1,"feed":"malops","updated":1}`)},
		}, wantError: []string{"cursor missing", key}},
	}

	topicOf := func(name string) string { return "state-" + strings.ReplaceAll(name, " ", "-") }
	var topics []embeddedkafka.Topic
	for _, tt := range tests {
		topics = append(topics, embeddedkafka.Topic{Name: topicOf(tt.name), Partitions: 3, Compacted: true})
	}
	brokers := kafkatest.NewBroker(t, topics...)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := topicOf(tt.name)
			for _, r := range tt.records {
				kafkatest.Produce(t, brokers, kafka.Message{Topic: topic, Key: []byte(r.key), Value: r.value})
			}
			store := newStore(t, brokers, topic, nil)

			cursor, found, err := store.Load(context.Background(), key)

			if tt.wantError != nil {
				if err == nil {
					t.Fatalf("Load = %v, %v, want an error", cursor, found)
				}
				for _, want := range tt.wantError {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Load error does not contain %q: %v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if found != tt.wantFound {
				t.Errorf("found = %v, want %v", found, tt.wantFound)
			}
			if found && cursor.UnixMilli() != tt.wantCursor {
				t.Errorf("cursor = %d, want %d", cursor.UnixMilli(), tt.wantCursor)
			}
		})
	}
}

func TestSaveWritesVersionedDocument(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "state", Compacted: true})
	now := time.UnixMilli(1_800_000_000_000)
	store := newStore(t, brokers, "state", func() time.Time { return now })
	cursor := time.UnixMilli(1_790_000_000_123)

	if err := store.Save(context.Background(), key, cursor); err != nil {
		t.Fatalf("Save: %v", err)
	}

	msgs := kafkatest.ReadAll(t, brokers, "state")
	if len(msgs) != 1 {
		t.Fatalf("state topic has %d records, want 1", len(msgs))
	}
	if string(msgs[0].Key) != key {
		t.Errorf("record key %q, want %q", msgs[0].Key, key)
	}
	var got map[string]any
	if err := json.Unmarshal(msgs[0].Value, &got); err != nil {
		t.Fatalf("record value %s: %v", msgs[0].Value, err)
	}
	want := map[string]any{"version": 1.0, "feed": "malops", "cursor": 1_790_000_000_123.0, "updated": 1_800_000_000_000.0}
	if len(got) != len(want) {
		t.Errorf("record value %s has %d fields, want %d", msgs[0].Value, len(got), len(want))
	}
	for field, value := range want {
		if got[field] != value {
			t.Errorf("field %s = %v, want %v", field, got[field], value)
		}
	}

	loaded, found, err := store.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load after Save: %v", err)
	}
	if !found {
		t.Fatal("Load after Save found no checkpoint")
	}
	if !loaded.Equal(cursor) {
		t.Errorf("Load after Save = %v, want %v", loaded, cursor)
	}
}

func TestSaveMissingTopicNamesTopic(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "other"})
	store := newStore(t, brokers, "absent.state", nil)

	err := store.Save(context.Background(), key, time.UnixMilli(1000))

	if err == nil {
		t.Fatal("Save to a missing topic succeeded, want an error")
	}
	for _, want := range []string{"topic absent.state", key} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Save error does not contain %q: %v", want, err)
		}
	}
}

func TestLoadMissingTopicNamesTopic(t *testing.T) {
	brokers := kafkatest.NewBroker(t, embeddedkafka.Topic{Name: "other"})
	store := newStore(t, brokers, "absent.state", nil)

	_, _, err := store.Load(context.Background(), key)

	if err == nil || !strings.Contains(err.Error(), "absent.state") {
		t.Errorf("Load error = %v, want one naming the topic", err)
	}
}

func TestNewNamesEveryMissingSetting(t *testing.T) {
	_, err := checkpoint.New(checkpoint.Config{LoadTimeout: -time.Second})
	if err == nil {
		t.Fatal("New with an empty config succeeded")
	}
	for _, name := range []string{"Brokers", "Topic", "Publisher", "LoadTimeout"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
