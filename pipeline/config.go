package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Defaults for the zero fields of RunnerConfig.
const (
	DefaultBatchSize         = 1000
	DefaultBatchWait         = 5 * time.Millisecond
	DefaultMaxWait           = 500 * time.Millisecond
	DefaultSessionTimeout    = 30 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultRebalanceTimeout  = 30 * time.Second
	DefaultCommitTimeout     = 10 * time.Second
	DefaultDrainTimeout      = 10 * time.Second
	DefaultRestoreBackoff    = 5 * time.Second
)

// RunnerConfig sets up a Runner. Zero durations and sizes take the defaults
// above.
type RunnerConfig struct {
	// Name is the stage name, used in logs and in the dlq_stage header. Required.
	Name string
	// Brokers are the bootstrap addresses, "host:port". Required.
	Brokers []string
	// GroupID is the consumer group. Required.
	GroupID string
	// Topics are the input topics. Required.
	Topics []string
	// BatchSize is the max messages processed, published and committed together.
	BatchSize int
	// BatchWait is how long a batch waits for more messages after its first.
	// Under a backlog a batch fills without waiting, so the wait only
	// matters, as latency, when messages trickle in.
	BatchWait time.Duration
	// MaxWait is the longest a fetch request waits on the broker for data.
	MaxWait time.Duration
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout are the
	// consumer group settings of the same names. HeartbeatInterval defaults
	// to a third of SessionTimeout, at most DefaultHeartbeatInterval.
	SessionTimeout, HeartbeatInterval, RebalanceTimeout time.Duration
	// CommitTimeout bounds an offset commit. A commit runs to the end even
	// when Run's ctx ends, so that a clean stop leaves nothing to consume again.
	CommitTimeout time.Duration
	// DrainTimeout is how long a batch in flight may still take to be
	// processed, published and committed after Run's ctx ends. A batch not
	// done by then is abandoned and consumed again after the restart.
	DrainTimeout time.Duration
	// Dialer carries TLS and SASL settings. Optional.
	Dialer *kafka.Dialer
	// TrackAssignments runs the runner on kafka-go's ConsumerGroup API, which
	// shows the partitions assigned to this member, instead of a Reader,
	// which hides them. It is required for the runner to call a
	// PartitionRestorer.
	TrackAssignments bool
	// RestoreBackoff is the wait before a failed Restore is tried again.
	RestoreBackoff time.Duration
	// StartCheck, when set, runs once at the start of Run, before it joins
	// the group; an error stops Run. Optional.
	StartCheck func(ctx context.Context) error
}

func (cfg *RunnerConfig) setDefaults() {
	setDefault(&cfg.BatchSize, DefaultBatchSize)
	setDefault(&cfg.BatchWait, DefaultBatchWait)
	setDefault(&cfg.MaxWait, DefaultMaxWait)
	setDefault(&cfg.SessionTimeout, DefaultSessionTimeout)
	// Kafka's consumer documentation sets heartbeat.interval.ms to at most
	// a third of session.timeout.ms.
	setDefault(&cfg.HeartbeatInterval, min(DefaultHeartbeatInterval, cfg.SessionTimeout/3))
	setDefault(&cfg.RebalanceTimeout, DefaultRebalanceTimeout)
	setDefault(&cfg.CommitTimeout, DefaultCommitTimeout)
	setDefault(&cfg.DrainTimeout, DefaultDrainTimeout)
	setDefault(&cfg.RestoreBackoff, DefaultRestoreBackoff)
}

func setDefault[T int | time.Duration](field *T, value T) {
	if *field == 0 {
		*field = value
	}
}

func (cfg *RunnerConfig) validate() []error {
	return append(cfg.validateGroup(), cfg.validateTuning()...)
}

// validateGroup checks the settings that name the stage, the cluster, the
// group and its topics.
func (cfg *RunnerConfig) validateGroup() []error {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if cfg.GroupID == "" {
		errs = append(errs, errors.New("group id: required"))
	}

	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one address is required"))
	}
	for _, addr := range cfg.Brokers {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("brokers: invalid address %q: expected host:port", addr))
		}
	}

	if len(cfg.Topics) == 0 {
		errs = append(errs, errors.New("topics: at least one is required"))
	}
	for i, topic := range cfg.Topics {
		if topic == "" || slices.Contains(cfg.Topics[:i], topic) {
			errs = append(errs, fmt.Errorf("topics: empty or repeated topic %q", topic))
		}
	}
	return errs
}

