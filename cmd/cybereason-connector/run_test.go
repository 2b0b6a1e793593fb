package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

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
	topics := connectorTopics(t, 2)
	brokers := kafkatest.NewBroker(t, topics...)
	env := runEnv(console.URL, brokers, 10*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuilder
	exited := startRun(ctx, env, &stdout, &stderr)

	kafkatest.WaitFor(t, func() bool {
		select {
		case code := <-exited:
			t.Fatalf("run exited with code %d before the assets were published; stderr:\n%s", code, stderr.String())
		default:
		}
		return len(kafkatest.ReadAll(t, brokers, "oversoc.assets")) == 30
	})
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

// runEnv returns the settings of a run against the console at consoleURL and
// brokers, with JSON logs and the metrics server on a free port.
func runEnv(consoleURL string, brokers []string, shutdownTimeout time.Duration) map[string]string {
	return map[string]string{
		"CYBEREASON_URL":      consoleURL,
		"CYBEREASON_USERNAME": cybereasontest.DefaultUsername,
		"CYBEREASON_PASSWORD": cybereasontest.DefaultPassword,
		"KAFKA_BROKERS":       strings.Join(brokers, ","),
		"METRICS_ADDR":        "127.0.0.1:0",
		"LOG_FORMAT":          "json",
		"SHUTDOWN_TIMEOUT":    shutdownTimeout.String(),
	}
}

// startRun runs the run command with the settings in env on a new goroutine
// and returns the channel that receives its exit code. The command reads env
// when it looks a setting up, so a change of env before the start counts.
func startRun(ctx context.Context, env map[string]string, stdout, stderr io.Writer) <-chan int {
	lookupEnv := func(key string) (string, bool) {
		value, ok := env[key]
		return value, ok
	}
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"run"}, lookupEnv, stdout, stderr) }()
	return exited
}
