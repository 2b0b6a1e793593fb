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

func TestStartAgainWithDataDirKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	topics := []Topic{{Name: "raw", Partitions: 2}, {Name: "state", Compacted: true}}
	first, err := Start(Config{DataDir: dir, Topics: topics}, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	port := brokerPort(t, first)
	produce(t, first.Addrs(),
		kafka.Message{Topic: "raw", Key: []byte("a"), Value: []byte("1")},
		kafka.Message{Topic: "raw", Key: []byte("b"), Value: []byte("2")},
		kafka.Message{Topic: "state", Key: []byte("c"), Value: []byte("3")},
	)
	first.Close()

	again, err := Start(Config{Port: port, DataDir: dir, Topics: topics}, nil)
	if err != nil {
		t.Fatalf("Start again on port %d: %v", port, err)
	}
	defer again.Close()

	if got := brokerPort(t, again); got != port {
		t.Errorf("broker on port %d, want %d", got, port)
	}
	ctx := context.Background()
	for topic, want := range map[string]int{"raw": 2, "state": 1} {
		msgs, err := ReadAll(ctx, again.Addrs(), topic)
		if err != nil {
			t.Fatalf("ReadAll %s: %v", topic, err)
		}
		if len(msgs) != want {
			t.Errorf("topic %s has %d records after the restart, want %d", topic, len(msgs), want)
		}
	}
	if policy := again.Cluster().TopicInfo("state").Configs["cleanup.policy"]; policy == nil || *policy != "compact" {
		t.Errorf("topic state cleanup.policy %v after the restart, want compact", policy)
	}
}

func TestStartWithoutDataDirForgetsRecords(t *testing.T) {
	first, err := Start(Config{Topics: []Topic{{Name: "raw"}}}, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	port := brokerPort(t, first)
	produce(t, first.Addrs(), kafka.Message{Topic: "raw", Value: []byte("1")})
	first.Close()

	again, err := Start(Config{Port: port, Topics: []Topic{{Name: "raw"}}}, nil)
	if err != nil {
		t.Fatalf("Start again on port %d: %v", port, err)
	}
	defer again.Close()

	msgs, err := ReadAll(context.Background(), again.Addrs(), "raw")
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(msgs) != 0 {
		t.Errorf("topic raw has %d records after a restart without DataDir, want 0", len(msgs))
	}
}

func TestStartRejectsChangedStoredTopic(t *testing.T) {
	dir := t.TempDir()
	first, err := Start(Config{DataDir: dir, Topics: []Topic{{Name: "raw", Partitions: 2}, {Name: "state"}}}, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	first.Close()

	tests := []struct {
		name   string
		topics []Topic
		want   string
	}{
		{"partitions", []Topic{{Name: "raw", Partitions: 3}}, `stored topic "raw" has 2 partitions, want 3`},
		{"compaction", []Topic{{Name: "state", Compacted: true}}, `stored topic "state" has compaction false, want true`},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			broker, err := Start(Config{DataDir: dir, Topics: test.topics}, nil)
			if err == nil {
				broker.Close()
				t.Fatal("Start accepted a topic list that disagrees with the data directory")
			}
			if !strings.Contains(err.Error(), test.want) {
				t.Errorf("error %q does not contain %q", err, test.want)
			}
		})
	}
}

// produce writes msgs with acks from all replicas and fails the test unless
// every message is acknowledged.
func produce(t *testing.T, addrs []string, msgs ...kafka.Message) {
	t.Helper()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	writer := &kafka.Writer{
		Addr:         kafka.TCP(addrs...),
		Transport:    transport,
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	err := writer.WriteMessages(ctx, msgs...)
	if closeErr := writer.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		t.Fatalf("produce %d messages: %v", len(msgs), err)
	}
}
