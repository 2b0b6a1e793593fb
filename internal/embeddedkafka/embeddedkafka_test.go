package embeddedkafka

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStartCreatesTopics(t *testing.T) {
	broker, err := Start(Config{Topics: []Topic{
		{Name: "raw", Partitions: 3},
		{Name: "state", Partitions: 2, Compacted: true},
		{Name: "single"},
	}}, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer broker.Close()

	partitions := metadata(t, broker.Addrs())
	want := map[string]int{"raw": 3, "state": 2, "single": 1}
	for topic, n := range want {
		if partitions[topic] != n {
			t.Errorf("topic %s has %d partitions, want %d", topic, partitions[topic], n)
		}
	}

	cluster := broker.Cluster()
	if policy := cluster.TopicInfo("state").Configs["cleanup.policy"]; policy == nil || *policy != "compact" {
		t.Errorf("topic state cleanup.policy %v, want compact", policy)
	}
	if policy := cluster.TopicInfo("raw").Configs["cleanup.policy"]; policy != nil {
		t.Errorf("topic raw cleanup.policy %q, want unset", *policy)
	}
}

// metadata returns the partition count of each topic, as a client sees it.
func metadata(t *testing.T, addrs []string) map[string]int {
	t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addrs...), Transport: transport, Timeout: 10 * time.Second}

	meta, err := client.Metadata(context.Background(), &kafka.MetadataRequest{})
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	partitions := make(map[string]int)
	for _, topic := range meta.Topics {
		partitions[topic.Name] = len(topic.Partitions)
	}
	return partitions
}

func TestStartListensOnLoopback(t *testing.T) {
	broker, err := Start(Config{}, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	port := brokerPort(t, broker)
	broker.Close()
	broker.Close() // a second Close does nothing

	// Start again on the port the first broker had.
	again, err := Start(Config{Port: port}, nil)
	if err != nil {
		t.Fatalf("Start on port %d: %v", port, err)
	}
	defer again.Close()
	if got := brokerPort(t, again); got != port {
		t.Errorf("broker on port %d, want %d", got, port)
	}
}

func brokerPort(t *testing.T, b *Broker) int {
	t.Helper()
	addrs := b.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("addresses %v, want one", addrs)
	}
	host, port, err := net.SplitHostPort(addrs[0])
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("address %q, want 127.0.0.1:port", addrs[0])
	}
	n, _ := strconv.Atoi(port)
	return n
}

func TestStartNamesBadSettings(t *testing.T) {
	_, err := Start(Config{Port: 70000, Topics: []Topic{
		{Name: ""},
		{Name: "bad/name"},
		{Name: "dup"},
		{Name: "dup"},
		{Name: "neg", Partitions: -1},
	}}, nil)
	if err == nil {
		t.Fatal("Start accepted the config")
	}
	for _, want := range []string{
		"invalid port 70000",
		`invalid topic name "" (topic 0)`,
		`invalid topic name "bad/name" (topic 1)`,
		`topic "dup" is listed twice`,
		`invalid partition count -1 for topic "neg"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestLogBridgeLogsAtDebug(t *testing.T) {
	var buf bytes.Buffer
	bridge := logBridge{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}

	bridge.Logf(kfake.LogLevelError, "group %s: %d members", "g", 2)

	line := buf.String()
	for _, want := range []string{"level=DEBUG", `msg="group g: 2 members"`, "component=kfake", "kfake_level=ERR"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q does not contain %q", line, want)
		}
	}
}

func TestLogBridgeSkipsWhenDebugIsOff(t *testing.T) {
	var buf bytes.Buffer
	bridge := logBridge{logger: slog.New(slog.NewTextHandler(&buf, nil))}

	bridge.Logf(kfake.LogLevelError, "dropped")

	if buf.Len() != 0 {
		t.Errorf("logged %q with Debug off", buf.String())
	}
}

func TestReadAllMissingTopic(t *testing.T) {
	broker, err := Start(Config{}, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer broker.Close()

	_, err = ReadAll(context.Background(), broker.Addrs(), "missing")
	if err == nil || !strings.Contains(err.Error(), "read topic missing: fetch metadata:") {
		t.Errorf("ReadAll error %v, want the missing topic named", err)
	}
}
