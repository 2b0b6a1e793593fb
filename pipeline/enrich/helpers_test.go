package enrich

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
)

const (
	testTenant        = "console.example.net"
	testSensorsSource = "https://console.example.net:8443/rest/sensors/query"
	testMalopsSource  = "https://console.example.net:8443/rest/detection/inbox"
	testPollTime      = "2026-01-01T00:00:00.000Z"
)

// testNow is the processing time of test stages.
func testNow() time.Time { return time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC) }

func newTestStage(t testing.TB) *Stage {
	t.Helper()
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	stage, err := New(Config{Validator: validator, Now: testNow, ProductVersion: "0.0.0-test"}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return stage
}

func jsonNumber(s string) json.Number { return json.Number(s) }

// readTestdata returns a file of testdata/ decoded as a vendor object, so that tests can change it.
func readTestdata(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	object, err := decodeVendorObject(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return object
}

func encode(t testing.TB, value any) []byte {
	t.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func rawHeaders(eventType, source, eventTime string) []kafka.Header {
	return []kafka.Header{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: []byte("raw-id")},
		{Key: "ce_source", Value: []byte(source)},
		{Key: "ce_type", Value: []byte(eventType)},
		{Key: "ce_time", Value: []byte(eventTime)},
		{Key: "ce_tenant", Value: []byte(testTenant)},
		{Key: "content-type", Value: []byte("application/json")},
	}
}

// sensorMessage wraps a sensor object the way the source stage publishes it.
func sensorMessage(t testing.TB, sensor map[string]any) kafka.Message {
	t.Helper()
	key, _ := sensor["sensorId"].(string)
	return kafka.Message{
		Topic:   DefaultSensorsTopic,
		Key:     []byte(key),
		Value:   encode(t, sensor),
		Headers: rawHeaders(RawSensorType, testSensorsSource, testPollTime),
	}
}

// malopMessage wraps a MalOp object the way the source stage publishes it.
func malopMessage(t testing.TB, malop map[string]any) kafka.Message {
	t.Helper()
	key, _ := malop["guid"].(string)
	return kafka.Message{
		Topic:   DefaultMalopsTopic,
		Key:     []byte(key),
		Value:   encode(t, malop),
		Headers: rawHeaders(RawMalopType, testMalopsSource, "2025-12-30T13:15:00.000Z"),
	}
}

// typedMalopMessage wraps a MalOp value of any shape the way the source stage publishes it, with
// ce_type eventType.
func typedMalopMessage(t testing.TB, eventType, guid string, value any) kafka.Message {
	t.Helper()
	return kafka.Message{
		Topic:   DefaultMalopsTopic,
		Key:     []byte(guid),
		Value:   encode(t, value),
		Headers: rawHeaders(eventType, testMalopsSource, "2025-12-30T13:15:00.000Z"),
	}
}

// detailedMessage wraps a MalOp and its details the way the source stage publishes a detailed
// MalOp.
func detailedMessage(t testing.TB, malop map[string]any, malopType string, details any, endpoint string) kafka.Message {
	t.Helper()
	guid, _ := malop["guid"].(string)
	wrapper := map[string]any{"malop": malop, "malopType": malopType, "details": details, "detailsEndpoint": endpoint}
	return typedMalopMessage(t, RawMalopDetailedType, guid, wrapper)
}

// malwareMessage wraps a malware alert the way the source stage publishes it.
func malwareMessage(t testing.TB, malware map[string]any) kafka.Message {
	t.Helper()
	key, _ := malware["guid"].(string)
	return kafka.Message{
		Topic:   DefaultMalwareTopic,
		Key:     []byte(key),
		Value:   encode(t, malware),
		Headers: rawHeaders(RawMalwareType, "https://console.example.net:8443/rest/malware/query", "2026-01-01T00:00:00.000Z"),
	}
}

// processOne runs one message through the stage and requires exactly one output.
func processOne(t testing.TB, stage *Stage, msg kafka.Message) kafka.Message {
	t.Helper()
	out, err := stage.Process(context.Background(), msg)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(out) != 1 {
		t.Fatalf("Process returned %d messages, want 1", len(out))
	}
	return out[0]
}

func headerValue(t *testing.T, msg kafka.Message, key string) string {
	t.Helper()
	var found []string
	for _, h := range msg.Headers {
		if h.Key == key {
			found = append(found, string(h.Value))
		}
	}
	if len(found) != 1 {
		t.Fatalf("header %s appears %d times, want once", key, len(found))
	}
	return found[0]
}

func decodeAsset(t *testing.T, msg kafka.Message) schemas.Asset {
	t.Helper()
	var asset schemas.Asset
	decodeStrict(t, msg.Value, &asset)
	return asset
}

func decodeFinding(t *testing.T, msg kafka.Message) schemas.Finding {
	t.Helper()
	var finding schemas.Finding
	decodeStrict(t, msg.Value, &finding)
	return finding
}

// decodeStrict decodes a record and fails on a field that the Go type lacks, which keeps the Go
// types and the records in step.
func decodeStrict(t *testing.T, data []byte, out any) {
	t.Helper()
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(out); err != nil {
		t.Fatalf("decode record: %v\n%s", err, data)
	}
}
