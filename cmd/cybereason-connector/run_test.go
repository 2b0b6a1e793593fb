package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// syncBuilder is a strings.Builder that the run goroutine and the test can
// use at the same time.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunStopsCleanlyWhenSignaled runs the run command in the test process
// and ends its context, as SIGTERM does in main. The command must exit 0
// after logging that the connector stopped. TestMain then checks that no
// goroutine of the command outlived it.
func TestRunStopsCleanlyWhenSignaled(t *testing.T) {
	console := cybereasontest.NewServer(cybereasontest.GenerateTenant(4, 30, 3, time.Now()), cybereasontest.Options{})
	defer console.Close()
	var topics []embeddedkafka.Topic
	for _, name := range []string{"cybereason.raw.sensors", "cybereason.raw.malops", "cybereason.raw.malware", "cybereason.raw.policies",
		"oversoc.normalized.assets", "oversoc.normalized.findings", "oversoc.assets", "oversoc.findings"} {
		topics = append(topics, embeddedkafka.Topic{Name: name, Partitions: 2}, embeddedkafka.Topic{Name: name + ".dlq"})
	}
	topics = append(topics, embeddedkafka.Topic{Name: "oversoc.asset-security-state", Partitions: 2},
		embeddedkafka.Topic{Name: "cybereason.connector.state", Compacted: true})
	brokers := kafkatest.NewBroker(t, topics...)
	env := map[string]string{
		"CYBEREASON_URL":      console.URL,
		"CYBEREASON_USERNAME": cybereasontest.DefaultUsername,
		"CYBEREASON_PASSWORD": cybereasontest.DefaultPassword,
		"KAFKA_BROKERS":       strings.Join(brokers, ","),
		"METRICS_ADDR":        "127.0.0.1:0",
		"LOG_FORMAT":          "json",
		"SHUTDOWN_TIMEOUT":    "10s",
	}
	lookupEnv := func(key string) (string, bool) {
		value, ok := env[key]
		return value, ok
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuilder
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"run"}, lookupEnv, &stdout, &stderr) }()

	kafkatest.WaitFor(t, func() bool { return len(kafkatest.ReadAll(t, brokers, "oversoc.assets")) == 30 })
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit code %d after the stop, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(kafkatest.Timeout):
		t.Fatalf("run did not return within %s of the stop", kafkatest.Timeout)
	}

	if !strings.Contains(stderr.String(), `"msg":"connector stopped"`) {
		t.Errorf("log lacks the connector stopped line:\n%s", stderr.String())
	}
}
