package enrich

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
)

// FuzzProcess feeds arbitrary values to both routes. Process must return records or an error,
// never panic, and every record it returns must validate.
func FuzzProcess(f *testing.F) {
	for _, name := range []string{"sensor-full.json", "malop-edr.json", "malop-epp.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "")
	}
	f.Add([]byte(`{"sensorId":"a","guid":"a","isolated":"x","machines":[{"guid":1}],"users":[null]}`), "a")
	f.Add([]byte(`{"sensorId":1e400}`), "")

	validator, err := schemas.NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	stage, err := New(Config{Validator: validator}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value []byte, key string) {
		for _, route := range []struct {
			topic, eventType, idField string
			kind                      schemas.Kind
		}{
			{DefaultSensorsTopic, rawSensorType, "sensorId", schemas.KindAsset},
			{DefaultMalopsTopic, rawMalopType, "guid", schemas.KindFinding},
		} {
			msgKey := key
			if object, err := decodeVendorObject(value); err == nil && key == "" {
				msgKey = object.text(route.idField)
			}
			msg := kafka.Message{
				Topic:   route.topic,
				Key:     []byte(msgKey),
				Value:   value,
				Headers: rawHeaders(route.eventType, testSensorsSource, testPollTime),
			}
			out, err := stage.Process(context.Background(), msg)
			if err != nil {
				continue
			}
			for _, record := range out {
				if err := validator.Validate(route.kind, record.Value); err != nil {
					t.Errorf("returned record does not validate: %v", err)
				}
			}
		}
	})
}
