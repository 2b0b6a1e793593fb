package connector_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// TestFindingChangesAreNewRecords passes versions of one MalOp through the
// enrich and dedupe stages that Build wires, as the raw events the source
// publishes. A new lastUpdateTime or a new status must reach the final
// topic, and a version seen before must not.
func TestFindingChangesAreNewRecords(t *testing.T) {
	cfg := testConfigWithoutBroker("https://acme.cybereason.example", cybereasontest.DefaultPassword)
	cfg.Stages = []string{config.StageEnrich, config.StageDedupe}
	cfg.Kafka.Brokers = []string{"127.0.0.1:9092"} // never dialled: the test calls Process only
	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { _ = stages.Writer.Close() })

	tenant := cybereasontest.GenerateTenant(5, 4, 1, time.Now())
	var malop map[string]any
	if err := json.Unmarshal(tenant.Malops()[0], &malop); err != nil {
		t.Fatal(err)
	}
	malop["status"], malop["closed"] = "Active", false
	updated := jsonInt(t, malop["lastUpdateTime"])

	steps := []struct {
		name    string
		change  func(map[string]any)
		wantNew bool
	}{
		{"first version", func(map[string]any) {}, true},
		{"same version again", func(map[string]any) {}, false},
		{"new lastUpdateTime", func(m map[string]any) { m["lastUpdateTime"] = updated + 60_000 }, true},
		{"same lastUpdateTime again", func(map[string]any) {}, false},
		{"status closed", func(m map[string]any) { m["status"], m["closed"] = "Closed", true }, true},
		{"closed again", func(map[string]any) {}, false},
	}
	ctx := context.Background()
	for i, step := range steps {
		step.change(malop)
		raw := rawMalopEvent(t, cfg, malop, int64(i))

		normalized, err := stages.Enrich.Process(ctx, raw)
		if err != nil || len(normalized) != 1 {
			t.Fatalf("%s: enrich returned %d records, error %v; want 1 record", step.name, len(normalized), err)
		}
		normalized[0].Partition, normalized[0].Offset = 0, int64(i)
		final, err := stages.Dedupe.Process(ctx, normalized[0])
		if err != nil {
			t.Fatalf("%s: dedupe: %v", step.name, err)
		}
		stages.Dedupe.CommitBatch()

		if gotNew := len(final) == 1; gotNew != step.wantNew {
			t.Errorf("%s: dedupe published %d records, want a new record %t", step.name, len(final), step.wantNew)
		}
	}
}

// rawMalopEvent returns malop as the source publishes an inbox MalOp on
// the raw topic, at offset of partition 0, with its deterministic event id.
func rawMalopEvent(t *testing.T, cfg *config.Config, malop map[string]any, offset int64) kafka.Message {
	t.Helper()
	value, err := json.Marshal(malop)
	if err != nil {
		t.Fatal(err)
	}
	guid, _ := malop["guid"].(string)
	updated := jsonInt(t, malop["lastUpdateTime"])
	sum := sha256.Sum256(value)
	event := sink.Event{
		ID:      guid + "#" + strconv.FormatInt(updated, 10) + "#" + hex.EncodeToString(sum[:8]),
		Source:  cfg.Cybereason.URL + "/rest/detection/inbox",
		Type:    source.MalopEventType,
		Subject: guid,
		Tenant:  cfg.Cybereason.Tenant,
		Time:    time.UnixMilli(updated),
	}
	return kafka.Message{Topic: cfg.Kafka.Topics.RawMalops, Offset: offset, Key: []byte(guid), Value: value, Headers: event.Headers()}
}

// jsonInt returns an epoch-millisecond value decoded from JSON, which the
// console sends as a number or as a string of digits.
func jsonInt(t *testing.T, value any) int64 {
	t.Helper()
	switch v := value.(type) {
	case float64:
		return int64(v)
	case int64:
		return v
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("time %q is not epoch milliseconds: %v", v, err)
		}
		return n
	}
	t.Fatalf("time %v has type %T, want a number or a string", value, value)
	return 0
}
