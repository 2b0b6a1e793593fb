package enrich

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/oversoc/cybereason-connector/schemas"
)

// tenantPublicDir holds payloads that other integrations published, outside this repository.
const tenantPublicDir = "../../../shared/fixtures/cybereason/tenant-public"

// readFixtureArray reads a JSON array of objects from tenantPublicDir, skipping the test when the
// folder is not there.
func readFixtureArray(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tenantPublicDir, name))
	if os.IsNotExist(err) {
		t.Skipf("published sample payloads not found at %s", tenantPublicDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	objects := make([]map[string]any, 0, len(raw))
	for i, item := range raw {
		object, err := decodeVendorObject(item)
		if err != nil {
			t.Fatalf("%s item %d: %v", name, i, err)
		}
		delete(object, "iconBase64") // the source stage removes it before publishing
		objects = append(objects, object)
	}
	if len(objects) == 0 {
		t.Fatalf("%s holds no objects", name)
	}
	return objects
}

func TestPublishedSamplesProduceValidRecords(t *testing.T) {
	sensors := readFixtureArray(t, "sensors.json")
	malops := readFixtureArray(t, "malops-inbox.json")
	stage := newTestStage(t)
	validator := stage.cfg.Validator

	for i, sensor := range sensors {
		out := processOne(t, stage, sensorMessage(t, sensor))
		if err := validator.Validate(schemas.KindAsset, out.Value); err != nil {
			t.Errorf("sensor %d: %v", i, err)
		}
		asset := decodeAsset(t, out)
		if asset.Device.IP != "" {
			t.Errorf("sensor %d: device.ip = %q from a masked address", i, asset.Device.IP)
		}
		if asset.Device.MAC == "" {
			t.Errorf("sensor %d: no MAC derived from pylumId %q", i, sensor["pylumId"])
		}
	}
	for i, malop := range malops {
		out := processOne(t, stage, malopMessage(t, malop))
		if err := validator.Validate(schemas.KindFinding, out.Value); err != nil {
			t.Errorf("MalOp %d: %v", i, err)
		}
	}

	stats := stage.Stats()
	if stats.Sensors != int64(len(sensors)) || stats.Malops != int64(len(malops)) {
		t.Errorf("stats %+v, want %d sensors and %d MalOps", stats, len(sensors), len(malops))
	}
	if len(stats.UnknownValues) != 0 {
		t.Errorf("unknown vendor values in published samples: %v", stats.UnknownValues)
	}
}
