// Package pipeline runs the consume -> process -> produce -> commit loop of
// the enrich and dedupe stages, with at-least-once delivery: a batch's
// offsets are committed only after everything it produced was acknowledged.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// Processor turns one consumed message into zero or more messages to publish,
// each with its Topic set. An error means the message cannot be processed
// (bad data): the runner sends it to <topic>.dlq and moves on. A panic is
// handled like an error.
type Processor interface {
	Process(ctx context.Context, msg kafka.Message) ([]kafka.Message, error)
}

// ConcurrentProcessor is implemented by a Processor whose Process may run on
// several goroutines at once, each with another message of the batch. The
// runner then processes a batch on GOMAXPROCS goroutines and still publishes
// the outputs in the order of their inputs. A processor that also implements
// BatchCommitter is always called from one goroutine at a time.
type ConcurrentProcessor interface {
	Processor
	// ProcessesConcurrently reports whether Process is safe for concurrent use.
	ProcessesConcurrently() bool
}

// BatchPreparer is implemented by a Processor that can do part of the work
// of a whole batch before Process is called for each of its messages, for
// example on several goroutines. The runner calls PrepareBatch once per
// batch as soon as the batch is fetched, which can be while Process runs
// over the previous batch, so PrepareBatch must only do work that depends
// on the messages alone. A prepared batch may never reach Process, when the
// runner stops or the partitions are revoked first. PrepareBatch must not
// fail: an error belongs to Process, which the runner dead-letters.
type BatchPreparer interface {
	PrepareBatch(ctx context.Context, batch []kafka.Message)
}

// BatchCommitter is implemented by a Processor that keeps state across
// messages, so that its state follows what was really published. After each
// batch it passed to Process, the runner calls exactly one of the two
// methods, from the goroutine that called Process.
type BatchCommitter interface {
	// CommitBatch keeps the state changes made since the last call: every
	// output of the batch was acknowledged.
	CommitBatch()
	// RollbackBatch undoes them: some outputs were dead-lettered after the
	// broker rejected them, or the batch was abandoned because Run is
	// stopping and will be consumed again.
	RollbackBatch()
}

// PartitionRestorer is implemented by a Processor whose state for the
// messages of an input partition can be rebuilt from Kafka, so that the state
// survives restarts and moves with the partition in a rebalance. A Runner
// uses it only with RunnerConfig.TrackAssignments; without it, or in the
// Reader mode, the processor's state stays whatever it holds in memory.
type PartitionRestorer interface {
	// Restore rebuilds the state of the input topic's partition. The runner
	// calls it when the partition is assigned, before passing any message of
	// the partition to Process, and calls it again after a delay when it
	// fails. It may run concurrently with Process on other partitions.
	Restore(ctx context.Context, topic string, partition int) error
	// Release drops the state of the partition after it was revoked. The
	// runner calls it after the last batch of the generation, whether or not
	// Restore succeeded.
	Release(topic string, partition int)
}

// Publisher delivers messages; *sink.Writer implements it. Write returns nil
// only when every message was acknowledged, and a *sink.RejectedError when
// only the messages it lists were refused for good.
type Publisher interface {
	Write(ctx context.Context, msgs ...kafka.Message) error
}

// Runner consumes its topics in a consumer group and runs each message
// through a Processor. Create it with NewRunner.
type Runner struct {
	cfg       RunnerConfig
	reader    kafka.ReaderConfig
	group     kafka.ConsumerGroupConfig
	processor Processor
	restorer  PartitionRestorer // nil unless TrackAssignments is set and the processor implements it
	publisher Publisher
	logger    *slog.Logger
	running   atomic.Bool
	// workers is the number of goroutines that process a batch.
	workers int

	// unrestored is the count of partitions of the current generation whose
	// Restore has not succeeded yet, or -1 between generations.
	unrestored atomic.Int64

	consumed       atomic.Int64
	produced       atomic.Int64
	deadLettered   atomic.Int64
	batches        atomic.Int64
	commitFailures atomic.Int64
}

