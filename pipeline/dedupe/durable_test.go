package dedupe_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/sink"
)

// newDurableBroker starts a broker whose dedupe input and output topics are
// co-partitioned.
func newDurableBroker(t *testing.T) []string {
	t.Helper()
	return kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: assetsIn, Partitions: 3},
		embeddedkafka.Topic{Name: assetsOut, Partitions: 3, Compacted: true},
		embeddedkafka.Topic{Name: assetsIn + ".dlq", Partitions: 1},
	)
}

// instanceConfig sets up one dedupe process of a test.
type instanceConfig struct {
	group  string // default "dedupe"
	resync time.Duration
	now    func() time.Time
	// killAtWrite > 0 stops the runner at that publisher write, as a process
	// killed there would stop: no commit and no further write.
	killAtWrite int
	// killAfterWrite places the kill after the write was acknowledged
	// instead of before it.
	killAfterWrite bool
	// wrap, when set, wraps the stage before it goes to the runner.
	wrap func(*dedupe.Stage) pipeline.Processor
	// batchWait is the runner's BatchWait; default 5ms.
	batchWait time.Duration
	// fingerprint replaces the test fingerprint when set.
	fingerprint func(string, kafka.Message) (string, error)
	// assets turns on the asset lifecycle when set.
	assets *dedupe.AssetConfig
}

// instance is a running dedupe process: a stage, its group-mode runner and
// its own writer.
type instance struct {
	stage  *dedupe.Stage
	runner *pipeline.Runner
	writer *sink.Writer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startInstance(t *testing.T, brokers []string, cfg instanceConfig) *instance {
	t.Helper()
	if cfg.group == "" {
		cfg.group = "dedupe"
	}
	if cfg.batchWait == 0 {
		cfg.batchWait = 5 * time.Millisecond
	}
	if cfg.fingerprint == nil {
		cfg.fingerprint = fingerprint
	}
	stage, err := dedupe.New(dedupe.Config{
		Routes:         map[string]string{assetsIn: assetsOut},
		Fingerprint:    cfg.fingerprint,
		ResyncInterval: cfg.resync,
		Now:            cfg.now,
		Brokers:        brokers,
		Assets:         cfg.assets,
	}, nil)
	if err != nil {
		t.Fatalf("dedupe.New: %v", err)
	}
	writer, err := sink.NewWriter(sink.Config{Brokers: brokers, Balancer: pipeline.PartitionBalancer(assetsOut)}, nil)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var processor pipeline.Processor = stage
	if cfg.wrap != nil {
		processor = cfg.wrap(stage)
	}
	var publisher pipeline.Publisher = writer
	if cfg.killAtWrite > 0 {
		publisher = &killingPublisher{Publisher: writer, at: int64(cfg.killAtWrite), after: cfg.killAfterWrite, kill: cancel}
	}
	runner, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name: "dedupe", Brokers: brokers, GroupID: cfg.group, Topics: []string{assetsIn},
		BatchSize: 4, BatchWait: cfg.batchWait, MaxWait: 100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		RestoreBackoff:   100 * time.Millisecond,
		TrackAssignments: true,
		StartCheck:       stage.CheckPartitions,
	}, processor, publisher, nil)
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}

	in := &instance{stage: stage, runner: runner, writer: writer, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- runner.Run(ctx) }()
	t.Cleanup(func() { in.stop(t) })
	return in
}

// stop cancels the runner, waits for Run and closes the writer. Calling it
// again does nothing.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.once.Do(func() {
		in.cancel()
		select {
		case err := <-in.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(kafkatest.Timeout):
			t.Fatalf("Run did not return within %s of the stop", kafkatest.Timeout)
		}
		if err := in.writer.Close(); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})
}

// stopped reports whether Run has returned, without waiting.
func (in *instance) stopped() bool {
	select {
	case err := <-in.done:
		in.done <- err // keep it for stop
		return true
	default:
		return false
	}
}

// killingPublisher cancels the runner at its at-th write, before or after
// the write, and then fails the write, so that the batch is neither
// committed nor rolled forward.
type killingPublisher struct {
	pipeline.Publisher
	at     int64
	after  bool
	kill   context.CancelFunc
	writes atomic.Int64
}

