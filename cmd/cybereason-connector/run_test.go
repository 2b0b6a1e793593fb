package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

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

// TestRunStopsWithinShutdownTimeoutWhileWritesHang makes the broker leave
// every produce request unanswered while the connector moves an inventory of
// 3,000 sensors through its stages, then ends the command's context as
// SIGTERM does. The batches in flight can then never be written, so the
// stages must abandon them once SHUTDOWN_TIMEOUT has passed, and the command
// must return soon after, without committing them.
func TestRunStopsWithinShutdownTimeoutWhileWritesHang(t *testing.T) {
	const shutdownTimeout = 3 * time.Second
	console := cybereasontest.NewServer(cybereasontest.GenerateTenant(5, 3000, 2, time.Now()), cybereasontest.Options{})
	defer console.Close()
	broker := kafkatest.StartBroker(t, connectorTopics(t, 2)...)
	brokers := broker.Addrs()
	env := map[string]string{
		"CYBEREASON_URL":      console.URL,
		"CYBEREASON_USERNAME": cybereasontest.DefaultUsername,
		"CYBEREASON_PASSWORD": cybereasontest.DefaultPassword,
		"KAFKA_BROKERS":       strings.Join(brokers, ","),
		"METRICS_ADDR":        "127.0.0.1:0",
		"LOG_FORMAT":          "json",
		"SHUTDOWN_TIMEOUT":    shutdownTimeout.String(),
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

	kafkatest.WaitFor(t, func() bool {
		select {
		case code := <-exited:
			t.Fatalf("run exited with code %d before the assets were published; stderr:\n%s", code, stderr.String())
		default:
		}
		return len(kafkatest.ReadAll(t, brokers, "oversoc.assets")) > 0
	})
	var unanswered atomic.Int64
	cluster := broker.Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		unanswered.Add(1)
		return nil, nil, true // no response: the request waits until the client gives up
	})
	kafkatest.WaitFor(t, func() bool { return unanswered.Load() > 0 })
	cancel()
	stopped := time.Now()

	const margin = 20 * time.Second
	select {
	case code := <-exited:
		t.Logf("run returned %s after the stop, with exit code %d; %d produce requests left unanswered", time.Since(stopped).Round(time.Millisecond), code, unanswered.Load())
	case <-time.After(shutdownTimeout + margin):
		t.Fatalf("run did not return within SHUTDOWN_TIMEOUT %s plus %s after the stop; stderr:\n%s", shutdownTimeout, margin, stderr.String())
	}
	logged := stderr.String()
	if !strings.Contains(logged, "batch abandoned because the runner is stopping") {
		t.Errorf("no stage logged an abandoned batch, so no write was in flight at the stop:\n%s", logged)
	}
	// Without closing the connections of the writes in flight, the writer's
	// Close waits for them until its write timeout, 10s, past the deadline.
	if !strings.Contains(logged, "kafka writes still in flight at the end of the shutdown timeout") {
		t.Errorf("the connector did not close the connections of the writes in flight at the deadline:\n%s", logged)
	}
	if !strings.Contains(logged, `"msg":"connector stopped"`) {
		t.Errorf("log lacks the connector stopped line:\n%s", logged)
	}
}