// validateTuning checks sizes and durations.
func (cfg *RunnerConfig) validateTuning() []error {
	var errs []error
	if cfg.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size: must be positive, got %d", cfg.BatchSize))
	}

	durations := []struct {
		name  string
		value time.Duration
	}{
		{"batch wait", cfg.BatchWait},
		{"max wait", cfg.MaxWait},
		{"session timeout", cfg.SessionTimeout},
		{"heartbeat interval", cfg.HeartbeatInterval},
		{"rebalance timeout", cfg.RebalanceTimeout},
		{"commit timeout", cfg.CommitTimeout},
		{"drain timeout", cfg.DrainTimeout},
		{"restore backoff", cfg.RestoreBackoff},
	}
	for _, d := range durations {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", d.name, d.value))
		}
	}
	if cfg.HeartbeatInterval >= cfg.SessionTimeout {
		errs = append(errs, fmt.Errorf("heartbeat interval %s must be shorter than session timeout %s", cfg.HeartbeatInterval, cfg.SessionTimeout))
	}
	return errs
}

// readerConfig is the kafka-go reader of a runner: group consumption from the
// first offset when the group has no commit, and synchronous commits
// (CommitInterval 0), which CommitMessages waits for.
func readerConfig(cfg RunnerConfig, logger *slog.Logger) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:               cfg.Brokers,
		GroupID:               cfg.GroupID,
		GroupTopics:           cfg.Topics,
		Dialer:                cfg.Dialer,
		StartOffset:           kafka.FirstOffset,
		CommitInterval:        0,
		MaxWait:               cfg.MaxWait,
		SessionTimeout:        cfg.SessionTimeout,
		HeartbeatInterval:     cfg.HeartbeatInterval,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		WatchPartitionChanges: true,
		ReadBackoffMin:        100 * time.Millisecond,
		ReadBackoffMax:        time.Second,
		Logger: kafka.LoggerFunc(func(format string, args ...any) {
			logger.Debug(fmt.Sprintf(format, args...), "component", "kafka-go reader")
		}),
		ErrorLogger: readerErrorLogger(logger),
	}
}

// readerErrorLogger logs the errors of a kafka-go reader at warning level,
// except fetch timeouts of a partition. Timeouts of the group's join and sync
// requests stay warnings. kafka-go v0.4.51 sets a fetch's read deadline to
// MaxWait and requests that the broker respond a little earlier. On a loaded
// host the response can come after the deadline. The reader then closes the
// connection and fetches again on a new one, so nothing is lost, and the
// error is logged at debug level only.
func readerErrorLogger(logger *slog.Logger, attrs ...any) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		message := fmt.Sprintf(format, args...)
		level := slog.LevelWarn
		if strings.HasPrefix(message, "the kafka reader got an unknown error reading partition") && strings.HasSuffix(message, "i/o timeout") {
			level = slog.LevelDebug
		}
		logger.Log(context.Background(), level, message, append([]any{"component", "kafka-go reader"}, attrs...)...)
	})
}

// groupConfig is the kafka-go consumer group of a runner in TrackAssignments
// mode: the same group settings as readerConfig, and the first offset for a
// partition without a committed offset.
func groupConfig(cfg RunnerConfig, logger *slog.Logger) kafka.ConsumerGroupConfig {
	return kafka.ConsumerGroupConfig{
		ID:                    cfg.GroupID,
		Brokers:               cfg.Brokers,
		Dialer:                cfg.Dialer,
		Topics:                cfg.Topics,
		StartOffset:           kafka.FirstOffset,
		SessionTimeout:        cfg.SessionTimeout,
		HeartbeatInterval:     cfg.HeartbeatInterval,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		WatchPartitionChanges: true,
		Logger: kafka.LoggerFunc(func(format string, args ...any) {
			logger.Debug(fmt.Sprintf(format, args...), "component", "kafka-go consumer group")
		}),
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			logger.Warn(fmt.Sprintf(format, args...), "component", "kafka-go consumer group")
		}),
	}
}