func (p *killingPublisher) Write(ctx context.Context, msgs ...kafka.Message) error {
	if p.writes.Add(1) != p.at {
		return p.Publisher.Write(ctx, msgs...)
	}
	if p.after {
		if err := p.Publisher.Write(ctx, msgs...); err != nil {
			return err
		}
	}
	p.kill()
	return errors.New("process killed")
}

// waitCaughtUp waits until the group has committed every input message.
func waitCaughtUp(t *testing.T, brokers []string, group string) {
	t.Helper()
	kafkatest.WaitFor(t, func() bool {
		lag, err := pipeline.GroupLag(context.Background(), brokers, group, []string{assetsIn})
		return err == nil && lag == 0
	})
}

// waitStopped waits until Run of in returned by itself.
func waitStopped(t *testing.T, in *instance) {
	t.Helper()
	kafkatest.WaitFor(t, in.stopped)
}

// produceValues produces one record per key=value pair to the input, in
// order.
func produceValues(t *testing.T, brokers []string, pairs ...[2]string) {
	t.Helper()
	msgs := make([]kafka.Message, len(pairs))
	for i, p := range pairs {
		msgs[i] = record(assetsIn, p[0], p[1])
	}
	kafkatest.Produce(t, brokers, msgs...)
}

// checkOutput checks the output topic against the latest value produced per
// key: every key's last output has the latest content, each output record is
// on its key's input partition, no (key, ce_id) pair repeats, and no key has
// the same content twice in a row.
func checkOutput(t *testing.T, brokers []string, latest map[string]string) {
	t.Helper()
	inputPartition := make(map[string]int)
	for _, m := range kafkatest.ReadAll(t, brokers, assetsIn) {
		inputPartition[string(m.Key)] = m.Partition
	}

	ids := make(map[string]bool)
	contents := make(map[string][]string) // key -> content of each output, in order
	for _, m := range kafkatest.ReadAll(t, brokers, assetsOut) {
		key := string(m.Key)
		id, _ := sink.HeaderValue(m.Headers, sink.HeaderID)
		if ids[key+" "+id] {
			t.Errorf("key %s: ce_id %q written twice", key, id)
		}
		ids[key+" "+id] = true
		if want := inputPartition[key]; m.Partition != want {
			t.Errorf("key %s: output on partition %d, want its input partition %d", key, m.Partition, want)
		}

		content, _ := fingerprint(assetsIn, m)
		if seq := contents[key]; len(seq) > 0 && seq[len(seq)-1] == content {
			t.Errorf("key %s: content %q written twice in a row (offset %d)", key, content, m.Offset)
		}
		contents[key] = append(contents[key], content)
	}

	for key, value := range latest {
		want, _, _ := strings.Cut(value, "|")
		seq := contents[key]
		if len(seq) == 0 {
			t.Errorf("key %s: nothing on the output, want content %q", key, want)
			continue
		}
		if got := seq[len(seq)-1]; got != want {
			t.Errorf("key %s: last output content %q, want %q", key, got, want)
		}
	}
}

func keyName(i int) string { return fmt.Sprintf("k%02d", i) }

func TestDurableRestartReplaysWithoutDuplicates(t *testing.T) {
	brokers := newDurableBroker(t)
	const keys = 12
	latest := make(map[string]string)
	var pairs [][2]string
	for round, values := range [][2]string{{"a", "a"}, {"b", "a"}, {"b", "b"}} { // values of even and odd keys
		for i := range keys {
			value := fmt.Sprintf("%s|t%d", values[i%2], round)
			pairs = append(pairs, [2]string{keyName(i), value})
			latest[keyName(i)] = value
		}
	}
	produceValues(t, brokers, pairs...)

	first := startInstance(t, brokers, instanceConfig{killAtWrite: 2, killAfterWrite: true})
	waitStopped(t, first)
	first.stop(t)

	second := startInstance(t, brokers, instanceConfig{})
	waitCaughtUp(t, brokers, "dedupe")
	second.stop(t)

	checkOutput(t, brokers, latest)
	if got := second.stage.Stats().Restored; got == 0 {
		t.Error("second instance restored no output record")
	}
	if in := first.stage.Stats().In + second.stage.Stats().In; in <= int64(len(pairs)) {
		t.Errorf("instances processed %d records in all, want more than the %d produced (a replay)", in, len(pairs))
	}
}

