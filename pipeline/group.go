package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// assignment is one input partition of a generation and the offset its
// consumption starts at: the group's committed offset, or kafka.FirstOffset
// when the group has none.
type assignment struct {
	topic     string
	partition int
	offset    int64
}

// consumeGroup runs the batch loop on a kafka-go ConsumerGroup, one
// generation at a time, until ctx ends or a batch fails in a way that no retry
// fixes.
//
// In each generation, one goroutine per assigned partition restores the
// partition's state (when the processor is a PartitionRestorer) and then
// fetches the partition from its committed offset. One more goroutine runs
// the batches, so the processor is still called from one goroutine at a time.
// When the generation ends, the batch in flight is finished (or abandoned
// when ctx ends), the goroutines stop, and the state of every partition of
// the generation is released before the group joins the next generation. Messages
// fetched but not yet processed are dropped and consumed again by the next
// owner of their partition.
func (r *Runner) consumeGroup(ctx context.Context) error {
	group, err := kafka.NewConsumerGroup(r.group)
	if err != nil {
		return fmt.Errorf("join consumer group: %w", err)
	}
	// Close ends the current generation, waits for its goroutines and leaves
	// the group.
	defer group.Close()

	runCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	for {
		gen, err := group.Next(runCtx)
		switch {
		case ctx.Err() != nil:
			return nil
		case runCtx.Err() != nil:
			return context.Cause(runCtx)
		case errors.Is(err, kafka.ErrGroupClosed):
			return err
		case errors.Is(err, kafka.InvalidSessionTimeout):
			return describeJoinError(err, r.cfg.SessionTimeout)
		case err != nil:
			// The ConsumerGroup joins again by itself, after a backoff.
			r.logger.Warn("join consumer group failed; retrying", "group", r.cfg.GroupID, "error", err)
			continue
		}
		r.startGeneration(runCtx, fail, gen)
	}
}

// describeJoinError names the session timeout when the broker rejected a
// join because of it, and returns other errors unchanged. The broker accepts
// a session timeout from group.min.session.timeout.ms to
// group.max.session.timeout.ms, 6s and 30m by default in Kafka, so no retry
// of such a join can succeed.
func describeJoinError(err error, sessionTimeout time.Duration) error {
	if !errors.Is(err, kafka.InvalidSessionTimeout) {
		return err
	}
	return fmt.Errorf("join consumer group: the broker rejected the session timeout %s (KAFKA_GROUP_SESSION_TIMEOUT in the connector); "+
		"set it within the broker's group.min.session.timeout.ms and group.max.session.timeout.ms, 6s and 30m by default: %w", sessionTimeout, err)
}

// startGeneration starts the goroutines of one generation and returns. A batch
// failure that no retry fixes cancels runCtx through fail.
func (r *Runner) startGeneration(runCtx context.Context, fail context.CancelCauseFunc, gen *kafka.Generation) {
	assigned := assignments(gen)
	r.unrestored.Store(int64(len(assigned)))
	r.logger.Info("partitions assigned", "generation", gen.ID, "partitions", describe(assigned))

	msgs := make(chan kafka.Message)
	var fetchers sync.WaitGroup
	fetchers.Add(len(assigned))
	for _, a := range assigned {
		gen.Start(func(genCtx context.Context) {
			defer fetchers.Done()
			ctx, cancel := withGeneration(runCtx, genCtx)
			defer cancel()
			r.consumePartition(ctx, a, msgs)
		})
	}

	gen.Start(func(genCtx context.Context) {
		ctx, cancel := withGeneration(runCtx, genCtx)
		err := r.processGeneration(runCtx, ctx, gen, msgs)
		cancel()
		if err != nil {
			// Cancelling runCtx also stops the partition goroutines.
			fail(err)
		}
		fetchers.Wait()

		r.unrestored.Store(-1)
		if r.restorer != nil {
			for _, a := range assigned {
				r.restorer.Release(a.topic, a.partition)
			}
		}
		r.logger.Info("partitions released", "generation", gen.ID, "partitions", describe(assigned))
	})
}

// withGeneration returns a context that ends when ctx or the generation's
// context genCtx ends.
func withGeneration(ctx, genCtx context.Context) (context.Context, context.CancelFunc) {
	merged, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(genCtx, cancel)
	return merged, func() {
		stop()
		cancel()
	}
}

// processGeneration runs batches of the messages that the partition
// goroutines send, and commits their offsets in the generation, until genCtx
// (the generation merged with runCtx) ends. A batch in flight when the
// generation ends is finished, because the group waits for it before the
// rebalance completes, so the partition's next owner restores a state that
// includes its outputs. Only the end of runCtx abandons a batch. It returns
// an error only for a failure that no retry fixes.
func (r *Runner) processGeneration(runCtx, genCtx context.Context, gen *kafka.Generation, msgs <-chan kafka.Message) error {
	fetch := func(ctx context.Context) (kafka.Message, error) {
		select {
		case msg := <-msgs:
			return msg, nil
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		}
	}
	commit := func(_ context.Context, batch []kafka.Message) error {
		return gen.CommitOffsets(nextOffsets(batch))
	}

	batches, stop := r.prefetch(genCtx, fetch)
	defer stop()
	for fetched := range batches {
		if fetched.err != nil || genCtx.Err() != nil {
			return nil // only the end of genCtx ends a fetch from the channel
		}
		if err := r.drainBatch(runCtx, fetched.batch, commit); err != nil {
			r.rollback()
			if runCtx.Err() != nil {
				r.logger.Info("batch abandoned because the runner is stopping; it will be consumed again", "messages", len(fetched.batch))
				return nil
			}
			return err
		}
	}
	return nil // the prefetch stopped because genCtx ended
}