// RunnerStats are counters since the Runner was created.
type RunnerStats struct {
	// Consumed is the count of messages fetched and processed.
	Consumed int64
	// Produced is the count of output messages acknowledged, dead letters excluded.
	Produced int64
	// DeadLettered is the count of input messages acknowledged on a .dlq topic.
	DeadLettered int64
	// Batches is the count of batches published and committed.
	Batches int64
	// CommitFailures is the count of batches whose offset commit failed;
	// their messages will be consumed again.
	CommitFailures int64
}

// NewRunner validates cfg and returns a Runner that passes every message of
// cfg.Topics to p and publishes the results with w. A nil logger discards logs.
func NewRunner(cfg RunnerConfig, p Processor, w Publisher, logger *slog.Logger) (*Runner, error) {
	cfg.setDefaults()
	errs := cfg.validate()
	if p == nil {
		errs = append(errs, errors.New("processor: required"))
	}
	if w == nil {
		errs = append(errs, errors.New("publisher: required"))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("stage", cfg.Name)

	r := &Runner{cfg: cfg, processor: p, publisher: w, logger: logger, workers: processWorkers(p)}
	r.unrestored.Store(-1)
	if cfg.TrackAssignments {
		r.group = groupConfig(cfg, logger)
		if err := r.group.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("kafka consumer group: %w", err))
		}
		r.restorer, _ = p.(PartitionRestorer)
	} else {
		r.reader = readerConfig(cfg, logger)
		if err := r.reader.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("kafka reader: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid runner config for stage %q: %w", cfg.Name, errors.Join(errs...))
	}
	return r, nil
}

// Stats returns the runner's counters. It is safe to call while Run runs.
func (r *Runner) Stats() RunnerStats {
	return RunnerStats{
		Consumed:       r.consumed.Load(),
		Produced:       r.produced.Load(),
		DeadLettered:   r.deadLettered.Load(),
		Batches:        r.batches.Load(),
		CommitFailures: r.commitFailures.Load(),
	}
}

// Ready reports whether Run is consuming: it has started and, with
// TrackAssignments, it holds a generation whose partitions were all
// restored. It is false during a rebalance. It is safe to call while Run runs.
func (r *Runner) Ready() bool {
	if !r.running.Load() {
		return false
	}
	return !r.cfg.TrackAssignments || r.unrestored.Load() == 0
}

// Run joins the consumer group and repeats until ctx ends: fetch a batch,
// process each message in order, publish all outputs with one Write, then
// commit the batch's offsets. A message the processor fails on goes to
// <topic>.dlq, and so does a message whose output the publisher rejects for
// good. In both cases the partition moves on.
//
// The next batch is fetched, and prepared by a BatchPreparer, while the
// current one is processed, published and committed. A ConcurrentProcessor
// processes the messages of a batch on several goroutines, and its outputs
// are still published in the order of their inputs.
//
// With TrackAssignments set, Run consumes each assigned partition on its own
// and, when the processor implements PartitionRestorer, restores the
// partition's state before its first message is processed (see
// consumeGroup). A rebalance waits for the batch in flight to finish.
//
// When ctx ends, Run abandons the batch in flight (it will be consumed again),
// leaves the group and returns nil. It returns an error when StartCheck fails,
// or when the reader or the publisher fails in a way that no retry fixes. The
// failed batch is not committed. Run can be called again after it returns,
// but not concurrently.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("run stage %s: already running", r.cfg.Name)
	}
	defer r.running.Store(false)

	var err error
	if r.cfg.StartCheck != nil {
		err = r.cfg.StartCheck(ctx)
	}
	if err == nil {
		r.logger.Info("runner started", "group", r.cfg.GroupID, "topics", r.cfg.Topics, "track_assignments", r.cfg.TrackAssignments)
		if r.cfg.TrackAssignments {
			err = r.consumeGroup(ctx)
		} else {
			err = r.consumeReader(ctx)
		}
	}

	stats := r.Stats()
	if err != nil {
		r.logger.Error("runner failed", "error", err, "consumed", stats.Consumed, "produced", stats.Produced, "dead_lettered", stats.DeadLettered)
		return fmt.Errorf("run stage %s: %w", r.cfg.Name, err)
	}
	r.logger.Info("runner stopped", "consumed", stats.Consumed, "produced", stats.Produced, "dead_lettered", stats.DeadLettered)
	return nil
}