func TestDurableReplayKeepsNewerOutput(t *testing.T) {
	brokers := newDurableBroker(t)
	// One batch holds both versions of the key, because the runner waits
	// up to 2s for a batch of 4. The first instance dies after writing it.
	produceValues(t, brokers, [2]string{"a", "v1|t1"}, [2]string{"a", "v2|t2"})
	first := startInstance(t, brokers, instanceConfig{killAtWrite: 1, killAfterWrite: true, batchWait: 2 * time.Second})
	waitStopped(t, first)
	first.stop(t)
	if got := len(kafkatest.ReadAll(t, brokers, assetsOut)); got != 2 {
		t.Fatalf("%d outputs after the first instance, want 2", got)
	}

	second := startInstance(t, brokers, instanceConfig{})
	waitCaughtUp(t, brokers, "dedupe")
	second.stop(t)

	checkOutput(t, brokers, map[string]string{"a": "v2|t2"})
	if got := len(kafkatest.ReadAll(t, brokers, assetsOut)); got != 2 {
		t.Errorf("%d outputs after the replay, want still 2", got)
	}
	if got := second.stage.Stats().Unchanged; got != 2 {
		t.Errorf("second instance dropped %d replayed records, want 2", got)
	}
}

// gatedStage holds Restore until gate is closed.
type gatedStage struct {
	*dedupe.Stage
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedStage) Restore(ctx context.Context, topic string, partition int) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Stage.Restore(ctx, topic, partition)
}