// consumePartition restores the partition's state, then sends its messages to
// out in order until ctx ends.
func (r *Runner) consumePartition(ctx context.Context, a assignment, out chan<- kafka.Message) {
	if r.restorer != nil && !r.restore(ctx, a) {
		return
	}
	r.unrestored.Add(-1)

	reader := kafka.NewReader(partitionReaderConfig(r.cfg, a, r.logger))
	defer func() {
		if err := reader.Close(); err != nil {
			r.logger.Warn("close kafka partition reader failed", "topic", a.topic, "partition", a.partition, "error", err)
		}
	}()
	if err := reader.SetOffset(a.offset); err != nil {
		r.logger.Error("seek partition failed", "topic", a.topic, "partition", a.partition, "offset", a.offset, "error", err)
		return
	}

	for {
		msg, err := reader.FetchMessage(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.logger.Warn("fetch partition failed; retrying", "topic", a.topic, "partition", a.partition, "error", err)
			if !sleep(ctx, r.cfg.RestoreBackoff) {
				return
			}
			continue
		}
		select {
		case out <- msg:
		case <-ctx.Done():
			return
		}
	}
}

// restore calls the PartitionRestorer until it succeeds, waiting
// RestoreBackoff between attempts. It returns false when ctx ended first.
func (r *Runner) restore(ctx context.Context, a assignment) bool {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := r.restorer.Restore(ctx, a.topic, a.partition)
		if err == nil {
			r.logger.Info("partition state restored", "topic", a.topic, "partition", a.partition, "duration", time.Since(start).Round(time.Millisecond).String())
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.logger.Warn("restore partition state failed; retrying", "topic", a.topic, "partition", a.partition,
			"attempt", attempt, "backoff", r.cfg.RestoreBackoff, "error", err)
		if !sleep(ctx, r.cfg.RestoreBackoff) {
			return false
		}
	}
}

// sleep waits for d and reports whether ctx was still alive after it.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// assignments returns the generation's partitions, sorted by topic and
// partition.
func assignments(gen *kafka.Generation) []assignment {
	var assigned []assignment
	for topic, partitions := range gen.Assignments {
		for _, p := range partitions {
			assigned = append(assigned, assignment{topic: topic, partition: p.ID, offset: p.Offset})
		}
	}
	slices.SortFunc(assigned, func(a, b assignment) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return a.partition - b.partition
	})
	return assigned
}

// describe formats partitions as "topic/partition" for logs.
func describe(assigned []assignment) []string {
	names := make([]string, len(assigned))
	for i, a := range assigned {
		names[i] = fmt.Sprintf("%s/%d", a.topic, a.partition)
	}
	return names
}

// nextOffsets returns, per topic and partition of batch, the offset after the
// last message: the offset a consumer group commits.
func nextOffsets(batch []kafka.Message) map[string]map[int]int64 {
	offsets := make(map[string]map[int]int64)
	for _, msg := range batch {
		partitions := offsets[msg.Topic]
		if partitions == nil {
			partitions = make(map[int]int64)
			offsets[msg.Topic] = partitions
		}
		partitions[msg.Partition] = max(partitions[msg.Partition], msg.Offset+1)
	}
	return offsets
}

// partitionReaderConfig is the kafka-go reader of one assigned partition:
// no group, because the generation commits the offsets.
func partitionReaderConfig(cfg RunnerConfig, a assignment, logger *slog.Logger) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:        cfg.Brokers,
		Topic:          a.topic,
		Partition:      a.partition,
		Dialer:         cfg.Dialer,
		MaxWait:        cfg.MaxWait,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: time.Second,
		Logger: kafka.LoggerFunc(func(format string, args ...any) {
			logger.Debug(fmt.Sprintf(format, args...), "component", "kafka-go reader")
		}),
		ErrorLogger: readerErrorLogger(logger, "topic", a.topic, "partition", a.partition),
	}
}

// PartitionBalancer returns a kafka-go Balancer that writes each message of
// one of topics to the partition set in its Partition field, and any other
// message to the partition of the murmur2 hash of its key, as Kafka's Java
// client does. A processor that keeps its output co-partitioned with its
// input sets Partition to the input message's partition. The output topic
// then needs at least as many partitions as the input, because the broker
// rejects a message for a partition that does not exist.
func PartitionBalancer(topics ...string) kafka.Balancer {
	explicit := make(map[string]bool, len(topics))
	for _, topic := range topics {
		explicit[topic] = true
	}
	var hash kafka.Murmur2Balancer
	return kafka.BalancerFunc(func(msg kafka.Message, partitions ...int) int {
		if explicit[msg.Topic] {
			return msg.Partition
		}
		return hash.Balance(msg, partitions...)
	})
}