// consumeReader runs the batch loop on a kafka-go Reader, which hides the
// partition assignments.
func (r *Runner) consumeReader(ctx context.Context) error {
	reader := kafka.NewReader(r.reader)
	defer func() {
		if err := reader.Close(); err != nil {
			r.logger.Warn("close kafka reader failed", "error", err)
		}
	}()

	commit := func(ctx context.Context, batch []kafka.Message) error {
		return reader.CommitMessages(ctx, batch...)
	}
	batches, stop := r.prefetch(ctx, reader.FetchMessage)
	defer stop()
	for fetched := range batches {
		if ctx.Err() != nil {
			return nil
		}
		if fetched.err != nil {
			return fmt.Errorf("fetch messages: %w", describeJoinError(fetched.err, r.cfg.SessionTimeout))
		}

		if err := r.drainBatch(ctx, fetched.batch, commit); err != nil {
			r.rollback()
			if ctx.Err() != nil {
				r.logger.Info("batch abandoned because the runner is stopping; it will be consumed again", "messages", len(fetched.batch))
				return nil
			}
			return err
		}
	}
	return nil // the prefetch stopped because ctx ended
}

// fetched is a batch, prepared when the processor is a BatchPreparer, or
// the error that ended the fetching.
type fetched struct {
	batch []kafka.Message
	err   error
}

