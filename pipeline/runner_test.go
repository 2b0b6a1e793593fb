package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/sink"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	inTopic  = "in"
	outTopic = "out"
	dlqTopic = "in.dlq"
	group    = "test-stage"
)

// upper is a processor that copies each message to outTopic with its value
// in upper case. It fails on the value "poison" and on values over 1000
// bytes, panics on "panic" and returns an output too large to publish for
// "huge".
type upper struct {
	mu   sync.Mutex
	seen []string // values, in processing order
}

func (u *upper) Process(_ context.Context, msg kafka.Message) ([]kafka.Message, error) {
	u.mu.Lock()
	u.seen = append(u.seen, string(msg.Value))
	u.mu.Unlock()

	if len(msg.Value) > 1000 {
		return nil, errors.New("value too long")
	}
	switch string(msg.Value) {
	case "poison":
		return nil, errors.New("value is poison")
	case "panic":
		panic("value is panic")
	case "huge":
		return []kafka.Message{{Topic: outTopic, Key: msg.Key, Value: make([]byte, 2<<20)}}, nil
	}
	out := kafka.Message{Topic: outTopic, Key: msg.Key, Value: bytes.ToUpper(msg.Value), Headers: msg.Headers}
	return []kafka.Message{out}, nil
}

func (u *upper) Seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// newBroker starts a broker with the input, output and dead-letter topics.
func newBroker(t *testing.T, partitions int) []string {
	t.Helper()
	return kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: inTopic, Partitions: partitions},
		embeddedkafka.Topic{Name: outTopic, Partitions: partitions},
		embeddedkafka.Topic{Name: dlqTopic, Partitions: 1},
	)
}

func newWriter(t *testing.T, brokers []string) *sink.Writer {
	t.Helper()
	w, err := sink.NewWriter(sink.Config{Brokers: brokers, MissingTopicTimeout: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func runnerConfig(brokers []string) pipeline.RunnerConfig {
	return pipeline.RunnerConfig{
		Name:      "upper",
		Brokers:   brokers,
		GroupID:   group,
		Topics:    []string{inTopic},
		BatchSize: 50,
		BatchWait: 5 * time.Millisecond,
	}
}

// runningRunner is a Runner whose Run runs in a goroutine.
type runningRunner struct {
	*pipeline.Runner
	cancel context.CancelFunc
	done   chan error
}

// startRunner starts Run and stops it when the test ends, unless the test
// stopped it first.
func startRunner(t *testing.T, cfg pipeline.RunnerConfig, p pipeline.Processor, w pipeline.Publisher) *runningRunner {
	t.Helper()
	runner, err := pipeline.NewRunner(cfg, p, w, nil)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningRunner{Runner: runner, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- runner.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns its error; later calls return nil.
func (r *runningRunner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(kafkatest.Timeout):
		t.Fatal("Run did not return after its context was canceled")
		return nil
	}
}

// wait returns Run's error once it returns by itself.
func (r *runningRunner) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		close(r.done)
		return err
	case <-time.After(kafkatest.Timeout):
		t.Fatal("Run did not return")
		return nil
	}
}

func waitForLag(t *testing.T, brokers []string, want int64) {
	t.Helper()
	var lag int64
	var err error
	kafkatest.WaitFor(t, func() bool {
		lag, err = pipeline.GroupLag(context.Background(), brokers, group, []string{inTopic})
		return err == nil && lag == want
	})
}

func lagOf(t *testing.T, brokers []string) int64 {
	t.Helper()
	lag, err := pipeline.GroupLag(context.Background(), brokers, group, []string{inTopic})
	if err != nil {
		t.Fatalf("GroupLag: %v", err)
	}
	return lag
}

// keyed returns messages to inTopic with the given values, on keys k0..k(keys-1) in turn.
func keyed(keys int, values ...string) []kafka.Message {
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{
			Topic:   inTopic,
			Key:     fmt.Appendf(nil, "k%d", i%keys),
			Value:   []byte(v),
			Headers: []kafka.Header{{Key: "ce_id", Value: fmt.Appendf(nil, "id-%d", i)}},
		}
	}
	return msgs
}

func sequence(n int) []string {
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("v%03d", i)
	}
	return values
}

