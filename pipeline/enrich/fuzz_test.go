package enrich

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
)

// FuzzProcess feeds arbitrary values to every route and raw type. Process must return records or
// an error, never panic, and every record it returns must validate.
func FuzzProcess(f *testing.F) {
	for _, name := range []string{"sensor-full.json", "malop-edr.json", "malop-epp.json", "malop-v2.json", "malware.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "")
	}
	f.Add([]byte(`{"sensorId":"a","guid":"a","isolated":"x","machines":[{"guid":1}],"users":[null]}`), "a")
	f.Add([]byte(`{"sensorId":1e400}`), "")
	for _, pair := range []struct{ malop, details, endpoint string }{
		{"malop-edr.json", "crimes-element.json", "/rest/crimes/unified"},
		{"malop-v2.json", "crimes-element.json", "/rest/crimes/unified"},
		{"malop-epp.json", "epp-details.json", "/rest/detection/details"},
	} {
		malop, err := os.ReadFile(filepath.Join("testdata", pair.malop))
		if err != nil {
			f.Fatal(err)
		}
		details, err := os.ReadFile(filepath.Join("testdata", pair.details))
		if err != nil {
			f.Fatal(err)
		}
		wrapper := `{"malop":` + string(malop) + `,"details":` + string(details) + `,"detailsEndpoint":"` + pair.endpoint + `"}`
		f.Add([]byte(wrapper), "")
	}
	f.Add([]byte(`{"malop":{"guid":"a","mitreTechniques":["T1059.001","(T1)"," "]},"details":{"simpleValues":{"managementStatus":{"values":[null,{},"FP"]}},"elementValues":{"affectedMachines":{"elementValues":[{"guid":1},"x"]}}}}`), "a")
	f.Add([]byte(`{"malop":{"guid":"a"},"details":{"guid":"a","machines":[{"pylumId":"p"}],"fileSuspects":[{"sha1String":["x"]}]}}`), "a")
	f.Add([]byte(`{"guid":"m","timestamp":"1e3","score":"NaN","malwareDataModel":{"url":"::"},"detectionValueType":"DVT_DOMAIN","detectionValue":" "}`), "m")

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
			{DefaultSensorsTopic, RawSensorType, "sensorId", schemas.KindAsset},
			{DefaultMalopsTopic, RawMalopType, "guid", schemas.KindFinding},
			{DefaultMalopsTopic, RawMalopV2Type, "guid", schemas.KindFinding},
			{DefaultMalopsTopic, RawMalopDetailedType, "guid", schemas.KindFinding},
			{DefaultMalwareTopic, RawMalwareType, "guid", schemas.KindFinding},
		} {
			msgKey := key
			if object, err := decodeVendorObject(value); err == nil && key == "" {
				msgKey = object.text(route.idField)
				if malop, ok := object["malop"].(map[string]any); ok && route.eventType == RawMalopDetailedType {
					msgKey = vendorObject(malop).text("guid")
				}
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
