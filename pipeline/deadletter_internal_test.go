package pipeline

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

func TestDeadLetterErrorHeader(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		want   string // the dlq_error header
	}{
		{"short reason kept", "value is poison", "value is poison"},
		{"long reason cut", strings.Repeat("x", maxErrorBytes+10), strings.Repeat("x", maxErrorBytes) + "..."},
		// "é" is two bytes, so byte maxErrorBytes falls inside the last rune that fits.
		{"cut between runes", "a" + strings.Repeat("é", maxErrorBytes), "a" + strings.Repeat("é", maxErrorBytes/2-1) + "..."},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			input := &kafka.Message{Topic: "in", Partition: 2, Offset: 7, Key: []byte("k"), Value: []byte("v"),
				Headers: []kafka.Header{{Key: "ce_id", Value: []byte("id")}, {Key: HeaderDLQError, Value: []byte("earlier")}}}

			letter := deadLetter(input, "enrich", errors.New(test.reason))

			var reasons []string
			for _, h := range letter.Headers {
				if h.Key == HeaderDLQError {
					reasons = append(reasons, string(h.Value))
				}
			}
			if len(reasons) != 1 {
				t.Fatalf("dead letter has %d dlq_error headers, want 1 (the earlier one dropped)", len(reasons))
			}
			if !utf8.ValidString(reasons[0]) {
				t.Errorf("dlq_error is not valid UTF-8: %q", reasons[0][len(reasons[0])-8:])
			}
			if reasons[0] != test.want {
				t.Errorf("dlq_error has %d bytes, want %d", len(reasons[0]), len(test.want))
			}
		})
	}
}