func TestDurableNotReadyUntilRestored(t *testing.T) {
	brokers := newDurableBroker(t)
	produceValues(t, brokers, [2]string{"a", "a1"}, [2]string{"b", "b1"}, [2]string{"c", "c1"})

	gated := &gatedStage{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	in := startInstance(t, brokers, instanceConfig{wrap: func(s *dedupe.Stage) pipeline.Processor {
		gated.Stage = s
		return gated
	}})
	if in.runner.Ready() {
		t.Error("runner ready before it joined the group")
	}

	select {
	case <-gated.entered:
	case <-time.After(kafkatest.Timeout):
		t.Fatalf("Restore not called within %s", kafkatest.Timeout)
	}
	if in.runner.Ready() {
		t.Error("runner ready while a restore is pending")
	}
	if got := in.runner.Stats().Consumed; got != 0 {
		t.Errorf("runner consumed %d messages before the restore", got)
	}

	close(gated.gate)
	kafkatest.WaitFor(t, in.runner.Ready)
	waitCaughtUp(t, brokers, "dedupe")
	in.stop(t)
	if in.runner.Ready() {
		t.Error("runner ready after it stopped")
	}
}

func TestDurableRebalanceKeepsOutputExact(t *testing.T) {
	brokers := newDurableBroker(t)
	const keys = 30
	latest := make(map[string]string)
	round := func(n int, change func(i int) bool) {
		t.Helper()
		var pairs [][2]string
		for i := range keys {
			content := fmt.Sprintf("c%d", n)
			if !change(i) {
				content, _, _ = strings.Cut(latest[keyName(i)], "|")
			}
			value := fmt.Sprintf("%s|t%d", content, n)
			pairs = append(pairs, [2]string{keyName(i), value})
			latest[keyName(i)] = value
		}
		produceValues(t, brokers, pairs...)
	}

	a := startInstance(t, brokers, instanceConfig{})
	round(1, func(int) bool { return true })
	waitCaughtUp(t, brokers, "dedupe")
	restoredByA := a.stage.Stats().Restored

	b := startInstance(t, brokers, instanceConfig{})
	kafkatest.WaitFor(t, func() bool {
		return b.stage.Stats().Restored > 0 && b.runner.Ready() && a.runner.Ready()
	})
	round(2, func(i int) bool { return i%3 == 0 })
	waitCaughtUp(t, brokers, "dedupe")

	b.stop(t)
	kafkatest.WaitFor(t, func() bool {
		return a.stage.Stats().Restored > restoredByA && a.runner.Ready()
	})
	round(3, func(i int) bool { return i%2 == 0 })
	waitCaughtUp(t, brokers, "dedupe")
	a.stop(t)

	checkOutput(t, brokers, latest)
	if got := b.runner.Stats().Consumed; got == 0 {
		t.Error("second member consumed nothing; the rebalance gave it no partition")
	}
}

// testClock is a settable time source.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestDurableResyncReemitsUnchangedRecord(t *testing.T) {
	brokers := newDurableBroker(t)
	clock := &testClock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	config := instanceConfig{resync: time.Hour, now: clock.Now}
	outputs := func() []kafka.Message {
		t.Helper()
		return kafkatest.ReadAll(t, brokers, assetsOut)
	}

	first := startInstance(t, brokers, config)
	produceValues(t, brokers, [2]string{"a", "v1|t1"})
	waitCaughtUp(t, brokers, "dedupe")
	clock.Advance(30 * time.Minute)
	produceValues(t, brokers, [2]string{"a", "v1|t2"})
	waitCaughtUp(t, brokers, "dedupe")
	if got := len(outputs()); got != 1 {
		t.Fatalf("%d outputs before the resync interval passed, want 1", got)
	}

	clock.Advance(45 * time.Minute) // 1h15m after the first emit
	produceValues(t, brokers, [2]string{"a", "v1|t3"})
	waitCaughtUp(t, brokers, "dedupe")
	first.stop(t)

	out := outputs()
	if len(out) != 2 {
		t.Fatalf("%d outputs after the resync interval passed, want 2", len(out))
	}
	epoch := clock.Now().UnixNano() / int64(time.Hour)
	wantID := fmt.Sprintf("a#v1|t3#resync-%d", epoch)
	if id, _ := sink.HeaderValue(out[1].Headers, sink.HeaderID); id != wantID {
		t.Errorf("re-emitted ce_id %q, want %q", id, wantID)
	}
	if !out[1].Time.Equal(clock.Now()) {
		t.Errorf("re-emitted record timestamp %s, want the emit time %s", out[1].Time, clock.Now())
	}
	if got := first.stage.Stats().Resynced; got != 1 {
		t.Errorf("stage resynced %d records, want 1", got)
	}

	// A new instance restores the last emit time from the record timestamp:
	// 30 minutes later nothing is due, 70 minutes later the record is.
	second := startInstance(t, brokers, config)
	clock.Advance(30 * time.Minute)
	produceValues(t, brokers, [2]string{"a", "v1|t4"})
	waitCaughtUp(t, brokers, "dedupe")
	if got := len(outputs()); got != 2 {
		t.Errorf("%d outputs 30 minutes after the restored emit time, want 2", got)
	}
	clock.Advance(40 * time.Minute)
	produceValues(t, brokers, [2]string{"a", "v1|t5"})
	waitCaughtUp(t, brokers, "dedupe")
	second.stop(t)
	if got := len(outputs()); got != 3 {
		t.Errorf("%d outputs 70 minutes after the restored emit time, want 3", got)
	}
}

func TestDurableConservationUnderHardStops(t *testing.T) {
	brokers := newDurableBroker(t)
	const (
		keys   = 20
		rounds = 5
	)
	rng := rand.New(rand.NewPCG(4, 2))
	latest := make(map[string]string)
	seq := 0
	changes := func(n int) {
		t.Helper()
		pairs := make([][2]string, n)
		for i := range pairs {
			key := keyName(rng.IntN(keys))
			seq++
			// Three contents per key, so that many records are unchanged.
			value := fmt.Sprintf("c%d|t%d", rng.IntN(3), seq)
			pairs[i] = [2]string{key, value}
			latest[key] = value
		}
		produceValues(t, brokers, pairs...)
	}

	for i := range keys { // every key present from the start
		seq++
		latest[keyName(i)] = fmt.Sprintf("c0|t%d", seq)
		produceValues(t, brokers, [2]string{keyName(i), latest[keyName(i)]})
	}
	for round := range rounds {
		changes(15)
		in := startInstance(t, brokers, instanceConfig{killAtWrite: 1 + rng.IntN(4), killAfterWrite: rng.IntN(2) == 0})
		changes(15)
		kafkatest.WaitFor(t, func() bool {
			if in.stopped() {
				return true
			}
			lag, err := pipeline.GroupLag(context.Background(), brokers, "dedupe", []string{assetsIn})
			return err == nil && lag == 0
		})
		in.stop(t)
		t.Logf("round %d: consumed %d, produced %d", round, in.runner.Stats().Consumed, in.runner.Stats().Produced)
	}

	final := startInstance(t, brokers, instanceConfig{})
	waitCaughtUp(t, brokers, "dedupe")
	final.stop(t)
	checkOutput(t, brokers, latest)
}

