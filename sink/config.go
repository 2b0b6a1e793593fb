package sink

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// Defaults for the zero fields of Config.
const (
	DefaultBatchSize  = 1000
	DefaultBatchBytes = 1 << 20 // 1 MiB, within the 1,048,588-byte message.max.bytes default of Kafka and kfake
	// DefaultBatchTimeout is short because Write is synchronous: each call
	// hands kafka-go all its messages at once, so a partial batch of a
	// partition gains little by waiting, and every wait adds to the latency
	// of each stage.
	DefaultBatchTimeout        = time.Millisecond
	DefaultWriteTimeout        = 10 * time.Second
	DefaultRetryBackoffMin     = 100 * time.Millisecond
	DefaultRetryBackoffMax     = 10 * time.Second
	DefaultMissingTopicTimeout = 30 * time.Second
)

// recordBatchOverhead is the part of BatchBytes kept free for what kafka-go's
// size estimate leaves out: the 61-byte record batch header and the varint
// framing of a large record. For one record close to 1 MiB they add about 50
// bytes (computed from the v2 record format and checked against kfake).
// Without this margin, the broker can reject a message that passed
// kafka-go's own check.
const recordBatchOverhead = 64

// Config sets up a Writer. Zero fields take the defaults above.
type Config struct {
	// Brokers are the bootstrap addresses, "host:port". Required.
	Brokers []string
	// BatchSize is the max messages per produce request and partition.
	BatchSize int
	// BatchBytes is the max record batch size on the wire, in bytes. It must
	// not exceed the broker's message.max.bytes or the topics'
	// max.message.bytes; if it does, the broker rejects whole batches. A
	// message larger than BatchBytes minus a 64-byte allowance for the batch
	// header is rejected before sending.
	BatchBytes int64
	// BatchTimeout is how long a partial batch waits for more messages
	// before it is sent.
	BatchTimeout time.Duration
	// WriteTimeout bounds one attempt of Write.
	WriteTimeout time.Duration
	// RetryBackoffMin and RetryBackoffMax bound the wait between attempts,
	// which doubles from the min to the max, with jitter.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// MissingTopicTimeout is how long Write keeps retrying a message whose
	// topic does not exist before it rejects the message. Topics are never
	// created implicitly.
	MissingTopicTimeout time.Duration
	// Transport carries TLS and SASL settings. Optional: by default the
	// Writer uses a plain-TCP transport of its own and closes its
	// connections on Close. A Transport passed in stays the caller's to close.
	Transport *kafka.Transport
	// Balancer chooses each message's partition. Optional: by default the
	// murmur2 hash of the key, as Kafka's Java client does.
	Balancer kafka.Balancer
}

func (cfg *Config) setDefaults() {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchBytes == 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.BatchTimeout == 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.RetryBackoffMin == 0 {
		cfg.RetryBackoffMin = DefaultRetryBackoffMin
	}
	if cfg.RetryBackoffMax == 0 {
		cfg.RetryBackoffMax = DefaultRetryBackoffMax
	}
	if cfg.MissingTopicTimeout == 0 {
		cfg.MissingTopicTimeout = DefaultMissingTopicTimeout
	}
}

// minBatchBytes keeps room for a useful message beside the batch header.
const minBatchBytes = 1024

func (cfg *Config) validate() error {
	var errs []error
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one address is required"))
	}
	for _, addr := range cfg.Brokers {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("brokers: invalid address %q: expected host:port", addr))
		}
	}
	if cfg.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size: must be positive, got %d", cfg.BatchSize))
	}
	if cfg.BatchBytes < minBatchBytes {
		errs = append(errs, fmt.Errorf("batch bytes: must be at least %d, got %d", minBatchBytes, cfg.BatchBytes))
	}
	durations := []struct {
		name  string
		value time.Duration
	}{
		{"batch timeout", cfg.BatchTimeout},
		{"write timeout", cfg.WriteTimeout},
		{"retry backoff min", cfg.RetryBackoffMin},
		{"retry backoff max", cfg.RetryBackoffMax},
		{"missing topic timeout", cfg.MissingTopicTimeout},
	}
	for _, d := range durations {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.name, d.value))
		}
	}
	if cfg.RetryBackoffMin > cfg.RetryBackoffMax {
		errs = append(errs, fmt.Errorf("retry backoff min %s is greater than retry backoff max %s", cfg.RetryBackoffMin, cfg.RetryBackoffMax))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid kafka writer config: %w", errors.Join(errs...))
	}
	return nil
}