func TestRunnerMovesMessagesAndCommits(t *testing.T) {
	brokers := newBroker(t, 3)
	sent := keyed(7, sequence(120)...)
	kafkatest.Produce(t, brokers, sent...)

	r := startRunner(t, runnerConfig(brokers), &upper{}, newWriter(t, brokers))
	waitForLag(t, brokers, 0)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	got := kafkatest.ReadAll(t, brokers, outTopic)
	if len(got) != len(sent) {
		t.Fatalf("output holds %d messages, want %d", len(got), len(sent))
	}
	byValue := make(map[string]kafka.Message)
	for _, m := range got {
		byValue[string(m.Value)] = m
	}
	for _, in := range sent {
		out, ok := byValue[strings.ToUpper(string(in.Value))]
		if !ok {
			t.Errorf("output of %s missing", in.Value)
			continue
		}
		if !bytes.Equal(out.Key, in.Key) {
			t.Errorf("output of %s has key %s, want %s", in.Value, out.Key, in.Key)
		}
		if id, _ := sink.HeaderValue(out.Headers, "ce_id"); id != string(in.Headers[0].Value) {
			t.Errorf("output of %s has ce_id %q, want %q", in.Value, id, in.Headers[0].Value)
		}
	}

	stats := r.Stats()
	if stats.Consumed != 120 || stats.Produced != 120 || stats.DeadLettered != 0 || stats.Batches == 0 {
		t.Errorf("stats %+v, want 120 consumed and produced, none dead-lettered, some batches", stats)
	}
}

func TestRunnerDeadLettersFailedMessages(t *testing.T) {
	brokers := newBroker(t, 2)
	// All on one key, so one partition: the partition must move past each failure.
	sent := keyed(1, "a", "poison", "b", "panic", "c")
	kafkatest.Produce(t, brokers, sent...)

	r := startRunner(t, runnerConfig(brokers), &upper{}, newWriter(t, brokers))
	waitForLag(t, brokers, 0)

	var outputs []string
	for _, m := range kafkatest.ReadAll(t, brokers, outTopic) {
		outputs = append(outputs, string(m.Value))
	}
	if fmt.Sprint(outputs) != "[A B C]" {
		t.Errorf("outputs %v, want [A B C]", outputs)
	}

	letters := kafkatest.ReadAll(t, brokers, dlqTopic)
	if len(letters) != 2 {
		t.Fatalf("dead-letter topic holds %d messages, want 2", len(letters))
	}
	inputs := kafkatest.ReadAll(t, brokers, inTopic)
	for i, want := range []struct {
		input int
		error string
	}{{1, "value is poison"}, {3, "processor panicked: value is panic"}} {
		letter, input := letters[i], inputs[want.input]
		checkHeader(t, letter, "ce_id", string(input.Headers[0].Value))
		checkHeader(t, letter, pipeline.HeaderDLQError, want.error)
		checkHeader(t, letter, pipeline.HeaderDLQStage, "upper")
		checkHeader(t, letter, pipeline.HeaderDLQTopic, inTopic)
		checkHeader(t, letter, pipeline.HeaderDLQPartition, strconv.Itoa(input.Partition))
		checkHeader(t, letter, pipeline.HeaderDLQOffset, strconv.FormatInt(input.Offset, 10))
		if !bytes.Equal(letter.Key, input.Key) || !bytes.Equal(letter.Value, input.Value) {
			t.Errorf("dead letter %d has key %q value %q, want %q %q", i, letter.Key, letter.Value, input.Key, input.Value)
		}
	}

	if stats := r.Stats(); stats.Consumed != 5 || stats.Produced != 3 || stats.DeadLettered != 2 {
		t.Errorf("stats %+v, want 5 consumed, 3 produced, 2 dead-lettered", stats)
	}
}

