package connector_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// TestRunSurvivesBrokerRestart stops the broker after the first page of the
// sensor inventory and starts it again on the same port with the same data
// directory. Every sensor, MalOp and malware alert must still reach the final
// topics, each (key, ce_id) pair once.
func TestRunSurvivesBrokerRestart(t *testing.T) {
	const sensors, malops = 600, 20
	tenant := cybereasontest.GenerateTenant(7, sensors, malops, time.Now())

	// The console serves the first sensors page normally and holds every
	// later one until the broker is stopped, so the outage always falls in
	// the middle of the inventory, whatever the machine's speed.
	brokerStopped := make(chan struct{})
	var sensorRequests atomic.Int32
	console := cybereasontest.NewHandler(tenant, cybereasontest.Options{PageDelay: 50 * time.Millisecond})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/rest/sensors/query" && sensorRequests.Add(1) > 1 {
			select {
			case <-brokerStopped:
			case <-r.Context().Done():
				return
			}
		}
		console.ServeHTTP(w, r)
	}))
	t.Cleanup(server.Close)

	cfg := testConfigWithoutBroker(server.URL, cybereasontest.DefaultPassword)
	cfg.Cybereason.PageSize = 50
	brokerConfig := embeddedkafka.Config{
		Port:    freeLoopbackPort(t),
		DataDir: t.TempDir(),
		Topics:  testTopicSpecs(cfg.Kafka.Topics, 3),
	}
	broker := startBroker(t, brokerConfig)
	t.Cleanup(func() { broker.Close() })
	cfg.Kafka.Brokers = broker.Addrs()

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stages.Run(ctx, cfg.ShutdownTimeout) }()
	stopRun := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { stopRun() })

	kafkatest.WaitFor(t, func() bool {
		return len(kafkatest.ReadAll(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.RawSensors)) > 0
	})
	broker.Close()
	close(brokerStopped)

	// Restart only once a write has failed, so the outage is one the stages
	// saw. The conditions below do not call the stopped broker.
	writesRetrying := func() bool {
		_, reasons := stages.Ready()
		return slices.Contains(reasons, "kafka writes are failing and being retried")
	}
	kafkatest.WaitFor(t, writesRetrying)
	time.Sleep(time.Second) // several failed attempts, with growing backoff
	broker = startBroker(t, brokerConfig)

	wantAssets := wantKeys(tenant.SensorIDs(), "cybereason:acme.cybereason.example:")
	wantFindings := wantKeys(guids(t, tenant.Malops()), "cybereason:acme.cybereason.example:malop:")
	for key := range wantKeys(guids(t, tenant.Malware()), "cybereason:acme.cybereason.example:malware:") {
		wantFindings[key] = true
	}
	kafkatest.WaitFor(t, func() bool {
		return hasEveryKey(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.Assets, wantAssets) &&
			hasEveryKey(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.Findings, wantFindings)
	})
	kafkatest.WaitFor(t, func() bool { ready, _ := stages.Ready(); return ready })
	if err := stopRun(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	for topic, want := range map[string]map[string]bool{cfg.Kafka.Topics.Assets: wantAssets, cfg.Kafka.Topics.Findings: wantFindings} {
		seen := map[[2]string]bool{}
		keys := map[string]bool{}
		for _, msg := range kafkatest.ReadAll(t, cfg.Kafka.Brokers, topic) {
			keys[string(msg.Key)] = true
			id := headerValue(msg.Headers, sink.HeaderID)
			if id == "" {
				t.Errorf("%s: record %s has no %s header", topic, msg.Key, sink.HeaderID)
			}
			// When the outage loses enrich's offset commit, enrich publishes
			// a batch again. Dedupe must drop the replayed older versions of
			// a key (an alert whose guid repeats), not only exact repeats.
			pair := [2]string{string(msg.Key), id}
			if seen[pair] {
				t.Errorf("%s: key %s with %s %s appears twice", topic, msg.Key, sink.HeaderID, id)
			}
			seen[pair] = true
		}
		for key := range want {
			if !keys[key] {
				t.Errorf("%s has no record with key %s", topic, key)
			}
		}
		if len(keys) != len(want) {
			t.Errorf("%s has %d distinct keys, want %d", topic, len(keys), len(want))
		}
	}
	for _, topic := range []string{cfg.Kafka.Topics.RawSensors + ".dlq", cfg.Kafka.Topics.NormalizedAssets + ".dlq", cfg.Kafka.Topics.NormalizedFindings + ".dlq"} {
		if msgs := kafkatest.ReadAll(t, cfg.Kafka.Brokers, topic); len(msgs) != 0 {
			t.Errorf("%s has %d dead letters, want none", topic, len(msgs))
		}
	}
}

// freeLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment
// ago. Another process could take it before the test listens on it.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	if err := listener.Close(); err != nil {
		t.Fatalf("close listener on port %d: %v", port, err)
	}
	return port
}

func startBroker(t *testing.T, cfg embeddedkafka.Config) *embeddedkafka.Broker {
	t.Helper()
	broker, err := embeddedkafka.Start(cfg, nil)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	return broker
}

func wantKeys(ids []string, prefix string) map[string]bool {
	keys := make(map[string]bool, len(ids))
	for _, id := range ids {
		keys[prefix+id] = true
	}
	return keys
}

// guids returns the guid member of each object.
func guids(t *testing.T, objects []json.RawMessage) []string {
	t.Helper()
	var ids []string
	for _, raw := range objects {
		var object struct {
			GUID string `json:"guid"`
		}
		if err := json.Unmarshal(raw, &object); err != nil {
			t.Fatal(err)
		}
		if object.GUID == "" {
			t.Fatalf("object without guid: %s", raw)
		}
		ids = append(ids, object.GUID)
	}
	return ids
}

// hasEveryKey reports whether topic has a record for every key of want.
func hasEveryKey(t *testing.T, brokers []string, topic string, want map[string]bool) bool {
	t.Helper()
	keys := map[string]bool{}
	for _, msg := range kafkatest.ReadAll(t, brokers, topic) {
		keys[string(msg.Key)] = true
	}
	for key := range want {
		if !keys[key] {
			return false
		}
	}
	return true
}

func headerValue(headers []kafka.Header, key string) string {
	for _, header := range headers {
		if header.Key == key {
			return string(header.Value)
		}
	}
	return ""
}
