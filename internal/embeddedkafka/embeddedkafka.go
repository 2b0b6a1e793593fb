// Package embeddedkafka runs an in-process Kafka-protocol broker (kfake from
// franz-go) on loopback, so the demo and the tests need no Kafka installed.
// Clients talk to it over TCP with the real wire protocol.
package embeddedkafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Topic is a topic the broker creates when it starts.
type Topic struct {
	Name string
	// Partitions is the partition count; 0 means 1.
	Partitions int
	// Compacted sets the topic config cleanup.policy=compact.
	Compacted bool
}

// Config sets up the broker.
type Config struct {
	// Port is the TCP port on 127.0.0.1; 0 picks a free port.
	Port int
	// DataDir is the directory where the broker stores its topics, records,
	// committed offsets and producer ids, so that a broker started again with
	// the same DataDir finds them. Empty keeps everything in memory. Start
	// creates the directory if it is missing.
	DataDir string
	// Topics are created at start unless DataDir already has them. Clients
	// cannot create topics implicitly: automatic topic creation is off, as it
	// should be in production.
	Topics []Topic
	// Users, when set, turns SASL authentication on: every connection must
	// then authenticate as one of them. Each user may do everything.
	Users []User
	// TLS, when set, makes the broker accept TLS connections only.
	TLS *tls.Config
}

// User is a SASL user of the broker.
type User struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string
	Name      string
	Password  string
}

// Broker is a running in-process broker. It keeps its data in memory unless
// its Config sets DataDir.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	logger  *slog.Logger
}

// legalTopicName is the character set and length Kafka accepts for topic names.
var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Start starts a single broker on 127.0.0.1 and creates those of cfg.Topics
// that do not exist yet. With cfg.DataDir set, it first loads what an earlier
// broker stored there, and fails when a stored topic has another partition
// count or cleanup policy than cfg.Topics sets. The broker's own log
// lines go to logger at Debug level; a nil logger discards them.
func Start(cfg Config, logger *slog.Logger) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	opts := []kfake.Opt{
		kfake.Ports(cfg.Port),
		kfake.WithLogger(logBridge{logger: logger}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if len(cfg.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, user := range cfg.Users {
			opts = append(opts, kfake.Superuser(user.Mechanism, user.Name, user.Password))
		}
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start in-process kafka broker on 127.0.0.1:%d: %w", cfg.Port, err)
	}

	for _, topic := range cfg.Topics {
		if err := ensureTopic(cluster, topic); err != nil {
			cluster.Close()
			return nil, err
		}
	}

	b := &Broker{cluster: cluster, addrs: cluster.ListenAddrs(), logger: logger}
	logger.Debug("in-process kafka broker started", "addrs", b.addrs, "topics", len(cfg.Topics), "data_dir", cfg.DataDir)
	return b, nil
}

// ensureTopic creates topic, or checks the copy that the broker loaded from
// its data directory against it.
func ensureTopic(cluster *kfake.Cluster, topic Topic) error {
	info := cluster.TopicInfo(topic.Name)
	if info == nil {
		return createTopic(cluster, topic)
	}

	partitions := max(topic.Partitions, 1)
	if stored := len(cluster.PartitionInfos(topic.Name)); stored != partitions {
		return fmt.Errorf("stored topic %q has %d partitions, want %d: remove the data directory or fix the topic list", topic.Name, stored, partitions)
	}
	policy := info.Configs["cleanup.policy"]
	compacted := policy != nil && *policy == "compact"
	if compacted != topic.Compacted {
		return fmt.Errorf("stored topic %q has compaction %t, want %t: remove the data directory or fix the topic list", topic.Name, compacted, topic.Compacted)
	}
	return nil
}

func createTopic(cluster *kfake.Cluster, topic Topic) error {
	partitions := max(topic.Partitions, 1)
	var configs map[string]string
	if topic.Compacted {
		configs = map[string]string{"cleanup.policy": "compact"}
	}
	if err := cluster.CreateTopic(topic.Name, int32(partitions), configs); err != nil {
		return fmt.Errorf("create topic %q with %d partitions: %w", topic.Name, partitions, err)
	}
	return nil
}

func (cfg Config) validate() error {
	var errs []error
	if cfg.Port < 0 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("invalid port %d: must be 0 (any free port) to 65535", cfg.Port))
	}

	seen := make(map[string]bool, len(cfg.Topics))
	for i, topic := range cfg.Topics {
		switch {
		case !legalTopicName.MatchString(topic.Name):
			errs = append(errs, fmt.Errorf("invalid topic name %q (topic %d): use 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'", topic.Name, i))
		case seen[topic.Name]:
			errs = append(errs, fmt.Errorf("topic %q is listed twice", topic.Name))
		}
		seen[topic.Name] = true

		if topic.Partitions < 0 {
			errs = append(errs, fmt.Errorf("invalid partition count %d for topic %q: must not be negative", topic.Partitions, topic.Name))
		}
	}
	for _, user := range cfg.Users {
		if !slices.Contains([]string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, user.Mechanism) || user.Name == "" {
			errs = append(errs, fmt.Errorf("invalid SASL user %q with mechanism %q: expected a name and PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", user.Name, user.Mechanism))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid embedded kafka config: %w", errors.Join(errs...))
	}
	return nil
}

// Addrs returns the broker addresses ("127.0.0.1:port") to give to clients.
func (b *Broker) Addrs() []string {
	return append([]string(nil), b.addrs...)
}

// Cluster returns the underlying kfake cluster, for tests that inject faults
// or inspect groups and topics.
func (b *Broker) Cluster() *kfake.Cluster {
	return b.cluster
}

// Close stops the broker and closes its client connections. Without a
// DataDir it drops the data; with one it saves the data there first. Calling
// it again does nothing.
func (b *Broker) Close() {
	b.cluster.Close()
	b.logger.Debug("in-process kafka broker stopped", "addrs", b.addrs)
}

// logBridge sends kfake's log lines to slog at Debug level, whatever kfake's
// own level, because the broker is a test and demo aid and its chatter must
// not drown the connector's logs.
type logBridge struct {
	logger *slog.Logger
}

func (l logBridge) Logf(level kfake.LogLevel, format string, args ...any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.logger.LogAttrs(ctx, slog.LevelDebug, fmt.Sprintf(format, args...),
		slog.String("component", "kfake"), slog.String("kfake_level", level.String()))
}