func checkHeader(t *testing.T, msg kafka.Message, name, want string) {
	t.Helper()
	if got, ok := sink.HeaderValue(msg.Headers, name); !ok || got != want {
		t.Errorf("message at offset %d: header %s = %q (present %v), want %q", msg.Offset, name, got, ok, want)
	}
}

func TestRunnerDeadLettersRejectedOutputs(t *testing.T) {
	brokers := newBroker(t, 1)
	kafkatest.Produce(t, brokers, keyed(1, "a", "huge", "b")...)

	r := startRunner(t, runnerConfig(brokers), &upper{}, newWriter(t, brokers))
	waitForLag(t, brokers, 0)

	var outputs []string
	for _, m := range kafkatest.ReadAll(t, brokers, outTopic) {
		outputs = append(outputs, string(m.Value))
	}
	if fmt.Sprint(outputs) != "[A B]" {
		t.Errorf("outputs %v, want [A B]", outputs)
	}
	letters := kafkatest.ReadAll(t, brokers, dlqTopic)
	if len(letters) != 1 || string(letters[0].Value) != "huge" {
		t.Fatalf("dead letters %v, want the input huge", letters)
	}
	reason, _ := sink.HeaderValue(letters[0].Headers, pipeline.HeaderDLQError)
	if !strings.Contains(reason, "publish output") || !strings.Contains(reason, "limit") {
		t.Errorf("dlq_error %q does not say that the output was over the size limit", reason)
	}
	if stats := r.Stats(); stats.Produced != 2 || stats.DeadLettered != 1 {
		t.Errorf("stats %+v, want 2 produced and 1 dead-lettered", stats)
	}
}

func TestRunnerDeadLettersLargeInputWithoutValue(t *testing.T) {
	brokers := newBroker(t, 1)
	// The largest input the writer accepts: its dead letter, with the dlq_
	// headers added, is over the limit.
	large := kafka.Message{Topic: inTopic, Key: []byte("k"), Value: bytes.Repeat([]byte("x"), sink.DefaultBatchBytes-64-22-1-1)}
	kafkatest.Produce(t, brokers, large)

	r := startRunner(t, runnerConfig(brokers), &upper{}, newWriter(t, brokers))
	waitForLag(t, brokers, 0)

	letters := kafkatest.ReadAll(t, brokers, dlqTopic)
	if len(letters) != 1 {
		t.Fatalf("dead-letter topic holds %d messages, want 1", len(letters))
	}
	if len(letters[0].Value) != 0 {
		t.Errorf("dead letter has a %d-byte value, want none", len(letters[0].Value))
	}
	reason, _ := sink.HeaderValue(letters[0].Headers, pipeline.HeaderDLQError)
	if !strings.HasPrefix(reason, "value too long; value omitted: ") {
		t.Errorf("dlq_error %q does not give both reasons", reason)
	}
	checkHeader(t, letters[0], pipeline.HeaderDLQOffset, "0")
	if stats := r.Stats(); stats.DeadLettered != 1 {
		t.Errorf("stats %+v, want 1 dead-lettered", stats)
	}
}

func TestRunnerKeepsOrderPerKey(t *testing.T) {
	brokers := newBroker(t, 3)
	const keys = 5
	values := sequence(200)
	for start := 0; start < len(values); start += 40 {
		kafkatest.Produce(t, brokers, keyed(keys, values[start:start+40]...)...)
	}
	cfg := runnerConfig(brokers)
	cfg.BatchSize = 7

	startRunner(t, cfg, &upper{}, newWriter(t, brokers))
	waitForLag(t, brokers, 0)

	last := make(map[string]string)
	for _, m := range kafkatest.ReadAll(t, brokers, outTopic) {
		key, value := string(m.Key), string(m.Value)
		if value <= last[key] {
			t.Errorf("key %s: %s after %s", key, value, last[key])
		}
		last[key] = value
	}
	if len(last) != keys {
		t.Errorf("output has %d keys, want %d", len(last), keys)
	}
}

