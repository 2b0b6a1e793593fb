package pipeline

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestReaderErrorLoggerLevels(t *testing.T) {
	tests := []struct {
		name, format string
		args         []any
		wantLevel    string
	}{
		{"fetch timeout", "the kafka reader got an unknown error reading partition %d of %s at offset %d: %s",
			[]any{0, "t", 5, "read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout"}, "DEBUG"},
		{"group sync timeout", "Failed to sync group %s: %v",
			[]any{"g", "read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout"}, "WARN"},
		{"other error", "the kafka reader got an unknown error reading partition %d of %s at offset %d: %s",
			[]any{0, "t", 5, "unexpected EOF"}, "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))

			readerErrorLogger(logger, "topic", "t").Printf(tt.format, tt.args...)

			line := out.String()
			if !strings.Contains(line, "level="+tt.wantLevel) {
				t.Errorf("logged %q, want level %s", line, tt.wantLevel)
			}
			if !strings.Contains(line, "component=\"kafka-go reader\"") || !strings.Contains(line, "topic=t") {
				t.Errorf("logged %q, want the component and topic attributes", line)
			}
		})
	}
}
