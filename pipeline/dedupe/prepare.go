package dedupe

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/source/inventory"
)

// inputPosition identifies an input message.
type inputPosition struct {
	topic     string
	partition int
	offset    int64
}

// prepared is the fingerprint of one input message, or the error computing it.
type prepared struct {
	fingerprint string
	err         error
}

// PrepareBatch computes the fingerprints of the routed records of batch
// before the runner passes the batch to Process one message at a time.
// Process then takes each fingerprint from there instead of computing it, so
// the state changes stay in input order on one goroutine while the
// fingerprints, most of the work, run in parallel. A fingerprint depends only
// on the message, so computing it ahead changes no outcome, and PrepareBatch
// may run while Process handles the previous batch.
//
// The runner prepares a batch while it publishes the one before, so
// PrepareBatch uses GOMAXPROCS-1 goroutines, at least one, and leaves a core
// to the Kafka writer. With every core taken, the dedupe benchmark ran
// 10-20% slower on two cores.
func (s *Stage) PrepareBatch(_ context.Context, batch []kafka.Message) {
	results := make([]prepared, len(batch))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(runtime.GOMAXPROCS(0)-1, 1), len(batch)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batch) {
					return
				}
				msg := &batch[i]
				if s.needsFingerprint(msg) {
					results[i].fingerprint, results[i].err = s.safeFingerprint(msg)
				}
			}
		})
	}
	wg.Wait()

	s.preparedMu.Lock()
	defer s.preparedMu.Unlock()
	// Process removes each fingerprint it takes. What is left belongs to
	// batches that were dropped before Process, so a map that holds more
	// than a few batches starts over. Process computes a missing fingerprint
	// itself.
	if s.prepared == nil || len(s.prepared) > maxPrepared {
		s.prepared = make(map[inputPosition]prepared, 2*len(batch))
	}
	for i := range batch {
		msg := &batch[i]
		if s.needsFingerprint(msg) {
			s.prepared[inputPosition{msg.Topic, msg.Partition, msg.Offset}] = results[i]
		}
	}
}

// needsFingerprint reports whether Process fingerprints msg: a record with a
// value on a routed topic. Inventory end events are not fingerprinted.
func (s *Stage) needsFingerprint(msg *kafka.Message) bool {
	_, routed := s.routes[msg.Topic]
	return routed && msg.Value != nil && !inventory.IsEnd(*msg)
}

// maxPrepared bounds the fingerprints that PrepareBatch keeps: four batches
// of the runner's default size.
const maxPrepared = 4000

// safeFingerprint calls the fingerprint function and turns a panic into an
// error, because it runs outside the runner's own panic handling.
func (s *Stage) safeFingerprint(msg *kafka.Message) (fingerprint string, err error) {
	defer func() {
		if v := recover(); v != nil {
			fingerprint, err = "", fmt.Errorf("fingerprint panicked: %v", v)
		}
	}()
	return s.fingerprint(msg.Topic, *msg)
}

// fingerprintOf returns the fingerprint that PrepareBatch computed for msg,
// or computes it when PrepareBatch did not.
func (s *Stage) fingerprintOf(msg kafka.Message) (string, error) {
	position := inputPosition{msg.Topic, msg.Partition, msg.Offset}
	s.preparedMu.Lock()
	result, ok := s.prepared[position]
	delete(s.prepared, position)
	s.preparedMu.Unlock()
	if ok {
		return result.fingerprint, result.err
	}
	return s.fingerprint(msg.Topic, msg)
}