func TestRunnerRestartSkipsCommittedMessages(t *testing.T) {
	brokers := newBroker(t, 3)
	w := newWriter(t, brokers)
	kafkatest.Produce(t, brokers, keyed(4, "a", "b", "c", "d", "e", "f")...)

	first := startRunner(t, runnerConfig(brokers), &upper{}, w)
	waitForLag(t, brokers, 0)
	if err := first.stop(t); err != nil {
		t.Fatalf("first Run: %v", err)
	}

	kafkatest.Produce(t, brokers, keyed(4, "g", "h")...)
	processor := &upper{}
	startRunner(t, runnerConfig(brokers), processor, w)
	waitForLag(t, brokers, 0)

	seen := processor.Seen()
	slices.Sort(seen)
	if fmt.Sprint(seen) != "[g h]" {
		t.Errorf("second runner processed %v, want only g and h", seen)
	}
	if got := len(kafkatest.ReadAll(t, brokers, outTopic)); got != 8 {
		t.Errorf("output holds %d messages, want 8", got)
	}
}

// blockingPublisher blocks every Write until ctx ends.
type blockingPublisher struct{ called chan struct{} }

func (p *blockingPublisher) Write(ctx context.Context, _ ...kafka.Message) error {
	select {
	case p.called <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return ctx.Err()
}

// committer is a processor that records the runner's CommitBatch and
// RollbackBatch calls.
type committer struct {
	upper
	commits, rollbacks int
}

func (c *committer) CommitBatch()   { c.mu.Lock(); c.commits++; c.mu.Unlock() }
func (c *committer) RollbackBatch() { c.mu.Lock(); c.rollbacks++; c.mu.Unlock() }

func (c *committer) calls() (commits, rollbacks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits, c.rollbacks
}

func TestRunnerAbandonsBatchWhenStopped(t *testing.T) {
	brokers := newBroker(t, 1)
	kafkatest.Produce(t, brokers, keyed(1, "a", "b")...)
	publisher := &blockingPublisher{called: make(chan struct{}, 1)}
	processor := &committer{}

	cfg := runnerConfig(brokers)
	cfg.DrainTimeout = 50 * time.Millisecond // the publisher never finishes
	r := startRunner(t, cfg, processor, publisher)
	select {
	case <-publisher.called:
	case <-time.After(kafkatest.Timeout):
		t.Fatal("runner never published")
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run after cancel: %v, want nil", err)
	}

	if lag := lagOf(t, brokers); lag != 2 {
		t.Errorf("lag %d after an abandoned batch, want 2 (nothing committed)", lag)
	}
	if commits, rollbacks := processor.calls(); commits != 0 || rollbacks != 1 {
		t.Errorf("%d CommitBatch and %d RollbackBatch calls, want 0 and 1", commits, rollbacks)
	}
}

// gatedPublisher holds every Write until the gate opens, then writes through
// the real publisher.
type gatedPublisher struct {
	pipeline.Publisher
	called chan struct{}
	gate   chan struct{}
}

func (p *gatedPublisher) Write(ctx context.Context, msgs ...kafka.Message) error {
	select {
	case p.called <- struct{}{}:
	default:
	}
	select {
	case <-p.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.Publisher.Write(ctx, msgs...)
}

func TestRunnerDrainsBatchWhenStopped(t *testing.T) {
	brokers := newBroker(t, 1)
	kafkatest.Produce(t, brokers, keyed(1, "a", "b")...)
	publisher := &gatedPublisher{Publisher: newWriter(t, brokers), called: make(chan struct{}, 1), gate: make(chan struct{})}
	processor := &committer{}

	r := startRunner(t, runnerConfig(brokers), processor, publisher)
	select {
	case <-publisher.called:
	case <-time.After(kafkatest.Timeout):
		t.Fatal("runner never published")
	}
	// Stop while the batch is in flight, then let its write through: the
	// batch must still be published and committed.
	r.cancel()
	close(publisher.gate)
	if err := r.wait(t); err != nil {
		t.Errorf("Run after cancel: %v, want nil", err)
	}

	if lag := lagOf(t, brokers); lag != 0 {
		t.Errorf("lag %d after a drained batch, want 0", lag)
	}
	if commits, rollbacks := processor.calls(); commits != 1 || rollbacks != 0 {
		t.Errorf("%d CommitBatch and %d RollbackBatch calls, want 1 and 0", commits, rollbacks)
	}
}

func TestRunnerCallsBatchCommitter(t *testing.T) {
	brokers := newBroker(t, 1)
	kafkatest.Produce(t, brokers, keyed(1, "a")...)
	processor := &committer{}
	w := newWriter(t, brokers)

	startRunner(t, runnerConfig(brokers), processor, w)
	waitForLag(t, brokers, 0)
	if commits, rollbacks := processor.calls(); commits != 1 || rollbacks != 0 {
		t.Errorf("after a published batch: %d CommitBatch and %d RollbackBatch calls, want 1 and 0", commits, rollbacks)
	}

	kafkatest.Produce(t, brokers, keyed(1, "huge")...)
	waitForLag(t, brokers, 0)
	if commits, rollbacks := processor.calls(); commits != 1 || rollbacks != 1 {
		t.Errorf("after a rejected output: %d CommitBatch and %d RollbackBatch calls, want 1 and 1", commits, rollbacks)
	}
}

// failingPublisher fails every Write with err.
type failingPublisher struct{ err error }

func (p failingPublisher) Write(context.Context, ...kafka.Message) error { return p.err }

func TestRunnerStopsOnPublishFailure(t *testing.T) {
	brokers := newBroker(t, 1)
	kafkatest.Produce(t, brokers, keyed(1, "a")...)
	cause := errors.New("SASL authentication failed")

	r := startRunner(t, runnerConfig(brokers), &upper{}, failingPublisher{err: cause})
	err := r.wait(t)

	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "run stage upper") {
		t.Errorf("Run error %v, want the publish error wrapped with the stage", err)
	}
	if lag := lagOf(t, brokers); lag != 1 {
		t.Errorf("lag %d, want 1 (nothing committed)", lag)
	}
}

func TestRunnerStopsWhenDeadLetterIsRejected(t *testing.T) {
	brokers := kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: inTopic, Partitions: 1},
		embeddedkafka.Topic{Name: outTopic, Partitions: 1},
	) // no dead-letter topic
	kafkatest.Produce(t, brokers, keyed(1, "poison")...)

	r := startRunner(t, runnerConfig(brokers), &upper{}, newWriter(t, brokers))
	err := r.wait(t)

	if !errors.Is(err, kafka.UnknownTopicOrPartition) || !strings.Contains(err.Error(), "dead letter for in partition 0 offset 0") {
		t.Errorf("Run error %v, want the rejected dead letter named", err)
	}
	if lag := lagOf(t, brokers); lag != 1 {
		t.Errorf("lag %d, want 1 (nothing committed)", lag)
	}
}

