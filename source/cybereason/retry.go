package cybereason

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryPolicy decides whether and how long to wait before repeating a call that failed with a
// 429 or 5xx response.
type retryPolicy struct {
	maxRetries int // 0 disables retries
	minWait    time.Duration
	maxWait    time.Duration
}

// backoff returns the wait before retry number retry (1 for the first retry): minWait doubled
// for each earlier retry, capped at maxWait, then lowered by up to half at random, so that
// clients throttled together do not retry together.
func (p retryPolicy) backoff(retry int) time.Duration {
	wait := p.minWait
	for i := 1; i < retry && wait < p.maxWait; i++ {
		wait *= 2
	}
	wait = min(wait, p.maxWait)
	half := wait / 2
	if half <= 0 {
		return wait
	}
	return wait - rand.N(half+1)
}

// validateRetries names the invalid retry settings of cfg.
func (cfg Config) validateRetries() []error {
	var errs []error
	if cfg.RetryBackoffMin < 0 {
		errs = append(errs, fmt.Errorf("RetryBackoffMin %s is negative; use 0 for the default %s", cfg.RetryBackoffMin, DefaultRetryBackoffMin))
	}
	if cfg.RetryBackoffMax < 0 {
		errs = append(errs, fmt.Errorf("RetryBackoffMax %s is negative; use 0 for the default %s", cfg.RetryBackoffMax, DefaultRetryBackoffMax))
	}
	if cfg.RetryBackoffMin > 0 && cfg.RetryBackoffMax > 0 && cfg.RetryBackoffMin > cfg.RetryBackoffMax {
		errs = append(errs, fmt.Errorf("RetryBackoffMin %s is greater than RetryBackoffMax %s", cfg.RetryBackoffMin, cfg.RetryBackoffMax))
	}
	return errs
}

// doWithRetries runs call, and repeats it after a wait while it fails with a 429 or 5xx
// response and retries remain. The request slot is free during the wait.
func (c *Client) doWithRetries(ctx context.Context, call restCall) error {
	for retry := 1; ; retry++ {
		err := c.doWithSession(ctx, call)

		var statusErr *StatusError
		if !errors.As(err, &statusErr) || !statusErr.Temporary() {
			return err
		}
		if retry > c.retry.maxRetries {
			if c.retry.maxRetries == 0 {
				return err
			}
			return fmt.Errorf("%w (gave up after %d attempts)", err, retry)
		}

		wait := c.retry.backoff(retry)
		if statusErr.RetryAfter > c.retry.maxWait {
			return fmt.Errorf("%w (the console asked to wait %s before a retry, longer than RetryBackoffMax %s)",
				err, statusErr.RetryAfter, c.retry.maxWait)
		}
		wait = max(wait, statusErr.RetryAfter)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			// The retry could not run before the deadline, so waiting would only hold the caller.
			return fmt.Errorf("%w (not retried: the wait of %s before retry %d ends after the call's deadline)", err, wait, retry)
		}

		c.logger.Warn("Cybereason console request failed; retrying", "endpoint", call.name(), "status", statusErr.StatusCode,
			"attempt", retry, "max_retries", c.retry.maxRetries, "wait", wait.String(), "retry_after", statusErr.RetryAfter.String())
		if sleepErr := c.sleep(ctx, wait); sleepErr != nil {
			return fmt.Errorf("%w (stopped waiting %s before retry %d: %w)", err, wait, retry, sleepErr)
		}
	}
}

// parseRetryAfter reads a Retry-After header, in seconds or as an HTTP date. It returns 0 for a
// missing or invalid header and for a date in the past.
func parseRetryAfter(header string, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(header, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		return time.Duration(min(seconds, int64(24*time.Hour/time.Second))) * time.Second
	}
	if date, err := http.ParseTime(header); err == nil {
		return max(date.Sub(now), 0)
	}
	return 0
}

// sleepContext waits for d, or returns ctx's error when ctx ends first.
func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
