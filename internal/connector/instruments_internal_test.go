package connector

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/pipeline"
)

func TestDeadLetterReason(t *testing.T) {
	header := func(key, value string) kafka.Header { return kafka.Header{Key: key, Value: []byte(value)} }
	tests := []struct {
		name       string
		msg        kafka.Message
		stage      string
		wantReason string
	}{
		{"schema violation", kafka.Message{Key: []byte("k"), Headers: []kafka.Header{
			header(pipeline.HeaderDLQStage, "enrich"), header(pipeline.HeaderDLQOffset, "7"),
			header(pipeline.HeaderDLQError, "normalize sensor: validate asset record: at '/device': missing property 'uid'")}},
			"enrich", "schema_violation"},
		{"rejected by the broker", kafka.Message{Key: []byte("k"), Headers: []kafka.Header{
			header(pipeline.HeaderDLQStage, "source"),
			header(pipeline.HeaderDLQError, `message to topic "cybereason.raw.sensors" with key "k" (2000000 bytes): too large`)}},
			"source", "rejected_by_broker"},
		{"unreadable console object", kafka.Message{Headers: []kafka.Header{
			header(pipeline.HeaderDLQStage, "source"), header(pipeline.HeaderDLQError, "sensor without sensorId")}},
			"source", "unreadable_object"},
		{"other processing error", kafka.Message{Key: []byte("k"), Headers: []kafka.Header{
			header(pipeline.HeaderDLQStage, "dedupe"), header(pipeline.HeaderDLQOffset, "3"),
			header(pipeline.HeaderDLQError, "read ce_time header: invalid time")}},
			"dedupe", "unprocessable"},
		{"no headers", kafka.Message{}, "unknown", "unprocessable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage, reason := deadLetterReason(&tt.msg)
			if stage != tt.stage {
				t.Errorf("stage = %q, want %q", stage, tt.stage)
			}
			if reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", reason, tt.wantReason)
			}
		})
	}
}
