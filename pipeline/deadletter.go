package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/sink"
)

// Dead-letter headers, added to the input message's own headers.
const (
	HeaderDLQError     = "dlq_error"
	HeaderDLQStage     = "dlq_stage"
	HeaderDLQTopic     = "dlq_topic"
	HeaderDLQPartition = "dlq_partition"
	HeaderDLQOffset    = "dlq_offset"
)

// DeadLetterSuffix is appended to an input topic's name to get its
// dead-letter topic.
const DeadLetterSuffix = ".dlq"

// maxErrorBytes caps the dlq_error header, because some errors list every
// failing field of a record. A longer error is cut and ends in "...".
const maxErrorBytes = 4096

// deadLetter returns the message that carries msg to its dead-letter topic:
// the same key and value, its headers without earlier dlq_ headers, and the
// reason and origin in dlq_ headers.
func deadLetter(msg *kafka.Message, stage string, cause error) kafka.Message {
	headers := make([]kafka.Header, 0, len(msg.Headers)+5)
	for _, h := range msg.Headers {
		if !strings.HasPrefix(h.Key, "dlq_") {
			headers = append(headers, h)
		}
	}
	reason := cause.Error()
	if len(reason) > maxErrorBytes {
		// Cut at a rune boundary, so that the header stays valid UTF-8.
		cut := maxErrorBytes
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut] + "..."
	}
	headers = append(headers,
		kafka.Header{Key: HeaderDLQError, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQStage, Value: []byte(stage)},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(msg.Topic)},
		kafka.Header{Key: HeaderDLQPartition, Value: []byte(strconv.Itoa(msg.Partition))},
		kafka.Header{Key: HeaderDLQOffset, Value: []byte(strconv.FormatInt(msg.Offset, 10))},
	)
	return kafka.Message{Topic: msg.Topic + DeadLetterSuffix, Key: msg.Key, Value: msg.Value, Headers: headers}
}

// withoutValue returns a dead letter without the input's value, with the
// reason added to dlq_error. The input can still be read at the offset in the
// headers while the input topic retains it.
func withoutValue(letter kafka.Message, cause error) kafka.Message {
	headers := make([]kafka.Header, len(letter.Headers))
	copy(headers, letter.Headers)
	for i := range headers {
		if headers[i].Key == HeaderDLQError {
			headers[i].Value = fmt.Appendf(nil, "%s; value omitted: %v", headers[i].Value, cause)
		}
	}
	letter.Value = nil
	letter.Headers = headers
	return letter
}

// publish writes outs with one Write. When the publisher rejects some for
// good, publish writes a dead letter of each rejected output's input in its
// place. The outputs already written stay written. complete reports whether
// every output was written as produced.
//
// A rejected dead letter is sent again without the input's value when it was
// too large. Any other rejected dead letter fails the batch: without a place
// to put the input, committing past it would lose it.
func (r *Runner) publish(ctx context.Context, batch []kafka.Message, outs []output) (complete bool, err error) {
	complete = true
	for len(outs) > 0 {
		msgs := make([]kafka.Message, len(outs))
		for i := range outs {
			msgs[i] = outs[i].msg
		}

		err := r.publisher.Write(ctx, msgs...)
		var rejected *sink.RejectedError
		if err != nil && !errors.As(err, &rejected) {
			return false, fmt.Errorf("publish %d messages: %w", len(msgs), err)
		}

		r.countWritten(outs, rejected)
		if rejected == nil {
			return complete, nil
		}
		complete = false
		if outs, err = r.replaceRejected(batch, outs, rejected); err != nil {
			return false, err
		}
	}
	return complete, nil
}

// countWritten counts the outputs that were acknowledged: all but the
// rejected ones.
func (r *Runner) countWritten(outs []output, rejected *sink.RejectedError) {
	refused := make(map[int]bool)
	if rejected != nil {
		for _, m := range rejected.Messages {
			refused[m.Index] = true
		}
	}
	for i, out := range outs {
		switch {
		case refused[i]:
		case out.deadLetter:
			r.deadLettered.Add(1)
		default:
			r.produced.Add(1)
		}
	}
}

// replaceRejected returns the messages to write in place of the rejected
// outputs: one dead letter per input whose output was rejected, or a dead
// letter without its value when the dead letter itself was too large.
func (r *Runner) replaceRejected(batch []kafka.Message, outs []output, rejected *sink.RejectedError) ([]output, error) {
	var next []output
	lettered := make(map[int]bool) // inputs already given a dead letter in next
	for _, failure := range rejected.Messages {
		if failure.Index < 0 || failure.Index >= len(outs) {
			return nil, fmt.Errorf("publisher rejected message %d of %d: %w", failure.Index, len(outs), &failure)
		}
		out := outs[failure.Index]
		input := &batch[out.input]
		logArgs := []any{"topic", input.Topic, "partition", input.Partition, "offset", input.Offset, "error", &failure}

		switch {
		case !out.deadLetter:
			if lettered[out.input] {
				continue
			}
			lettered[out.input] = true
			r.logger.Warn("publisher rejected an output; sending its input to the dead-letter topic", logArgs...)
			cause := fmt.Errorf("publish output: %w", &failure)
			next = append(next, output{msg: deadLetter(input, r.cfg.Name, cause), input: out.input, deadLetter: true})

		case !out.valueOmitted && errors.Is(failure.Err, kafka.MessageSizeTooLarge):
			r.logger.Warn("dead letter too large; sending it without the input's value", logArgs...)
			next = append(next, output{msg: withoutValue(out.msg, failure.Err), input: out.input, deadLetter: true, valueOmitted: true})

		default:
			return nil, fmt.Errorf("dead letter for %s partition %d offset %d rejected: %w", input.Topic, input.Partition, input.Offset, &failure)
		}
	}
	return next, nil
}
