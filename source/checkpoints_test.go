package source_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/checkpoint"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// alertFeed runs one poll of an alert feed through the stage's Collect method.
type alertFeed struct {
	name string
	// timeField is the field of the tenant's raw items that the cursor follows.
	timeField string
	items     func(*cybereasontest.Tenant) []json.RawMessage
	overlap   func(source.Config) time.Duration
	collect   func(context.Context, *source.Stage) (from, cursor time.Time, err error)
}

func alertFeeds() []alertFeed {
	return []alertFeed{
		{
			name:      source.FeedMalops,
			timeField: "lastUpdateTime",
			items:     (*cybereasontest.Tenant).Malops,
			overlap:   func(cfg source.Config) time.Duration { return cfg.MalopsWindow.Overlap },
			collect: func(ctx context.Context, stage *source.Stage) (time.Time, time.Time, error) {
				report, err := stage.CollectMalops(ctx)
				return report.From, report.Cursor, err
			},
		},
		{
			name:      source.FeedMalware,
			timeField: "timestamp",
			items:     (*cybereasontest.Tenant).Malware,
			overlap:   func(cfg source.Config) time.Duration { return cfg.MalwareWindow.Overlap },
			collect: func(ctx context.Context, stage *source.Stage) (time.Time, time.Time, error) {
				report, err := stage.CollectMalware(ctx)
				return report.From, report.Cursor, err
			},
		},
	}
}

// checkpoints returns a new Kafka-backed store on the rig's state topic, as a
// restarted process would create it.
func (r *rig) checkpoints(t *testing.T) *checkpoint.Store {
	t.Helper()
	store, err := checkpoint.New(checkpoint.Config{Brokers: r.brokers, Topic: stateTopic, Publisher: r.writer})
	if err != nil {
		t.Fatalf("checkpoint.New: %v", err)
	}
	return store
}

// savedCheckpoints returns every record of the state topic.
func (r *rig) savedCheckpoints(t *testing.T) []checkpoint.Document {
	t.Helper()
	var docs []checkpoint.Document
	for _, msg := range kafkatest.ReadAll(t, r.brokers, stateTopic) {
		var doc checkpoint.Document
		if err := json.Unmarshal(msg.Value, &doc); err != nil {
			t.Fatalf("checkpoint %s: %v", msg.Key, err)
		}
		if want := tenantID + "/" + doc.Feed; string(msg.Key) != want {
			t.Errorf("checkpoint of feed %s has key %q, want %q", doc.Feed, msg.Key, want)
		}
		docs = append(docs, doc)
	}
	return docs
}

// newestTime returns the largest epoch-millisecond value of field among items.
func newestTime(t *testing.T, items []json.RawMessage, field string) int64 {
	t.Helper()
	var newest int64
	for _, raw := range items {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		var value int64
		if err := json.Unmarshal(fields[field], &value); err != nil {
			t.Fatalf("item %s has no epoch-millisecond %s: %v", raw, field, err)
		}
		newest = max(newest, value)
	}
	return newest
}

func TestCheckpointResumesAfterRestart(t *testing.T) {
	for _, feed := range alertFeeds() {
		t.Run(feed.name, func(t *testing.T) {
			r := newRig(t, 10, 6, cybereasontest.Options{})
			cfg := r.config()
			cfg.Feeds = []string{feed.name}
			cfg.Checkpoints = r.checkpoints(t)
			ctx := context.Background()

			_, cursor, err := feed.collect(ctx, r.stage(t, cfg, nil))
			if err != nil {
				t.Fatalf("first poll: %v", err)
			}
			newest := newestTime(t, feed.items(r.tenant), feed.timeField)
			if cursor.UnixMilli() != newest {
				t.Errorf("cursor %d, want the newest %s %d", cursor.UnixMilli(), feed.timeField, newest)
			}
			saved := r.savedCheckpoints(t)
			if len(saved) != 1 {
				t.Fatalf("state topic has %d checkpoints after one poll, want 1", len(saved))
			}
			if saved[0].Version != checkpoint.Version {
				t.Errorf("checkpoint version %d, want %d", saved[0].Version, checkpoint.Version)
			}
			if saved[0].Feed != feed.name {
				t.Errorf("checkpoint feed %q, want %q", saved[0].Feed, feed.name)
			}
			if saved[0].Cursor != newest {
				t.Errorf("checkpoint cursor %d, want the newest %s %d", saved[0].Cursor, feed.timeField, newest)
			}

			cfg.Checkpoints = r.checkpoints(t)
			restarted := r.stage(t, cfg, nil)
			if err := restarted.Restore(ctx); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			from, _, err := feed.collect(ctx, restarted)
			if err != nil {
				t.Fatalf("poll after restart: %v", err)
			}
			if want := cursor.Add(-feed.overlap(cfg)); !from.Equal(want) {
				t.Errorf("window after restart starts at %s, want the saved cursor less overlap %s", from, want)
			}
			if n := len(r.savedCheckpoints(t)); n != 1 {
				t.Errorf("state topic has %d checkpoints after a poll that found nothing newer, want still 1", n)
			}
		})
	}
}

