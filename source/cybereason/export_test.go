package cybereason

import (
	"context"
	"time"
)

// SetClock replaces the clock by which c measures the age of its session.
func SetClock(c *Client, now func() time.Time) { c.now = now }

// SetSleep replaces the wait before a retry.
func SetSleep(c *Client, sleep func(context.Context, time.Duration) error) { c.sleep = sleep }

// SeamProbePage returns the limit and page index of the seam probe at position.
var SeamProbePage = seamProbePage
