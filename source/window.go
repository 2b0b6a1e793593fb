package source

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Window sets the data-time windows of an alert feed. Each window ends at the
// poll time and starts at the feed's cursor (the newest data time delivered)
// less Overlap, so that items the console indexes late are still read. The
// deterministic event ids let dedupe drop what is read twice.
type Window struct {
	// Lookback sets the start of the first window, before now. Required
	// unless Start is set.
	Lookback time.Duration
	// Start, when not zero, is the start of the first window instead.
	Start time.Time
	// Overlap is re-read before the cursor of every later window. Default: 0.
	Overlap time.Duration
}

func (w Window) problems(feed string) []string {
	var problems []string
	if w.Lookback <= 0 && w.Start.IsZero() {
		problems = append(problems, feed+" window: Lookback must be positive when Start is not set")
	}
	if w.Overlap < 0 {
		problems = append(problems, feed+" window: Overlap must not be negative, got "+w.Overlap.String())
	}
	return problems
}

// cursor is the data-time position of one alert feed. It is not safe for
// concurrent use; each feed's collections are serialized by the stage.
type cursor struct {
	feed   string
	window Window
	newest time.Time // newest data time delivered so far
	logger *slog.Logger

	// store keeps newest across restarts under key. A nil store keeps it in
	// memory only.
	store    CheckpointStore
	key      string
	restored bool // the saved cursor was loaded, or there is no store
}

// start returns the start of the next window. The cursor is a console time,
// so when the console's clock runs ahead of this host's, the start is kept
// before now, because the console rejects a window that ends before it
// starts. The items past now are read once this clock gets there.
func (c *cursor) start(now time.Time) time.Time {
	var start time.Time
	switch {
	case !c.newest.IsZero():
		start = c.newest.Add(-c.window.Overlap)
	case !c.window.Start.IsZero():
		start = c.window.Start
	default:
		start = now.Add(-c.window.Lookback)
	}

	if start.After(now) {
		clamped := now.Add(-max(c.window.Overlap, time.Minute))
		c.logger.Warn("cursor is ahead of this host's clock; check both clocks",
			"feed", c.feed, "cursor", c.newest, "now", now, "window_start", clamped)
		start = clamped
	}
	return start
}

// restore sets the cursor to the one saved in the store, the first time it
// is called. Without a saved cursor the first window starts at the window's
// Start or Lookback, as without a store.
func (c *cursor) restore(ctx context.Context) error {
	if c.restored || c.store == nil {
		return nil
	}
	saved, found, err := c.store.Load(ctx, c.key)
	if err != nil {
		return fmt.Errorf("restore %s cursor: %w", c.feed, err)
	}

	c.restored = true
	if !found {
		c.logger.Info("no saved cursor, so the first window starts at the configured start or lookback", "feed", c.feed, "key", c.key)
		return nil
	}
	c.newest = saved
	c.logger.Info("cursor restored", "feed", c.feed, "key", c.key, "cursor", saved)
	return nil
}

// advance moves the cursor to t when t is newer, after saving t in the store.
// When the save fails the cursor stays where it was, so the next window reads
// the same items again. Call it only after every item up to t was
// acknowledged.
func (c *cursor) advance(ctx context.Context, t time.Time) error {
	if !t.After(c.newest) {
		return nil
	}
	if c.store != nil {
		if err := c.store.Save(ctx, c.key, t); err != nil {
			return fmt.Errorf("save %s cursor %s: %w", c.feed, t.Format(time.RFC3339Nano), err)
		}
	}
	c.newest = t
	return nil
}