func TestCheckPartitionsNamesMismatch(t *testing.T) {
	brokers := kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: assetsIn, Partitions: 3},
		embeddedkafka.Topic{Name: assetsOut, Partitions: 2},
	)
	stage, err := dedupe.New(dedupe.Config{Routes: map[string]string{assetsIn: assetsOut}, Fingerprint: fingerprint, Brokers: brokers}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()

	err = stage.CheckPartitions(ctx)
	if err == nil {
		t.Fatal("CheckPartitions accepted 3 input and 2 output partitions")
	}
	want := "partition count of output topic oversoc.assets is 2 but that of its input oversoc.normalized.assets is 3"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

// TestRestoreIgnoresOffsetsOfOtherInput restores output records that were
// forwarded from an earlier input topic of the same name, deleted and
// recreated since. The new input already has more records than the old
// offsets in the output headers, so only the key of the record at such an
// offset shows that the offsets belong to another log.
func TestRestoreIgnoresOffsetsOfOtherInput(t *testing.T) {
	const oldIn = "old.normalized.assets"
	brokers := kafkatest.NewBroker(t,
		embeddedkafka.Topic{Name: oldIn, Partitions: 1},
		embeddedkafka.Topic{Name: assetsIn, Partitions: 1},
		embeddedkafka.Topic{Name: assetsOut, Partitions: 1, Compacted: true},
	)
	ctx, cancel := context.WithTimeout(context.Background(), kafkatest.Timeout)
	defer cancel()

	// The old input forwarded keys a, b and c from offsets 0, 1 and 2.
	oldStage, err := dedupe.New(dedupe.Config{Routes: map[string]string{oldIn: assetsOut}, Fingerprint: fingerprint, Brokers: brokers}, nil)
	if err != nil {
		t.Fatalf("dedupe.New: %v", err)
	}
	var outputs []kafka.Message
	for offset, key := range []string{"a", "b", "c"} {
		in := kafka.Message{Topic: oldIn, Partition: 0, Offset: int64(offset), Key: []byte(key), Value: []byte("old|t0")}
		out, err := oldStage.Process(ctx, in)
		if err != nil || len(out) != 1 {
			t.Fatalf("old stage Process(%s) = %d outputs, %v; want 1 output", key, len(out), err)
		}
		outputs = append(outputs, out...)
	}
	kafkatest.Produce(t, brokers, outputs...)

	// The new input has a new content of c at offset 1, before c's old offset 2.
	produceValues(t, brokers, [2]string{"x", "new|t1"}, [2]string{"c", "new|t1"}, [2]string{"y", "new|t1"}, [2]string{"z", "new|t1"})
	inputs := kafkatest.ReadAll(t, brokers, assetsIn)
	if len(inputs) != 4 || string(inputs[1].Key) != "c" {
		t.Fatalf("new input contains %d records, want 4 with c at offset 1", len(inputs))
	}

	stage, err := dedupe.New(dedupe.Config{Routes: map[string]string{assetsIn: assetsOut}, Fingerprint: fingerprint, Brokers: brokers}, nil)
	if err != nil {
		t.Fatalf("dedupe.New: %v", err)
	}
	if err := stage.Restore(ctx, assetsIn, 0); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	out, err := stage.Process(ctx, inputs[1])
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(out) != 1 {
		t.Errorf("new content of c at offset 1 gave %d outputs, want 1", len(out))
	}
}
