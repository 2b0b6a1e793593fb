package sink

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestBackoffDelayStaysInRange(t *testing.T) {
	first, limit := 100*time.Millisecond, 10*time.Second
	for attempt := 1; attempt <= 30; attempt++ {
		ceiling := min(first<<min(attempt-1, 20), limit)
		for range 50 {
			d := backoffDelay(attempt, first, limit)
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("attempt %d: delay %s outside [%s, %s]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
}

func TestMessageSizeCountsHeaders(t *testing.T) {
	plain := kafka.Message{Key: []byte("key"), Value: []byte("value")}
	withHeader := plain
	withHeader.Headers = []kafka.Header{{Key: "ce_id", Value: []byte("abc")}}

	if got, want := messageSize(&plain), int64(22+3+5+1); got != want {
		t.Errorf("size without headers %d, want %d", got, want)
	}
	// header count, then the key and the value each with a 1-byte length
	if got, want := messageSize(&withHeader), int64(22+3+5+1+1+5+1+3); got != want {
		t.Errorf("size with one header %d, want %d", got, want)
	}
}
