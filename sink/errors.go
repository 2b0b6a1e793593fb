package sink

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// ErrNoTopic is the cause of a MessageError for a message without a Topic.
var ErrNoTopic = errors.New("message has no topic")

// MessageError is the failure of one message of a Write call.
type MessageError struct {
	// Index is the message's position in the Write call.
	Index int
	Topic string
	Key   []byte
	// Size is the message's size as kafka-go estimates it, in bytes.
	Size int64
	Err  error
}

func newMessageError(i int, msg *kafka.Message, err error) MessageError {
	return MessageError{Index: i, Topic: msg.Topic, Key: msg.Key, Size: messageSize(msg), Err: err}
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("message to topic %q with key %s (%d bytes): %v", e.Topic, quoteKey(e.Key), e.Size, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

// quoteKey prints a key for an error message, shortened past 64 bytes.
func quoteKey(key []byte) string {
	const maxLen = 64
	if key == nil {
		return "(none)"
	}
	if len(key) > maxLen {
		return fmt.Sprintf("%q...", key[:maxLen])
	}
	return fmt.Sprintf("%q", key)
}

// RejectedError reports messages that can never be written as they are. Write
// returns it only after every other message of the call was acknowledged.
type RejectedError struct {
	Messages []MessageError
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d messages rejected: ", len(e.Messages))
	for i := range e.Messages {
		if i > 0 {
			b.WriteString("; ")
		}
		if i == 3 {
			fmt.Fprintf(&b, "and %d more", len(e.Messages)-i)
			break
		}
		b.WriteString(e.Messages[i].Error())
	}
	return b.String()
}

// Unwrap returns the error of each rejected message, for errors.Is and errors.As.
func (e *RejectedError) Unwrap() []error {
	errs := make([]error, len(e.Messages))
	for i := range e.Messages {
		errs[i] = &e.Messages[i]
	}
	return errs
}

// errorClass is the action Write takes on a message after an attempt.
type errorClass int

const (
	acknowledged errorClass = iota
	transient               // retry until ctx ends
	permanent               // reject the message, deliver the others
	missingTopic            // retry until MissingTopicTimeout, then reject
	fatal                   // return at once
)

func classify(err error) errorClass {
	if err == nil {
		return acknowledged
	}
	if errors.Is(err, io.ErrClosedPipe) {
		return fatal // the Writer was closed
	}

	var code kafka.Error
	if !errors.As(err, &code) {
		return transient // network errors, timeouts
	}
	switch code {
	case kafka.UnknownTopicOrPartition:
		return missingTopic
	case kafka.MessageSizeTooLarge,
		kafka.RecordListTooLarge,
		kafka.InvalidTopic,
		kafka.InvalidRecord,
		kafka.InvalidTimestamp:
		return permanent
	case kafka.SASLAuthenticationFailed,
		kafka.UnsupportedSASLMechanism,
		kafka.IllegalSASLState,
		kafka.TopicAuthorizationFailed,
		kafka.ClusterAuthorizationFailed:
		return fatal
	default:
		// NOTE: every other broker error is retried until ctx ends, including
		// ones that no retry fixes (for example UNSUPPORTED_VERSION): the
		// pipeline then stalls with a Warn log per attempt instead of
		// dropping data.
		return transient
	}
}

// messageSize is kafka-go's size estimate of a message (Message.totalSize
// in kafka-go v0.4.51), the figure it compares with Writer.BatchBytes.
func messageSize(msg *kafka.Message) int64 {
	const fixed = 4 + 1 + 1 + 4 + 4 + 8 // crc, magic byte, attributes, key and value lengths, timestamp
	size := int64(fixed + len(msg.Key) + len(msg.Value))
	size += varintSize(len(msg.Headers))
	for _, h := range msg.Headers {
		size += varintSize(len(h.Key)) + int64(len(h.Key))
		size += varintSize(len(h.Value)) + int64(len(h.Value))
	}
	return size
}

// varintSize is the length of n as a zig-zag varint.
func varintSize(n int) int64 {
	u := uint64(n) << 1 // n is never negative here
	size := int64(1)
	for u >= 0x80 {
		u >>= 7
		size++
	}
	return size
}

// backoffDelay returns the wait before attempt+1: first doubled per
// attempt up to limit, with the upper half drawn at random so that writers
// which failed together do not retry together.
func backoffDelay(attempt int, first, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + rand.N(d-half+1)
}
