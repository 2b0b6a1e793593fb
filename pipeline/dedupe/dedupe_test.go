package dedupe_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
)

const (
	assetsIn    = "oversoc.normalized.assets"
	assetsOut   = "oversoc.assets"
	findingsIn  = "oversoc.normalized.findings"
	findingsOut = "oversoc.findings"
)

// fingerprint is the test fingerprint: the value up to its first '|', so
// that what follows plays the part of the volatile fields. It fails on the
// value "unhashable".
func fingerprint(_ string, msg kafka.Message) (string, error) {
	if string(msg.Value) == "unhashable" {
		return "", errors.New("invalid record")
	}
	stable, _, _ := strings.Cut(string(msg.Value), "|")
	return stable, nil
}

func newStage(t *testing.T) *dedupe.Stage {
	t.Helper()
	stage, err := dedupe.New(dedupe.Config{Fingerprint: fingerprint}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return stage
}

// record returns a message read from topic; a value "<nil>" makes a tombstone.
func record(topic, key, value string) kafka.Message {
	msg := kafka.Message{
		Topic:   topic,
		Key:     []byte(key),
		Value:   []byte(value),
		Headers: []kafka.Header{{Key: "ce_id", Value: []byte(key + "#" + value)}},
	}
	if key == "" {
		msg.Key = nil
	}
	if value == "<nil>" {
		msg.Value = nil
	}
	return msg
}

func TestProcess(t *testing.T) {
	type step struct {
		in      kafka.Message
		forward bool   // whether the record is forwarded
		err     string // expected error text, "" for none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first sight forwards", []step{
			{in: record(assetsIn, "a", "v1|t1"), forward: true},
		}},
		{"same fingerprint drops", []step{
			{in: record(assetsIn, "a", "v1|t1"), forward: true},
			{in: record(assetsIn, "a", "v1|t2")},
			{in: record(assetsIn, "a", "v1|t3")},
		}},
		{"changed fingerprint forwards", []step{
			{in: record(assetsIn, "a", "v1|t1"), forward: true},
			{in: record(assetsIn, "a", "v2|t2"), forward: true},
			{in: record(assetsIn, "a", "v1|t3"), forward: true},
		}},
		{"keys are independent", []step{
			{in: record(assetsIn, "a", "v1"), forward: true},
			{in: record(assetsIn, "b", "v1"), forward: true},
			{in: record(findingsIn, "a", "v1"), forward: true},
			{in: record(findingsIn, "a", "v1")},
		}},
		{"tombstone forwards and clears the key", []step{
			{in: record(assetsIn, "a", "v1"), forward: true},
			{in: record(assetsIn, "a", "<nil>"), forward: true},
			{in: record(assetsIn, "a", "<nil>"), forward: true},
			{in: record(assetsIn, "a", "v1"), forward: true},
		}},
		{"missing key is an error", []step{
			{in: record(assetsIn, "", "v1"), err: "record has no key"},
		}},
		{"unknown topic is an error", []step{
			{in: record("oversoc.other", "a", "v1"), err: `no dedupe route for topic "oversoc.other"`},
		}},
		{"fingerprint failure is an error", []step{
			{in: record(assetsIn, "a", "unhashable"), err: "fingerprint record: invalid record"},
			{in: record(assetsIn, "a", "v1"), forward: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newStage(t)
			for i, s := range tt.steps {
				out, err := stage.Process(context.Background(), s.in)

				if s.err != "" {
					if err == nil || err.Error() != s.err {
						t.Errorf("step %d: error %v, want %q", i, err, s.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if !s.forward {
					if len(out) != 0 {
						t.Errorf("step %d: forwarded %v, want nothing", i, out)
					}
					continue
				}
				checkForwarded(t, i, s.in, out)
			}
		})
	}
}

// checkForwarded checks that out is in, unchanged, on its output topic.
func checkForwarded(t *testing.T, step int, in kafka.Message, out []kafka.Message) {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("step %d: %d messages forwarded, want 1", step, len(out))
	}
	want := map[string]string{assetsIn: assetsOut, findingsIn: findingsOut}[in.Topic]
	got := out[0]
	if got.Topic != want {
		t.Errorf("step %d: forwarded to %s, want %s", step, got.Topic, want)
	}
	if string(got.Key) != string(in.Key) || string(got.Value) != string(in.Value) || (got.Value == nil) != (in.Value == nil) {
		t.Errorf("step %d: forwarded key %q value %q, want %q %q", step, got.Key, got.Value, in.Key, in.Value)
	}
	if fmt.Sprint(got.Headers) != fmt.Sprint(in.Headers) {
		t.Errorf("step %d: forwarded headers %v, want %v", step, got.Headers, in.Headers)
	}
}

func TestStats(t *testing.T) {
	stage := newStage(t)
	for _, msg := range []kafka.Message{
		record(assetsIn, "a", "v1"),
		record(assetsIn, "a", "v1"),
		record(assetsIn, "a", "<nil>"),
		record(assetsIn, "", "v1"),
	} {
		stage.Process(context.Background(), msg)
	}

	want := dedupe.Stats{In: 4, Forwarded: 2, Unchanged: 1, Tombstones: 1}
	if got := stage.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestRollbackBatchRestoresState(t *testing.T) {
	stage := newStage(t)
	process := func(key, value string) bool {
		t.Helper()
		out, err := stage.Process(context.Background(), record(assetsIn, key, value))
		if err != nil {
			t.Fatalf("Process %s=%s: %v", key, value, err)
		}
		return len(out) == 1
	}
	process("a", "v1")
	process("b", "v1")
	stage.CommitBatch()

	process("a", "v2")    // changed
	process("b", "<nil>") // deleted
	process("c", "v1")    // new
	stage.RollbackBatch()

	for _, tt := range []struct {
		key, value string
		forward    bool
	}{
		{"a", "v1", false}, // back to v1
		{"b", "v1", false}, // back to v1
		{"c", "v1", true},  // forgotten
	} {
		if got := process(tt.key, tt.value); got != tt.forward {
			t.Errorf("after rollback, %s=%s forwarded %v, want %v", tt.key, tt.value, got, tt.forward)
		}
	}
}

func TestCommitBatchKeepsState(t *testing.T) {
	stage := newStage(t)
	stage.Process(context.Background(), record(assetsIn, "a", "v1"))
	stage.CommitBatch()
	stage.RollbackBatch() // an empty batch changes nothing

	out, err := stage.Process(context.Background(), record(assetsIn, "a", "v1"))
	if err != nil || len(out) != 0 {
		t.Errorf("committed record forwarded again: %v, %v", out, err)
	}
}

func TestNewNamesBadSettings(t *testing.T) {
	tests := []struct {
		name string
		cfg  dedupe.Config
		want []string
	}{
		{"no fingerprint", dedupe.Config{}, []string{"fingerprint: required"}},
		{"empty routes", dedupe.Config{Fingerprint: fingerprint, Routes: map[string]string{}}, []string{"routes: at least one"}},
		{"empty topic", dedupe.Config{Fingerprint: fingerprint, Routes: map[string]string{"a": ""}}, []string{`empty topic name in route "a" -> ""`}},
		{"loop", dedupe.Config{Fingerprint: fingerprint, Routes: map[string]string{"a": "b", "b": "c"}}, []string{`output topic "b" of input "a" is also an input topic`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dedupe.New(tt.cfg, nil)
			if err == nil {
				t.Fatal("New accepted the config")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestNewUsesDefaultRoutes(t *testing.T) {
	stage := newStage(t)

	for in, out := range dedupe.DefaultRoutes() {
		got, err := stage.Process(context.Background(), record(in, "a", "v1"))
		if err != nil || len(got) != 1 || got[0].Topic != out {
			t.Errorf("record from %s: %v, %v; want it forwarded to %s", in, got, err, out)
		}
	}
}

func TestCustomState(t *testing.T) {
	state := dedupe.NewMemoryState()
	state.Put(assetsOut, "a", "v1") // as if restored from a changelog
	stage, err := dedupe.New(dedupe.Config{Fingerprint: fingerprint, State: state}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	out, err := stage.Process(context.Background(), record(assetsIn, "a", "v1|t9"))
	if err != nil || len(out) != 0 {
		t.Errorf("record matching the restored state forwarded: %v, %v", out, err)
	}
	stage.Process(context.Background(), record(assetsIn, "b", "v1"))
	if state.Len() != 2 {
		t.Errorf("state holds %d entries, want 2", state.Len())
	}
}

func TestProcessDropsReplayedOlderVersion(t *testing.T) {
	stage := newStage(t)
	at := func(value, ceTime string) kafka.Message {
		msg := record("oversoc.normalized.findings", "malware-1", value)
		msg.Headers = append(msg.Headers, kafka.Header{Key: "ce_time", Value: []byte(ceTime)})
		return msg
	}
	first := at("A", "2026-12-04T10:00:00.000Z")
	second := at("B", "2026-12-04T11:00:00.000Z")

	// The batch A, B arrives, then again after an upstream replay.
	steps := []struct {
		in       kafka.Message
		forwards int
	}{
		{first, 1},
		{second, 1},
		{first, 0}, // older than B: a replay, not a change
		{second, 0},
		{at("C", "2026-12-04T11:00:00.000Z"), 1}, // same time, new content
	}
	for i, step := range steps {
		out, err := stage.Process(context.Background(), step.in)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(out) != step.forwards {
			t.Errorf("step %d (%s): %d records forwarded, want %d", i, step.in.Value, len(out), step.forwards)
		}
	}
	if stats := stage.Stats(); stats.Stale != 1 {
		t.Errorf("Stale = %d, want 1", stats.Stale)
	}
}
