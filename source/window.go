package source

import (
	"log/slog"
	"time"
)

// Window sets the data-time windows of an alert feed. Each window ends at the
// poll time and starts at the feed's cursor (the newest data time delivered)
// less Overlap, so items the console indexes late are still read; the
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
}

// start returns the start of the next window. The cursor is a console time,
// so when the console's clock runs ahead of this host's, the start is kept
// before now: a window that ends before it starts is rejected by the console,
// and the items past now are read once this clock gets there.
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

// advance moves the cursor to t when t is newer. Call it only after every
// item up to t was acknowledged.
func (c *cursor) advance(t time.Time) {
	if t.After(c.newest) {
		c.newest = t
	}
}
