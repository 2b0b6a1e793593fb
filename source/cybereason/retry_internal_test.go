package cybereason

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{"missing", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"seconds with spaces", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"HTTP date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"HTTP date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"invalid", "soon", 0},
		{"huge, capped at a day", "999999999999", 24 * time.Hour},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if got := parseRetryAfter(test.header, now); got != test.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", test.header, got, test.want)
			}
		})
	}
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	policy := retryPolicy{maxRetries: 10, minWait: time.Second, maxWait: 60 * time.Second}
	for retry := 1; retry <= 10; retry++ {
		ceiling := min(time.Second<<(retry-1), 60*time.Second)
		for range 100 {
			if wait := policy.backoff(retry); wait < ceiling/2 || wait > ceiling {
				t.Fatalf("backoff(%d) = %s, want %s to %s", retry, wait, ceiling/2, ceiling)
			}
		}
	}
}

func TestSleepContextEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepContext(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepContext = %v, want context.Canceled", err)
	}
}

func TestCheckEnvelope(t *testing.T) {
	for _, status := range []string{"", "SUCCESS", "success"} {
		if err := checkEnvelope("POST /rest/x", status, ""); err != nil {
			t.Errorf("checkEnvelope(%q) = %v, want nil", status, err)
		}
	}
	err := checkEnvelope("POST /rest/x", "QUERY_LIMIT_CROSSED", "too\nmany   results")
	var envelopeErr *EnvelopeError
	if !errors.As(err, &envelopeErr) {
		t.Fatalf("checkEnvelope = %v, want an *EnvelopeError", err)
	}
	if envelopeErr.Message != "too many results" {
		t.Errorf("Message = %q, want whitespace collapsed", envelopeErr.Message)
	}
}