// prefetch fetches and prepares the next batch on its own goroutine while
// the caller processes, publishes and commits the current one, and sends
// each batch on the returned channel. It stops after the first error, which
// it sends too, or when ctx ends, and then closes the channel. stop ends
// the goroutine and waits for it. The batch it may hold is dropped and
// consumed again later, because its offsets were never committed.
func (r *Runner) prefetch(ctx context.Context, fetch func(context.Context) (kafka.Message, error)) (<-chan fetched, func()) {
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan fetched) // unbuffered: one batch is prepared ahead, no more
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(batches)
		for {
			batch, err := r.fetchBatch(ctx, fetch)
			if err == nil {
				if p, ok := r.processor.(BatchPreparer); ok {
					p.PrepareBatch(ctx, batch)
				}
			}
			select {
			case batches <- fetched{batch: batch, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	return batches, func() {
		cancel()
		wg.Wait()
	}
}

// fetchBatch waits for one message, then collects more until the batch is
// full or BatchWait has passed since the first.
func (r *Runner) fetchBatch(ctx context.Context, fetch func(context.Context) (kafka.Message, error)) ([]kafka.Message, error) {
	first, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	batch := make([]kafka.Message, 1, r.cfg.BatchSize)
	batch[0] = first

	waitCtx, cancel := context.WithTimeout(ctx, r.cfg.BatchWait)
	defer cancel()
	for len(batch) < r.cfg.BatchSize {
		msg, err := fetch(waitCtx)
		switch {
		case err == nil:
			batch = append(batch, msg)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case waitCtx.Err() != nil:
			return batch, nil // BatchWait is over
		default:
			return nil, err
		}
	}
	return batch, nil
}

// commitFunc commits the offsets that follow the messages of a batch.
type commitFunc func(ctx context.Context, batch []kafka.Message) error

// handleBatch processes, publishes and commits one batch.
func (r *Runner) handleBatch(ctx context.Context, batch []kafka.Message, commitOffsets commitFunc) error {
	r.consumed.Add(int64(len(batch)))

	outs, err := r.process(ctx, batch)
	if err != nil {
		return err
	}
	complete, err := r.publish(ctx, batch, outs)
	if err != nil {
		return err
	}
	if complete {
		r.commitState()
	} else {
		r.rollback()
	}

	r.commit(ctx, batch, commitOffsets)
	r.batches.Add(1)
	return nil
}

// commit commits the batch's offsets. A failure is logged and counted, not
// returned: the outputs are already written, so the only cost is that the
// batch is consumed again, typically after a rebalance moved its partitions.
func (r *Runner) commit(ctx context.Context, batch []kafka.Message, commitOffsets commitFunc) {
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.CommitTimeout)
	defer cancel()
	if err := commitOffsets(commitCtx, batch); err != nil {
		r.commitFailures.Add(1)
		last := batch[len(batch)-1]
		r.logger.Warn("commit offsets failed; the batch will be consumed again",
			"messages", len(batch), "topic", last.Topic, "partition", last.Partition, "offset", last.Offset, "error", err)
	}
}

func (r *Runner) commitState() {
	if c, ok := r.processor.(BatchCommitter); ok {
		c.CommitBatch()
	}
}

func (r *Runner) rollback() {
	if c, ok := r.processor.(BatchCommitter); ok {
		c.RollbackBatch()
	}
}

// output is a message to publish and the input it came from.
type output struct {
	msg   kafka.Message
	input int // index in the batch
	// deadLetter is set when msg carries the input to its .dlq topic.
	deadLetter bool
	// valueOmitted is set on a dead letter sent without the input's value.
	valueOmitted bool
}

// processWorkers returns the number of goroutines that process a batch:
// GOMAXPROCS for a ConcurrentProcessor without batch state, else 1.
func processWorkers(p Processor) int {
	if _, stateful := p.(BatchCommitter); stateful {
		return 1
	}
	if c, ok := p.(ConcurrentProcessor); ok && c.ProcessesConcurrently() {
		return runtime.GOMAXPROCS(0)
	}
	return 1
}

// processed is the outcome of Process for one message of a batch.
type processed struct {
	outputs []kafka.Message
	err     error
}

// process runs the processor over the batch and returns the outputs in the
// order of their inputs. It returns an error only when ctx ended.
func (r *Runner) process(ctx context.Context, batch []kafka.Message) ([]output, error) {
	results := make([]processed, len(batch))
	r.processAll(ctx, batch, results)

	outs := make([]output, 0, len(batch))
	for i := range batch {
		msg := &batch[i]
		if err := results[i].err; err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.logger.Warn("processing failed; sending the message to the dead-letter topic",
				"topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "error", err)
			outs = append(outs, output{msg: deadLetter(msg, r.cfg.Name, err), input: i, deadLetter: true})
			continue
		}
		for _, out := range results[i].outputs {
			outs = append(outs, output{msg: out, input: i})
		}
	}
	return outs, nil
}

// processAll fills results[i] with the outcome of batch[i], on r.workers
// goroutines that take the messages in turn.
func (r *Runner) processAll(ctx context.Context, batch []kafka.Message, results []processed) {
	workers := min(r.workers, len(batch))
	if workers <= 1 {
		for i := range batch {
			results[i].outputs, results[i].err = r.processOne(ctx, batch[i])
		}
		return
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batch) {
					return
				}
				results[i].outputs, results[i].err = r.processOne(ctx, batch[i])
			}
		})
	}
	wg.Wait()
}

// processOne calls the processor, turning a panic into an error, and checks
// that every output names its topic.
func (r *Runner) processOne(ctx context.Context, msg kafka.Message) (produced []kafka.Message, err error) {
	defer func() {
		if v := recover(); v != nil {
			r.logger.Error("processor panicked", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset,
				"panic", v, "stack", string(debug.Stack()))
			produced, err = nil, fmt.Errorf("processor panicked: %v", v)
		}
	}()

	produced, err = r.processor.Process(ctx, msg)
	if err != nil {
		return nil, err
	}
	for i := range produced {
		if produced[i].Topic == "" {
			return nil, fmt.Errorf("processor output %d has no topic", i)
		}
	}
	return produced, nil
}

// drainBatch handles a batch that was fetched before ctx ended. When ctx ends
// while the batch is in flight, the batch still gets DrainTimeout to be
// published and committed, so that a clean stop leaves nothing to consume
// again. A batch not done by then is abandoned.
func (r *Runner) drainBatch(ctx context.Context, batch []kafka.Message, commit func(context.Context, []kafka.Message) error) error {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()

	var (
		mu    sync.Mutex
		timer *time.Timer
	)
	stopWatching := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(r.cfg.DrainTimeout, cancel)
	})
	defer func() {
		stopWatching()
		mu.Lock()
		defer mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
	}()

	return r.handleBatch(work, batch, commit)
}
