package enrich

import (
	"context"
	"testing"
)

// BenchmarkProcessSensor measures one sensor of about 3.5 KB through mapping, fingerprinting and
// schema validation.
func BenchmarkProcessSensor(b *testing.B) {
	stage := newTestStage(b)
	msg := sensorMessage(b, readTestdata(b, "sensor-full.json"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stage.Process(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcessMalop measures one EDR MalOp with two machines and two users.
func BenchmarkProcessMalop(b *testing.B) {
	stage := newTestStage(b)
	msg := malopMessage(b, readTestdata(b, "malop-edr.json"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stage.Process(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
}
