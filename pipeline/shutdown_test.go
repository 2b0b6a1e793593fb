package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
)

// runnerModes are the two ways a Runner consumes: a kafka-go Reader, as
// enrich does, and a kafka-go ConsumerGroup that shows the assignments, as
// dedupe does.
func runnerModes() []struct {
	name   string
	config func([]string) pipeline.RunnerConfig
} {
	return []struct {
		name   string
		config func([]string) pipeline.RunnerConfig
	}{
		{"reader", runnerConfig},
		{"track assignments", groupRunnerConfig},
	}
}

// TestRunnerStopDrainsBatchAndLeavesGroup stops a runner while the write of
// its batch is in flight. The batch must still be published and committed,
// Run must return nil, and the member must have left its group, so that a
// restarted instance need not wait for the session timeout.
func TestRunnerStopDrainsBatchAndLeavesGroup(t *testing.T) {
	for _, mode := range runnerModes() {
		t.Run(mode.name, func(t *testing.T) {
			brokers := newBroker(t, 2)
			kafkatest.Produce(t, brokers, keyed(2, "a", "b", "c", "d")...)
			publisher := &gatedPublisher{Publisher: newWriter(t, brokers), called: make(chan struct{}, 1), gate: make(chan struct{})}
			processor := &committer{}

			r := startRunner(t, mode.config(brokers), processor, publisher)
			waitForMembers(t, brokers, 1)
			select {
			case <-publisher.called:
			case <-time.After(kafkatest.Timeout):
				t.Fatal("runner never published")
			}
			r.cancel()
			close(publisher.gate)
			if err := r.wait(t); err != nil {
				t.Errorf("Run after cancel: %v, want nil", err)
			}

			if members := groupMembers(t, brokers); members != 0 {
				t.Errorf("group has %d members after Run returned, want 0", members)
			}
			if commits, rollbacks := processor.calls(); commits < 1 || rollbacks != 0 {
				t.Errorf("%d CommitBatch and %d RollbackBatch calls, want at least 1 and 0", commits, rollbacks)
			}
			// The batch in flight when Run was stopped was committed; later
			// messages, if any, were never fetched into a batch.
			published := len(kafkatest.ReadAll(t, brokers, outTopic))
			if lag := lagOf(t, brokers); lag != int64(4-published) {
				t.Errorf("lag %d with %d of 4 messages published, want %d", lag, published, 4-published)
			}
			if published == 0 {
				t.Error("nothing published: the batch in flight was abandoned")
			}
		})
	}
}

// groupMembers returns the member count of the test's consumer group.
func groupMembers(t *testing.T, brokers []string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()
	transport := &kafka.Transport{}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}

	resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	if len(resp.Groups) != 1 {
		t.Fatalf("describe group %s: %d groups in the response", group, len(resp.Groups))
	}
	if err := resp.Groups[0].Error; err != nil {
		t.Fatalf("describe group %s: %v", group, err)
	}
	return len(resp.Groups[0].Members)
}

func waitForMembers(t *testing.T, brokers []string, want int) {
	t.Helper()
	kafkatest.WaitFor(t, func() bool { return groupMembers(t, brokers) == want })
}
