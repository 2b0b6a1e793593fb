package dedupe_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/sink"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDedupeWithRunner(t *testing.T) {
	brokers := kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: assetsIn, Partitions: 3},
		embeddedkafka.Topic{Name: assetsOut, Partitions: 3},
		embeddedkafka.Topic{Name: assetsIn + ".dlq", Partitions: 1},
	)
	// Per key, in order; "<nil>" is a tombstone and a key "" has no key.
	inputs := [][2]string{
		{"a", "a1|t1"}, {"b", "b1|t1"}, {"c", "c1|t1"},
		{"a", "a1|t2"}, {"b", "b2|t2"}, {"c", "<nil>"},
		{"a", "a1|t3"}, {"b", "b2|t3"}, {"c", "c1|t3"},
		{"", "x1"}, {"a", "a2|t4"},
	}
	var msgs []kafka.Message
	for _, in := range inputs {
		msgs = append(msgs, record(assetsIn, in[0], in[1]))
	}
	kafkatest.Produce(t, brokers, msgs...)

	stage := newStage(t)
	writer, err := sink.NewWriter(sink.Config{Brokers: brokers}, nil)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer writer.Close()
	runner, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name: "dedupe", Brokers: brokers, GroupID: "dedupe", Topics: []string{assetsIn},
		BatchSize: 4, BatchWait: 5 * time.Millisecond,
	}, stage, writer, nil)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()

	kafkatest.WaitFor(t, func() bool {
		lag, err := pipeline.GroupLag(context.Background(), brokers, "dedupe", []string{assetsIn})
		return err == nil && lag == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	forwarded := make(map[string][]string)
	for _, m := range kafkatest.ReadAll(t, brokers, assetsOut) {
		value := string(m.Value)
		if m.Value == nil {
			value = "<nil>"
		}
		forwarded[string(m.Key)] = append(forwarded[string(m.Key)], value)
		if id, _ := sink.HeaderValue(m.Headers, "ce_id"); id != string(m.Key)+"#"+value {
			t.Errorf("record %s=%s has ce_id %q", m.Key, value, id)
		}
	}
	want := map[string][]string{
		"a": {"a1|t1", "a2|t4"},
		"b": {"b1|t1", "b2|t2"},
		"c": {"c1|t1", "<nil>", "c1|t3"},
	}
	if fmt.Sprint(forwarded) != fmt.Sprint(want) {
		t.Errorf("forwarded %v, want %v", forwarded, want)
	}

	letters := kafkatest.ReadAll(t, brokers, assetsIn+".dlq")
	if len(letters) != 1 || string(letters[0].Value) != "x1" {
		t.Errorf("dead letters %v, want the record without a key", letters)
	}
	if got, want := stage.Stats(), (dedupe.Stats{In: 11, Forwarded: 7, Unchanged: 3, Tombstones: 1}); got != want {
		t.Errorf("stage stats %+v, want %+v", got, want)
	}
}
