// Package checkpoint keeps the source's alert feed cursors in a compacted
// Kafka topic, the way Kafka Connect keeps source offsets. Each console and
// feed has one key. Its record is written after the events it covers were
// acknowledged, and read back from the start of the topic when the source
// starts.
package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkaread"
	"github.com/oversoc/cybereason-connector/source"
)

// Version is the version of the Document this package writes. Load rejects
// any other version.
const Version = 1

// Document is the JSON value of a checkpoint record. The record key is
// "<tenant>/<feed>". A tombstone (null value) deletes the checkpoint.
type Document struct {
	Version int    `json:"version"`
	Feed    string `json:"feed"`
	// Cursor is the newest data time delivered, in epoch milliseconds.
	Cursor int64 `json:"cursor"`
	// Updated is the time of the write, in epoch milliseconds.
	Updated int64 `json:"updated"`
}

// Config sets up a Store.
type Config struct {
	// Brokers are the bootstrap brokers Load reads from. Required.
	Brokers []string
	// Dialer carries the TLS and SASL settings Load connects with.
	// Optional: nil connects over plain TCP.
	Dialer *kafka.Dialer
	// Topic is the compacted state topic. Required.
	Topic string
	// Publisher writes the checkpoints. The connector passes its
	// *sink.Writer, which waits for every in-sync replica and retries. Required.
	Publisher source.Publisher
	// LoadTimeout bounds each Load, so a broker that stops responding fails
	// the start instead of blocking it. Default: 1m.
	LoadTimeout time.Duration
	// Now returns the current time, recorded as Document.Updated. Default: time.Now.
	Now func() time.Time
}

// Store is a source.CheckpointStore backed by a Kafka topic. It is safe for
// concurrent use.
type Store struct {
	cfg Config
}

var _ source.CheckpointStore = (*Store)(nil)

// New validates cfg and returns a Store.
func New(cfg Config) (*Store, error) {
	var problems []string
	if len(cfg.Brokers) == 0 {
		problems = append(problems, "Brokers is empty")
	}
	if cfg.Topic == "" {
		problems = append(problems, "Topic is empty")
	}
	if cfg.Publisher == nil {
		problems = append(problems, "Publisher is nil")
	}
	if cfg.LoadTimeout < 0 {
		problems = append(problems, "LoadTimeout must not be negative, got "+cfg.LoadTimeout.String())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid checkpoint store config: %s", strings.Join(problems, "; "))
	}

	if cfg.LoadTimeout == 0 {
		cfg.LoadTimeout = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg}, nil
}

// Save writes cursor as the checkpoint of key, whose feed is the part after
// the last "/", and returns nil once the publisher acknowledged it.
func (s *Store) Save(ctx context.Context, key string, cursor time.Time) error {
	value, err := json.Marshal(Document{
		Version: Version,
		Feed:    feedOf(key),
		Cursor:  cursor.UnixMilli(),
		Updated: s.cfg.Now().UnixMilli(),
	})
	if err != nil {
		return fmt.Errorf("encode checkpoint %s: %w", key, err)
	}

	msg := kafka.Message{Topic: s.cfg.Topic, Key: []byte(key), Value: value}
	if err := s.cfg.Publisher.Write(ctx, msg); err != nil {
		return fmt.Errorf("save checkpoint %s to topic %s: %w", key, s.cfg.Topic, err)
	}
	return nil
}

// Load reads the committed records of the state topic from its first offset
// up to the last stable offset taken at the call, and returns the cursor of the last record of key. found
// is false when key has no record or its last record is a tombstone. A last
// record that is not a valid Document is an error naming the topic, key,
// partition and offset, because starting from the lookback instead would
// silently re-read or skip data.
//
// NOTE: each key is expected in one partition, as the key hash places it. If
// the topic's partition count changed, a key can have records in two
// partitions, and the one in the higher partition wins.
func (s *Store) Load(ctx context.Context, key string) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LoadTimeout)
	defer cancel()

	var last *kafka.Message
	err := kafkaread.ScanWithDialer(ctx, s.cfg.Dialer, s.cfg.Brokers, s.cfg.Topic, func(msg kafka.Message) error {
		if string(msg.Key) == key {
			last = &msg
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("load checkpoint %s: %w", key, err)
	}
	if last == nil || last.Value == nil {
		return time.Time{}, false, nil
	}

	cursor, err := decode(last.Value, feedOf(key))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("load checkpoint %s from topic %s (partition %d, offset %d): %w. Fix the record, or produce a tombstone for the key to start from the lookback",
			key, s.cfg.Topic, last.Partition, last.Offset, err)
	}
	return cursor, true, nil
}

func decode(value []byte, feed string) (time.Time, error) {
	var doc Document
	if err := json.Unmarshal(value, &doc); err != nil {
		return time.Time{}, fmt.Errorf("invalid JSON: %w", err)
	}

	switch {
	case doc.Version != Version:
		return time.Time{}, fmt.Errorf("unsupported version %d, expected %d", doc.Version, Version)
	case doc.Feed != feed:
		return time.Time{}, fmt.Errorf("feed %q does not match the key's feed %q", doc.Feed, feed)
	case doc.Cursor <= 0:
		return time.Time{}, errors.New("cursor missing or not a positive epoch-millisecond time")
	}
	return time.UnixMilli(doc.Cursor), nil
}

// feedOf returns the feed part of a "<tenant>/<feed>" key.
func feedOf(key string) string {
	return key[strings.LastIndexByte(key, '/')+1:]
}
