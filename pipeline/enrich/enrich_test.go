package enrich

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
)

func TestNewNamesEveryBadSetting(t *testing.T) {
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"missing validator", Config{}, []string{"Validator is required"}},
		{"bad topic name", Config{Validator: validator, AssetsTopic: "assets topic"}, []string{`AssetsTopic "assets topic" is not a valid Kafka topic name`}},
		{"output loops to input", Config{Validator: validator, FindingsTopic: DefaultMalopsTopic}, []string{"MalopsTopic and FindingsTopic are both"}},
		{"inputs equal", Config{Validator: validator, SensorsTopic: "raw", MalopsTopic: "raw"}, []string{"SensorsTopic and MalopsTopic are both"}},
		{"malware input equals MalOps input", Config{Validator: validator, MalwareTopic: DefaultMalopsTopic}, []string{"MalopsTopic and MalwareTopic are both"}},
		{"bad malware topic", Config{Validator: validator, MalwareTopic: "raw/malware"}, []string{`MalwareTopic "raw/malware" is not a valid Kafka topic name`}},
		{"negative index size", Config{Validator: validator, MachineIndexSize: -1}, []string{"MachineIndexSize is -1"}},
		{
			"several at once",
			Config{SensorsTopic: strings.Repeat("t", 250), MachineIndexSize: -5},
			[]string{"SensorsTopic", "Validator is required", "MachineIndexSize is -5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage, err := New(tt.cfg, nil)
			if err == nil {
				t.Fatalf("New returned a stage %v, want an error", stage)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	stage := newTestStage(t)
	if stage.cfg.SensorsTopic != DefaultSensorsTopic || stage.cfg.MalopsTopic != DefaultMalopsTopic ||
		stage.cfg.AssetsTopic != DefaultAssetsTopic || stage.cfg.FindingsTopic != DefaultFindingsTopic ||
		stage.cfg.MalwareTopic != DefaultMalwareTopic {
		t.Errorf("topics %+v, want the contract defaults", stage.cfg)
	}
	if stage.machines.max != DefaultMachineIndexSize {
		t.Errorf("machine index size %d, want %d", stage.machines.max, DefaultMachineIndexSize)
	}
}

func TestProcessCustomTopics(t *testing.T) {
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	stage, err := New(Config{Validator: validator, SensorsTopic: "in.s", MalopsTopic: "in.m", MalwareTopic: "in.w", AssetsTopic: "out.a", FindingsTopic: "out.f"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sensor := sensorMessage(t, readTestdata(t, "sensor-full.json"))
	sensor.Topic = "in.s"
	malop := malopMessage(t, readTestdata(t, "malop-edr.json"))
	malop.Topic = "in.m"

	if out := processOne(t, stage, sensor); out.Topic != "out.a" {
		t.Errorf("sensor went to %q, want out.a", out.Topic)
	}
	if out := processOne(t, stage, malop); out.Topic != "out.f" {
		t.Errorf("MalOp went to %q, want out.f", out.Topic)
	}
	malware := malwareMessage(t, readTestdata(t, "malware.json"))
	malware.Topic = "in.w"
	if out := processOne(t, stage, malware); out.Topic != "out.f" {
		t.Errorf("malware alert went to %q, want out.f", out.Topic)
	}
	sensor.Topic = DefaultSensorsTopic
	if _, err := stage.Process(context.Background(), sensor); err == nil || !strings.Contains(err.Error(), "no route for topic") {
		t.Errorf("Process on the default topic = %v, want a routing error", err)
	}
}

func TestProcessRejectsBadInput(t *testing.T) {
	withHeaders := func(msg kafka.Message, edit func([]kafka.Header) []kafka.Header) kafka.Message {
		msg.Headers = edit(append([]kafka.Header(nil), msg.Headers...))
		return msg
	}
	without := func(key string) func([]kafka.Header) []kafka.Header {
		return func(headers []kafka.Header) []kafka.Header {
			var out []kafka.Header
			for _, h := range headers {
				if h.Key != key {
					out = append(out, h)
				}
			}
			return out
		}
	}
	replace := func(key, value string) func([]kafka.Header) []kafka.Header {
		return func(headers []kafka.Header) []kafka.Header {
			for i := range headers {
				if headers[i].Key == key {
					headers[i].Value = []byte(value)
				}
			}
			return headers
		}
	}
	sensor := func() kafka.Message { return sensorMessage(t, readTestdata(t, "sensor-full.json")) }
	withValue := func(value string) kafka.Message {
		msg := sensor()
		msg.Value = []byte(value)
		return msg
	}
	withKey := func(key string) kafka.Message {
		msg := sensor()
		msg.Key = []byte(key)
		return msg
	}
	malopWithout := func(field string) kafka.Message {
		malop := readTestdata(t, "malop-edr.json")
		delete(malop, field)
		msg := malopMessage(t, malop)
		msg.Key = []byte("AAAAbWFsb3AwMDAx")
		return msg
	}

	tests := []struct {
		name string
		msg  kafka.Message
		want string
	}{
		{"not JSON", withValue(`{"sensorId": `), "enrich sensor: value is not valid JSON"},
		{"empty value", withValue(``), "value is empty"},
		{"array", withValue(`[{"sensorId":"a"}]`), "value is a JSON array, expected an object"},
		{"string", withValue(`"a"`), "value is a JSON string, expected an object"},
		{"null", withValue(`null`), "value is a JSON null, expected an object"},
		{"trailing data", withValue(`{"sensorId":"a"} {}`), "data after the JSON object"},
		{"missing sensorId", withValue(`{"machineName":"a"}`), "missing sensorId in the value"},
		{"null sensorId", withValue(`{"sensorId":null}`), "missing sensorId in the value"},
		{"key mismatch", withKey("other"), `message key "other" does not match sensorId`},
		{"empty key", withKey(""), `message key "" does not match sensorId`},
		{"missing ce_source", withHeaders(sensor(), without("ce_source")), "invalid headers: missing ce_source"},
		{"missing ce_time", withHeaders(sensor(), without("ce_time")), "missing ce_time"},
		{"bad ce_time", withHeaders(sensor(), replace("ce_time", "yesterday")), `invalid ce_time "yesterday"`},
		{"ce_time before 1970", withHeaders(sensor(), replace("ce_time", "1960-01-01T00:00:00Z")), "before 1970"},
		{"wrong ce_type", withHeaders(sensor(), replace("ce_type", RawMalopType)), `ce_type is "com.oversoc.cybereason.malop.raw", expected "com.oversoc.cybereason.sensor.raw"`},
		{"tenant with colon", withHeaders(sensor(), replace("ce_tenant", "acme:8443")), `invalid tenant "acme:8443" from ce_tenant: contains ':'`},
		{"no tenant", withHeaders(withHeaders(sensor(), without("ce_tenant")), replace("ce_source", "/rest/sensors/query")), "missing ce_tenant"},
		{"no headers", withHeaders(sensor(), func([]kafka.Header) []kafka.Header { return nil }), "missing ce_source; missing ce_time"},
		{"unknown topic", func() kafka.Message { m := sensor(); m.Topic = "cybereason.raw.policies"; return m }(), `no route for topic "cybereason.raw.policies"`},
		{"MalOp without guid", malopWithout("guid"), "enrich MalOp: missing guid in the value"},
	}
	stage := newTestStage(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := stage.Process(context.Background(), tt.msg)
			if err == nil {
				t.Fatalf("Process returned %d messages, want an error", len(out))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
	if got := stage.Stats().Rejected; got != int64(len(tests)) {
		t.Errorf("rejected = %d, want %d", got, len(tests))
	}
}

func TestProcessReportsSchemaViolation(t *testing.T) {
	stage := newTestStage(t)

	// The mapping never produces a record that breaks the schema, so the test hands recordMessage
	// an empty asset directly.
	asset := schemas.Asset{AssetUID: "cybereason:t:srv:bad"}
	_, err := stage.recordMessage(schemas.KindAsset, "out", assetType, asset.AssetUID, &asset, &asset.Metadata, envelope{})
	if err == nil {
		t.Fatal("recordMessage accepted an empty asset")
	}
	for _, want := range []string{"record cybereason:t:srv:bad does not match its schema", "invalid asset record:", "/class_uid"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestProcessTenantFromSource(t *testing.T) {
	stage := newTestStage(t)
	msg := sensorMessage(t, readTestdata(t, "sensor-full.json"))
	var headers []kafka.Header
	for _, h := range msg.Headers {
		switch h.Key {
		case "ce_tenant":
		case "ce_source":
			headers = append(headers, kafka.Header{Key: h.Key, Value: []byte("https://Acme.Cybereason.NET:8443/rest/sensors/query")})
		default:
			headers = append(headers, h)
		}
	}
	msg.Headers = headers

	out := processOne(t, stage, msg)

	if got := headerValue(t, out, "ce_tenant"); got != "acme.cybereason.net" {
		t.Errorf("ce_tenant = %q, want acme.cybereason.net", got)
	}
	if want := "cybereason:acme.cybereason.net:"; !strings.HasPrefix(string(out.Key), want) {
		t.Errorf("key %q does not start with %q", out.Key, want)
	}
}

func TestProcessCounts(t *testing.T) {
	stage := newTestStage(t)
	processOne(t, stage, sensorMessage(t, readTestdata(t, "sensor-full.json")))
	processOne(t, stage, malopMessage(t, readTestdata(t, "malop-edr.json")))
	processOne(t, stage, malopMessage(t, readTestdata(t, "malop-epp.json")))

	stats := stage.Stats()
	if stats.Sensors != 1 || stats.Malops != 2 || stats.Rejected != 0 {
		t.Errorf("stats %+v, want 1 sensor, 2 MalOps, 0 rejected", stats)
	}
}

func TestUnknownValueLoggingIsCapped(t *testing.T) {
	stage := newTestStage(t)
	for i := range maxLoggedUnknownValues + 10 {
		stage.reportUnknown("sensor.status", fmt.Sprintf("value-%d", i))
	}
	stage.reportUnknown("sensor.status", "value-0")

	if got := len(stage.loggedUnknown); got != maxLoggedUnknownValues {
		t.Errorf("%d logged pairs, want the cap %d", got, maxLoggedUnknownValues)
	}
	if got := stage.Stats().UnknownValues["sensor.status"]; got != maxLoggedUnknownValues+11 {
		t.Errorf("count = %d, want %d", got, maxLoggedUnknownValues+11)
	}
}

func TestStageConcurrentProcess(t *testing.T) {
	stage := newTestStage(t)
	sensor := sensorMessage(t, readTestdata(t, "sensor-full.json"))
	malop := malopMessage(t, readTestdata(t, "malop-edr.json"))
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for worker := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := sensor
			if worker%2 == 1 {
				msg = malop
			}
			for range 25 {
				if _, err := stage.Process(context.Background(), msg); err != nil {
					errs <- err
					return
				}
				_ = stage.Stats()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if stats := stage.Stats(); stats.Sensors+stats.Malops != 200 {
		t.Errorf("stats %+v, want 200 records", stats)
	}
}

func TestMachineIndexEvictsLeastRecentlyUsed(t *testing.T) {
	index := newMachineIndex(2)
	index.store("t", "g1", "s1")
	index.store("t", "g2", "s2")
	if _, ok := index.lookup("t", "g1"); !ok {
		t.Fatal("g1 missing before eviction")
	}
	index.store("t", "g3", "s3")

	if _, ok := index.lookup("t", "g2"); ok {
		t.Error("g2 survived, want it evicted as least recently used")
	}
	for guid, want := range map[string]string{"g1": "s1", "g3": "s3"} {
		if got, ok := index.lookup("t", guid); !ok || got != want {
			t.Errorf("lookup %s = %q, %v; want %q", guid, got, ok, want)
		}
	}
	index.store("t", "g3", "s3-reinstalled")
	if got, _ := index.lookup("t", "g3"); got != "s3-reinstalled" {
		t.Errorf("lookup g3 = %q, want the newer sensor", got)
	}
	index.store("t", "", "s4")
	if index.len() != 2 {
		t.Errorf("len = %d, want 2", index.len())
	}
}

func TestLogProvider(t *testing.T) {
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		logProvider, productVersion, want string
	}{
		{"", "", "cybereason-connector"},
		{"", "1.4.2", "cybereason-connector/1.4.2"},
		{"edge-connector", "2.0.0", "edge-connector/2.0.0"},
	}
	for _, tt := range tests {
		stage, err := New(Config{Validator: validator, LogProvider: tt.logProvider, ProductVersion: tt.productVersion}, nil)
		if err != nil {
			t.Fatal(err)
		}
		asset := decodeAsset(t, processOne(t, stage, sensorMessage(t, readTestdata(t, "sensor-full.json"))))
		if asset.Metadata.LogProvider != tt.want {
			t.Errorf("LogProvider %q, ProductVersion %q: log_provider = %q, want %q", tt.logProvider, tt.productVersion, asset.Metadata.LogProvider, tt.want)
		}
	}
}
