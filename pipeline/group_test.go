package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
)

func groupRunnerConfig(brokers []string) pipeline.RunnerConfig {
	cfg := runnerConfig(brokers)
	cfg.TrackAssignments = true
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.RestoreBackoff = 50 * time.Millisecond
	return cfg
}

// restoringUpper is upper with a PartitionRestorer that records its calls and
// fails the first Restore of each partition.
type restoringUpper struct {
	upper
	mu       sync.Mutex
	calls    []string // "restore in/0", "release in/0", "process in/0"
	failures map[int]bool
}

func (u *restoringUpper) log(call string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, call)
}

func (u *restoringUpper) Restore(_ context.Context, topic string, partition int) error {
	u.mu.Lock()
	failed := u.failures[partition]
	u.failures[partition] = true
	u.mu.Unlock()
	if !failed {
		return errors.New("broker unavailable")
	}
	u.log(fmt.Sprintf("restore %s/%d", topic, partition))
	return nil
}

func (u *restoringUpper) Release(topic string, partition int) {
	u.log(fmt.Sprintf("release %s/%d", topic, partition))
}

func (u *restoringUpper) Process(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	u.log(fmt.Sprintf("process %s/%d", msg.Topic, msg.Partition))
	return u.upper.Process(ctx, msg)
}

func (u *restoringUpper) Calls() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.calls)
}

func TestGroupRunnerRestoresBeforeProcessing(t *testing.T) {
	brokers := newBroker(t, 3)
	sent := keyed(7, append(sequence(30), "poison")...)
	kafkatest.Produce(t, brokers, sent...)
	processor := &restoringUpper{failures: make(map[int]bool)}

	r := startRunner(t, groupRunnerConfig(brokers), processor, newWriter(t, brokers))
	waitForLag(t, brokers, 0)
	if !r.Ready() {
		t.Error("runner not ready after it consumed everything")
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if got := len(kafkatest.ReadAll(t, brokers, outTopic)); got != 30 {
		t.Errorf("output holds %d messages, want 30", got)
	}
	if got := len(kafkatest.ReadAll(t, brokers, dlqTopic)); got != 1 {
		t.Errorf("dead-letter topic holds %d messages, want 1", got)
	}

	calls := processor.Calls()
	for p := range 3 {
		partition := fmt.Sprintf("%s/%d", inTopic, p)
		restore := slices.Index(calls, "restore "+partition)
		process := slices.Index(calls, "process "+partition)
		release := slices.Index(calls, "release "+partition)
		if restore < 0 || process < 0 || release < 0 {
			t.Errorf("partition %s: restore at %d, first process at %d, release at %d; want all three", partition, restore, process, release)
			continue
		}
		if restore > process || slices.Contains(calls[release:], "process "+partition) {
			t.Errorf("partition %s: calls out of order: %v", partition, calls)
		}
	}
}

func TestGroupRunnerStopsOnPublishFailure(t *testing.T) {
	brokers := newBroker(t, 1)
	kafkatest.Produce(t, brokers, keyed(1, "a")...)
	cause := errors.New("SASL authentication failed")

	r := startRunner(t, groupRunnerConfig(brokers), &upper{}, failingPublisher{err: cause})
	err := r.wait(t)

	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "run stage upper") {
		t.Errorf("Run error %v, want the publish error wrapped with the stage", err)
	}
	if lag := lagOf(t, brokers); lag != 1 {
		t.Errorf("lag %d, want 1 (nothing committed)", lag)
	}
}

func TestRunnerStopsOnStartCheckFailure(t *testing.T) {
	brokers := newBroker(t, 1)
	cfg := groupRunnerConfig(brokers)
	cause := errors.New("topics not co-partitioned")
	cfg.StartCheck = func(context.Context) error { return cause }

	r := startRunner(t, cfg, &upper{}, newWriter(t, brokers))
	if err := r.wait(t); !errors.Is(err, cause) {
		t.Errorf("Run error %v, want the start check's error", err)
	}
}

func TestPartitionBalancer(t *testing.T) {
	balancer := pipeline.PartitionBalancer("out")
	partitions := []int{0, 1, 2, 3}

	for p := range partitions {
		msg := kafka.Message{Topic: "out", Partition: p, Key: []byte("same key")}
		if got := balancer.Balance(msg, partitions...); got != p {
			t.Errorf("message for partition %d balanced to %d", p, got)
		}
	}

	var hash kafka.Murmur2Balancer
	for _, key := range []string{"a", "b", "c", "d", "e"} {
		msg := kafka.Message{Topic: "other", Partition: 3, Key: []byte(key)}
		if got, want := balancer.Balance(msg, partitions...), hash.Balance(msg, partitions...); got != want {
			t.Errorf("key %s of another topic balanced to %d, want the murmur2 partition %d", key, got, want)
		}
	}
}

// TestRunnerStopsOnInvalidSessionTimeout joins with a session timeout below
// the broker's group.min.session.timeout.ms (6s in kfake, as in Kafka). The
// join can never succeed, so Run must return an error that names the setting
// instead of failing late or retrying forever.
func TestRunnerStopsOnInvalidSessionTimeout(t *testing.T) {
	for _, mode := range runnerModes() {
		t.Run(mode.name, func(t *testing.T) {
			brokers := newBroker(t, 1)
			cfg := mode.config(brokers)
			cfg.SessionTimeout, cfg.HeartbeatInterval = 2*time.Second, 0

			err := startRunner(t, cfg, &upper{}, newWriter(t, brokers)).wait(t)

			if !errors.Is(err, kafka.InvalidSessionTimeout) {
				t.Errorf("Run error %v, want one wrapping kafka.InvalidSessionTimeout", err)
			}
			if err == nil || !strings.Contains(err.Error(), "KAFKA_GROUP_SESSION_TIMEOUT") {
				t.Errorf("Run error %v, want one naming KAFKA_GROUP_SESSION_TIMEOUT", err)
			}
		})
	}
}