func TestCheckpointNotWrittenWhenPublishFails(t *testing.T) {
	r := newRig(t, 10, 5, cybereasontest.Options{})
	cfg := r.config()
	cfg.MalopsTopic = "topic.that.does.not.exist"
	cfg.Checkpoints = r.checkpoints(t)
	stage := r.stage(t, cfg, nil)

	if _, err := stage.CollectMalops(context.Background()); err == nil {
		t.Fatal("CollectMalops to a missing topic succeeded, want an error")
	}

	if saved := r.savedCheckpoints(t); len(saved) != 0 {
		t.Errorf("state topic has %d checkpoints after a failed publish, want none: %+v", len(saved), saved)
	}
}

// failingSave is a checkpoint store whose writes fail.
type failingSave struct {
	source.CheckpointStore
	saves int
}

var errSaveFailed = errors.New("broker unavailable")

func (f *failingSave) Save(context.Context, string, time.Time) error {
	f.saves++
	return errSaveFailed
}

func TestFailedCheckpointFailsPoll(t *testing.T) {
	for _, feed := range alertFeeds() {
		t.Run(feed.name, func(t *testing.T) {
			r := newRig(t, 10, 5, cybereasontest.Options{})
			cfg := r.config()
			cfg.Feeds = []string{feed.name}
			store := &failingSave{CheckpointStore: r.checkpoints(t)}
			cfg.Checkpoints = store
			stage := r.stage(t, cfg, nil)

			firstFrom, _, err := feed.collect(context.Background(), stage)
			if !errors.Is(err, errSaveFailed) {
				t.Fatalf("poll error = %v, want the save error", err)
			}
			secondFrom, _, err := feed.collect(context.Background(), stage)
			if !errors.Is(err, errSaveFailed) {
				t.Fatalf("second poll error = %v, want the save error", err)
			}

			if !secondFrom.Equal(firstFrom) {
				t.Errorf("window start moved from %s to %s after a failed save", firstFrom, secondFrom)
			}
			if store.saves != 2 {
				t.Errorf("%d saves, want 2", store.saves)
			}
			stats := stage.Stats()
			if polls := stats.MalopPolls + stats.MalwarePolls; polls != 0 {
				t.Errorf("complete polls = %d, want 0", polls)
			}
		})
	}
}

func TestRunFailsOnCorruptCheckpoint(t *testing.T) {
	r := newRig(t, 10, 2, cybereasontest.Options{})
	key := tenantID + "/" + source.FeedMalops
	kafkatest.Produce(t, r.brokers, kafka.Message{Topic: stateTopic, Key: []byte(key), Value: []byte(`{"version":1,"feed":`)})
	cfg := r.config()
	cfg.Checkpoints = r.checkpoints(t)
	stage := r.stage(t, cfg, nil)

	err := stage.Run(context.Background(), time.Second)

	if err == nil {
		t.Fatal("Run with a corrupt checkpoint returned nil, want an error")
	}
	for _, want := range []string{stateTopic, key, "invalid JSON"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run error does not contain %q: %v", want, err)
		}
	}
	if stats := stage.Stats(); stats != (source.Stats{}) {
		t.Errorf("stats %+v after a failed restore, want no collection", stats)
	}
}

func TestRunCanceledDuringRestoreReturnsNil(t *testing.T) {
	r := newRig(t, 10, 2, cybereasontest.Options{})
	cfg := r.config()
	cfg.Checkpoints = r.checkpoints(t)
	stage := r.stage(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if err := stage.Run(ctx, time.Second); err != nil {
		t.Errorf("Run stopped before its restore = %v, want nil as for any stop", err)
	}
	if stats := stage.Stats(); stats != (source.Stats{}) {
		t.Errorf("stats %+v after a stop during restore, want no collection", stats)
	}
}
