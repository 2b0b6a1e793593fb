package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/sink"
)

// publish writes msgs. A message the broker can never accept as it is, such
// as one that is too large, goes to its topic's dead-letter topic instead, so
// one bad vendor object cannot hold back the rest of its feed. A dead letter
// for a message that was too large carries no value, and neither does a dead
// letter in msgs that is too large itself, such as an unreadable object over
// the limit. publish returns nil only when every message is on its topic or
// its dead-letter topic.
func (s *Stage) publish(ctx context.Context, msgs []kafka.Message) error {
	err := s.publisher.Write(ctx, msgs...)
	var rejected *sink.RejectedError
	if err == nil || !errors.As(err, &rejected) {
		return err
	}

	letters := make([]kafka.Message, 0, len(rejected.Messages))
	for i := range rejected.Messages {
		failure := &rejected.Messages[i]
		if failure.Index < 0 || failure.Index >= len(msgs) {
			return fmt.Errorf("publisher rejected message %d of %d: %w", failure.Index, len(msgs), failure)
		}
		msg := msgs[failure.Index]
		if strings.HasSuffix(msg.Topic, pipeline.DeadLetterSuffix) {
			// The message is already a dead letter, which has no dead-letter
			// topic of its own.
			if !errors.Is(failure.Err, kafka.MessageSizeTooLarge) {
				return fmt.Errorf("publish dead letter to %s: %w", msg.Topic, failure)
			}
			s.logger.Error("dead letter too large; sending it without the object",
				"topic", msg.Topic, "key", string(msg.Key), "error", failure)
			letters = append(letters, withoutValue(msg, failure))
			continue
		}
		s.logger.Error("publisher rejected a raw event; sending it to the dead-letter topic",
			"topic", failure.Topic, "key", string(failure.Key), "error", failure)
		letters = append(letters, deadLetter(msg, failure))
	}

	if err := s.publisher.Write(ctx, letters...); err != nil {
		return fmt.Errorf("publish %d dead letters: %w", len(letters), err)
	}
	s.count(func(st *Stats) { st.DeadLettered += len(letters) })
	return nil
}

// invalidObjectLetter carries a vendor object that the client could not read
// (it lacks its id or time) straight to <topic>.dlq, so that the rest of the
// response is published and the feed moves on. The letter has no key,
// because the key is what is missing or unreadable.
func (s *Stage) invalidObjectLetter(topic, eventType, endpoint string, raw []byte, cause error) kafka.Message {
	s.logger.Error("the console sent an object the source cannot read; sending it to the dead-letter topic",
		"topic", topic+pipeline.DeadLetterSuffix, "error", cause)
	s.count(func(st *Stats) { st.DeadLettered++ })
	headers := []kafka.Header{
		{Key: sink.HeaderType, Value: []byte(eventType)},
		{Key: sink.HeaderSource, Value: []byte(s.cfg.ConsoleURL + endpoint)},
		{Key: sink.HeaderTenant, Value: []byte(s.cfg.Tenant)},
		{Key: sink.HeaderContentType, Value: []byte(sink.ContentType)},
		{Key: pipeline.HeaderDLQError, Value: []byte(cause.Error())},
		{Key: pipeline.HeaderDLQStage, Value: []byte("source")},
		{Key: pipeline.HeaderDLQTopic, Value: []byte(topic)},
	}
	return kafka.Message{Topic: topic + pipeline.DeadLetterSuffix, Value: raw, Headers: headers}
}

// deadLetter carries a raw event that was never written to <topic>.dlq, with
// the reason in its headers. The event has no partition or offset yet, so
// those headers are left out.
func deadLetter(msg kafka.Message, failure *sink.MessageError) kafka.Message {
	headers := append(msg.Headers[:len(msg.Headers):len(msg.Headers)],
		kafka.Header{Key: pipeline.HeaderDLQError, Value: []byte(failure.Error())},
		kafka.Header{Key: pipeline.HeaderDLQStage, Value: []byte("source")},
		kafka.Header{Key: pipeline.HeaderDLQTopic, Value: []byte(msg.Topic)},
	)
	value := msg.Value
	if errors.Is(failure.Err, kafka.MessageSizeTooLarge) {
		value = nil
	}
	return kafka.Message{Topic: msg.Topic + pipeline.DeadLetterSuffix, Key: msg.Key, Value: value, Headers: headers}
}

// withoutValue returns letter, a dead letter that was too large, without its
// value and with the reason added to its dlq_error header.
func withoutValue(letter kafka.Message, failure *sink.MessageError) kafka.Message {
	headers := slices.Clone(letter.Headers)
	for i := range headers {
		if headers[i].Key == pipeline.HeaderDLQError {
			headers[i].Value = fmt.Appendf(nil, "%s; value omitted: %v", headers[i].Value, failure.Err)
		}
	}
	letter.Value = nil
	letter.Headers = headers
	return letter
}