func TestRunnerRejectsConcurrentRun(t *testing.T) {
	brokers := newBroker(t, 1)
	kafkatest.Produce(t, brokers, keyed(1, "a")...)
	processor := &upper{}
	r := startRunner(t, runnerConfig(brokers), processor, newWriter(t, brokers))
	kafkatest.WaitFor(t, func() bool { return len(processor.Seen()) == 1 }) // the first Run is running

	err := r.Run(context.Background())

	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: %v, want already running", err)
	}
}

func TestNewRunnerNamesBadSettings(t *testing.T) {
	valid := runnerConfig([]string{"127.0.0.1:9092"})
	tests := []struct {
		name   string
		change func(*pipeline.RunnerConfig)
		want   []string
	}{
		{"empty", func(c *pipeline.RunnerConfig) { *c = pipeline.RunnerConfig{} },
			[]string{"name: required", "brokers: at least one", "group id: required", "topics: at least one"}},
		{"bad broker", func(c *pipeline.RunnerConfig) { c.Brokers = []string{"kafka"} }, []string{`invalid address "kafka"`}},
		{"repeated topic", func(c *pipeline.RunnerConfig) { c.Topics = []string{"a", "a"} }, []string{`repeated topic "a"`}},
		{"negative", func(c *pipeline.RunnerConfig) { c.BatchSize, c.BatchWait, c.CommitTimeout = -1, -1, -1 },
			[]string{"batch size", "batch wait", "commit timeout"}},
		{"heartbeat", func(c *pipeline.RunnerConfig) { c.HeartbeatInterval, c.SessionTimeout = time.Minute, time.Second },
			[]string{"heartbeat interval 1m0s must be shorter than session timeout 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			_, err := pipeline.NewRunner(cfg, &upper{}, failingPublisher{}, nil)
			if err == nil {
				t.Fatal("NewRunner accepted the config")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestNewRunnerRequiresProcessorAndPublisher(t *testing.T) {
	_, err := pipeline.NewRunner(runnerConfig([]string{"127.0.0.1:9092"}), nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "processor: required") || !strings.Contains(err.Error(), "publisher: required") {
		t.Errorf("NewRunner error %v, want processor and publisher named", err)
	}
}

// TestNewRunnerAcceptsShortSessionTimeout sets only a session timeout
// shorter than the default heartbeat interval, as KAFKA_GROUP_SESSION_TIMEOUT
// may. The heartbeat interval must follow it instead of failing the check
// that it is shorter.
func TestNewRunnerAcceptsShortSessionTimeout(t *testing.T) {
	for _, mode := range runnerModes() {
		t.Run(mode.name, func(t *testing.T) {
			cfg := mode.config([]string{"127.0.0.1:9092"})
			cfg.SessionTimeout, cfg.HeartbeatInterval = time.Second, 0

			if _, err := pipeline.NewRunner(cfg, &upper{}, failingPublisher{}, nil); err != nil {
				t.Errorf("NewRunner with a 1s session timeout: %v", err)
			}
		})
	}
}

// concurrentUpper is upper declared safe for concurrent use, so the runner
// processes each batch on several goroutines.
type concurrentUpper struct{ upper }

func (*concurrentUpper) ProcessesConcurrently() bool { return true }

func TestRunnerConcurrentProcessorKeepsOrder(t *testing.T) {
	brokers := newBroker(t, 2)
	// One key, so one partition, whose outputs must keep the input order
	// although the messages of a batch are processed concurrently.
	values := sequence(300)
	values[17], values[150] = "poison", "panic"
	kafkatest.Produce(t, brokers, keyed(1, values...)...)
	cfg := runnerConfig(brokers)
	cfg.BatchSize = 64

	r := startRunner(t, cfg, &concurrentUpper{}, newWriter(t, brokers))
	waitForLag(t, brokers, 0)

	var want []string
	for _, v := range values {
		if v != "poison" && v != "panic" {
			want = append(want, strings.ToUpper(v))
		}
	}
	var got []string
	for _, m := range kafkatest.ReadAll(t, brokers, outTopic) {
		got = append(got, string(m.Value))
	}
	if !slices.Equal(got, want) {
		t.Errorf("outputs %v, want %v", got, want)
	}

	letters := kafkatest.ReadAll(t, brokers, dlqTopic)
	if len(letters) != 2 || string(letters[0].Value) != "poison" || string(letters[1].Value) != "panic" {
		t.Errorf("dead letters %v, want poison then panic", letters)
	}
	if stats := r.Stats(); stats.Consumed != 300 || stats.Produced != 298 || stats.DeadLettered != 2 {
		t.Errorf("stats %+v, want 300 consumed, 298 produced, 2 dead-lettered", stats)
	}
}
