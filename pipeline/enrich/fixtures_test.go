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

// readFixtureObject reads a JSON object from tenantPublicDir, skipping the test when the folder is
// not there.
func readFixtureObject(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tenantPublicDir, name))
	if os.IsNotExist(err) {
		t.Skipf("published sample payloads not found at %s", tenantPublicDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	object, err := decodeVendorObject(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return object
}

// fixtureNames lists the JSON files of a folder of tenantPublicDir.
func fixtureNames(t *testing.T, folder string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(tenantPublicDir, folder, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skipf("no published samples in %s", filepath.Join(tenantPublicDir, folder))
	}
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		names = append(names, filepath.Join(folder, filepath.Base(p)))
	}
	return names
}

// crimesResponseElements returns the MalOp elements of a crimes/unified response, keyed by MalOp guid.
func crimesResponseElements(t *testing.T, response map[string]any) map[string]any {
	t.Helper()
	data, _ := response["data"].(map[string]any)
	elements, _ := data["resultIdToElementDataMap"].(map[string]any)
	if len(elements) == 0 {
		t.Fatal("crimes/unified response has no data.resultIdToElementDataMap")
	}
	return elements
}

func TestPublishedNewShapesProduceValidRecords(t *testing.T) {
	v2 := readFixtureArray(t, "malops-v2.json")
	malware := readFixtureArray(t, "malware.json")
	stage := newTestStage(t)
	validator := stage.cfg.Validator

	for i, malop := range v2 {
		guid, _ := malop["guid"].(string)
		out := processOne(t, stage, typedMalopMessage(t, RawMalopV2Type, guid, malop))
		if err := validator.Validate(schemas.KindFinding, out.Value); err != nil {
			t.Errorf("v2 MalOp %d: %v", i, err)
		}
	}
	for i, alert := range malware {
		out := processOne(t, stage, malwareMessage(t, alert))
		if err := validator.Validate(schemas.KindFinding, out.Value); err != nil {
			t.Errorf("malware %d: %v", i, err)
		}
	}
	stats := stage.Stats()
	if stats.Malops != int64(len(v2)) || stats.Malware != int64(len(malware)) {
		t.Errorf("stats %+v, want %d MalOps and %d malware alerts", stats, len(v2), len(malware))
	}
	if len(stats.UnknownValues) != 0 {
		t.Errorf("unknown vendor values in published samples: %v", stats.UnknownValues)
	}
}

// TestPublishedDetailsProduceValidRecords wraps the published details the way the source stage
// does: the inbox MalOp of the same guid with the crimes/unified element or the detection/details
// response. Elements of the multi-MalOp crimes/unified response whose MalOp is not in the inbox
// sample get a MalOp that holds only the guid.
func TestPublishedDetailsProduceValidRecords(t *testing.T) {
	inbox := make(map[string]map[string]any)
	for _, malop := range readFixtureArray(t, "malops-inbox.json") {
		guid, _ := malop["guid"].(string)
		inbox[guid] = malop
	}
	malopFor := func(guid string) map[string]any {
		if malop, ok := inbox[guid]; ok {
			return malop
		}
		return map[string]any{"guid": guid}
	}
	type detailedCase struct {
		name     string
		malop    map[string]any
		details  map[string]any
		endpoint string
	}
	var cases []detailedCase
	for _, name := range fixtureNames(t, "crimes") {
		for guid, element := range crimesResponseElements(t, readFixtureObject(t, name)) {
			cases = append(cases, detailedCase{name, malopFor(guid), element.(map[string]any), "/rest/crimes/unified"})
		}
	}
	for guid, element := range crimesResponseElements(t, readFixtureObject(t, "crimes-unified-MalopProcess.json")) {
		cases = append(cases, detailedCase{"crimes-unified-MalopProcess.json " + guid, malopFor(guid), element.(map[string]any), "/rest/crimes/unified"})
	}
	for _, name := range fixtureNames(t, "details") {
		details := readFixtureObject(t, name)
		guid, _ := details["guid"].(string)
		cases = append(cases, detailedCase{name, malopFor(guid), details, "/rest/detection/details"})
	}

	stage := newTestStage(t)
	for _, c := range cases {
		out := processOne(t, stage, detailedMessage(t, c.malop, RawMalopType, c.details, c.endpoint))
		if err := stage.cfg.Validator.Validate(schemas.KindFinding, out.Value); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		finding := decodeFinding(t, out)
		if len(finding.Devices) == 0 {
			t.Errorf("%s: no devices", c.name)
		}
		if _, ok := finding.Unmapped["cybereason"].(map[string]any)["details"]; !ok {
			t.Errorf("%s: details not applied", c.name)
		}
	}
	stats := stage.Stats()
	if stats.DetailsFailed != 0 || len(stats.UnknownValues) != 0 {
		t.Errorf("details failed %d, unknown values %v; want none", stats.DetailsFailed, stats.UnknownValues)
	}
}
