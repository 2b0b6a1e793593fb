package cybereasontest_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// publicTenantDir is a tenant of published console payloads, kept outside the repository.
const publicTenantDir = "../../../../shared/fixtures/cybereason/tenant-public"

var testNow = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

// sensorFields are the members every generated sensor must have.
var sensorFields = []string{
	"sensorId", "pylumId", "guid", "fqdn", "machineName", "internalIpAddress", "externalIpAddress",
	"siteName", "siteId", "ransomwareStatus", "preventionStatus", "isolated", "disconnectionTime",
	"lastPylumInfoMsgUpdateTime", "lastPylumUpdateTimestampMs", "status", "serviceStatus", "onlineTimeMS",
	"offlineTimeMS", "staleTimeMS", "archiveTimeMs", "statusTimeMS", "lastStatusAction",
	"archivedOrUnarchiveComment", "sensorArchivedByUser", "serverName", "serverId", "serverIp",
	"privateServerIp", "collectiveUuid", "osType", "osVersionType", "collectionStatus", "version",
	"consoleVersion", "firstSeenTime", "upTime", "cpuUsage", "memoryUsage", "outdated", "amStatus",
	"amModeOrigin", "avDbVersion", "avDbLastUpdateTime", "powerShellStatus", "remoteShellStatus",
	"usbStatus", "fwStatus", "antiExploitStatus", "documentProtectionStatus", "documentProtectionMode",
	"serialNumber", "deviceModel", "organizationalUnit", "antiMalwareStatus", "antiMalwareModeOrigin",
	"organization", "proxyAddress", "preventionError", "exitReason", "actionsInProgress", "pendingActions",
	"lastUpgradeResult", "department", "location", "criticalAsset", "deviceType", "customTags",
	"lastUpgradeSteps", "disconnected", "staticAnalysisDetectMode", "staticAnalysisDetectModeOrigin",
	"staticAnalysisPreventMode", "staticAnalysisPreventModeOrigin", "collectionComponents",
	"sensorLastUpdate", "fullScanStatus", "quickScanStatus", "lastFullScheduleScanSuccessTime",
	"lastQuickScheduleScanSuccessTime", "policyName", "deliveryTime", "policyId", "compliance", "groupId",
	"groupName", "groupStickiness", "groupStickinessLabel", "bepMode", "vppMode", "variantFilePreventionMode",
}

var (
	sensorIDPattern = regexp.MustCompile(`^[0-9a-f]{24}:PYLUMCLIENT_[A-Z]+_[A-Z0-9_-]+_[0-9A-F]{12}$`)
	guidPattern     = regexp.MustCompile(`^(-?[0-9]+\.[0-9]+|[A-Za-z0-9_-]{16})$`)
)

// decodeObjects decodes JSON objects into maps, keeping numbers as json.Number.
func decodeObjects(t *testing.T, raws []json.RawMessage) []map[string]any {
	t.Helper()
	objects := make([]map[string]any, len(raws))
	for i, raw := range raws {
		decoder := json.NewDecoder(bytes.NewReader(raw))
		decoder.UseNumber()
		if err := decoder.Decode(&objects[i]); err != nil {
			t.Fatalf("object %d is not a JSON object: %v", i, err)
		}
	}
	return objects
}

func sameJSON(a, b json.RawMessage) bool {
	return bytes.Equal(a, b)
}

func byKey(t *testing.T, objects []map[string]any, key string) map[string]map[string]any {
	t.Helper()
	indexed := make(map[string]map[string]any, len(objects))
	for _, object := range objects {
		id, ok := object[key].(string)
		if !ok {
			t.Fatalf("object without a string %s: %v", key, object)
		}
		indexed[id] = object
	}
	return indexed
}

func millis(t *testing.T, value any) int64 {
	t.Helper()
	number, ok := value.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", value, value)
	}
	ms, err := number.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer: %v", value, err)
	}
	return ms
}

func TestGenerateTenantIsDeterministic(t *testing.T) {
	first := cybereasontest.GenerateTenant(42, 300, 12, testNow)
	second := cybereasontest.GenerateTenant(42, 300, 12, testNow)
	other := cybereasontest.GenerateTenant(43, 300, 12, testNow)

	if !slices.EqualFunc(first.Sensors(), second.Sensors(), sameJSON) {
		t.Error("two tenants of seed 42 have different sensors")
	}
	if !slices.EqualFunc(first.Malops(), second.Malops(), sameJSON) {
		t.Error("two tenants of seed 42 have different MalOps")
	}
	if slices.Equal(first.SensorIDs(), other.SensorIDs()) {
		t.Error("seeds 42 and 43 generated the same sensorIds")
	}
}

func TestGenerateTenantSensors(t *testing.T) {
	const count = 600
	tenant := cybereasontest.GenerateTenant(7, count, 0, testNow)
	raws := tenant.Sensors()
	if len(raws) != count {
		t.Fatalf("got %d sensors, want %d", len(raws), count)
	}

	totalSize := 0
	statuses, osTypes := map[string]int{}, map[string]int{}
	seenIDs, seenGUIDs := map[string]bool{}, map[string]bool{}
	for i, sensor := range decodeObjects(t, raws) {
		totalSize += len(raws[i])
		for _, field := range sensorFields {
			if _, ok := sensor[field]; !ok {
				t.Fatalf("sensor %d has no %s member", i, field)
			}
		}

		id := sensor["sensorId"].(string)
		if !sensorIDPattern.MatchString(id) {
			t.Errorf("sensorId %q does not have the <serverId>:PYLUMCLIENT_<ORG>_<HOST>_<MAC> form", id)
		}
		if !strings.HasSuffix(id, ":"+sensor["pylumId"].(string)) {
			t.Errorf("sensorId %q does not end with its pylumId %q", id, sensor["pylumId"])
		}
		if guid := sensor["guid"].(string); !guidPattern.MatchString(guid) || seenGUIDs[guid] {
			t.Errorf("guid %q is malformed or repeated", guid)
		} else {
			seenGUIDs[guid] = true
		}
		if seenIDs[id] {
			t.Errorf("sensorId %q is repeated", id)
		}
		seenIDs[id] = true

		if address, err := netip.ParseAddr(sensor["internalIpAddress"].(string)); err != nil || !address.IsPrivate() {
			t.Errorf("internalIpAddress %v is not a private IPv4 address", sensor["internalIpAddress"])
		}
		for _, field := range []string{"firstSeenTime", "lastPylumUpdateTimestampMs", "disconnectionTime", "deliveryTime"} {
			if ms := millis(t, sensor[field]); ms <= 0 || ms > testNow.UnixMilli() {
				t.Errorf("sensor %s: %s %d is not an epoch-milliseconds time before now", id, field, ms)
			}
		}
		for _, field := range []string{"isolated", "disconnected", "outdated", "groupStickiness"} {
			if _, ok := sensor[field].(bool); !ok {
				t.Errorf("sensor %s: %s is %T, want a JSON boolean", id, field, sensor[field])
			}
		}
		statuses[sensor["status"].(string)]++
		osTypes[sensor["osType"].(string)]++
	}

	for _, status := range []string{"Online", "Offline", "Stale", "Archived"} {
		if statuses[status] == 0 {
			t.Errorf("no sensor has status %s: %v", status, statuses)
		}
	}
	for _, osType := range []string{"WINDOWS", "LINUX", "OSX"} {
		if osTypes[osType] == 0 {
			t.Errorf("no sensor has osType %s: %v", osType, osTypes)
		}
	}
	if average := totalSize / count; average < 2500 || average > 3500 {
		t.Errorf("average sensor size is %d bytes, want about 3 KB", average)
	}
}

func TestGenerateTenantMalops(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(7, 200, 60, testNow)
	sensorGUIDs := map[string]bool{}
	for _, sensor := range decodeObjects(t, tenant.Sensors()) {
		sensorGUIDs[sensor["guid"].(string)] = true
	}

	kinds, withIcon := map[bool]int{}, 0
	earliest := testNow.Add(-8 * 24 * time.Hour).UnixMilli()
	for _, malop := range decodeObjects(t, tenant.Malops()) {
		guid := malop["guid"].(string)
		if malop["@class"] != ".MalopInboxModel" {
			t.Errorf("MalOp %s: @class is %v", guid, malop["@class"])
		}
		creation, lastUpdate := millis(t, malop["creationTime"]), millis(t, malop["lastUpdateTime"])
		if creation < earliest || creation > lastUpdate || lastUpdate > testNow.UnixMilli() {
			t.Errorf("MalOp %s: creationTime %d and lastUpdateTime %d are not ordered within the last days", guid, creation, lastUpdate)
		}
		machines := malop["machines"].([]any)
		if len(machines) == 0 {
			t.Errorf("MalOp %s has no machines", guid)
		}
		for _, machine := range machines {
			if machineGUID := machine.(map[string]any)["guid"].(string); !sensorGUIDs[machineGUID] {
				t.Errorf("MalOp %s: machine guid %s is not a sensor's guid", guid, machineGUID)
			}
		}
		if _, ok := malop["users"].([]any); !ok {
			t.Errorf("MalOp %s: users is not an array", guid)
		}
		if _, ok := malop["labels"].([]any); !ok {
			t.Errorf("MalOp %s: labels is not an array", guid)
		}
		kinds[malop["edr"].(bool)]++
		if malop["iconBase64"] != "" {
			withIcon++
		}
	}
	if kinds[true] == 0 || kinds[false] == 0 {
		t.Errorf("MalOps by edr flag: %v, want both EDR and EPP MalOps", kinds)
	}
	if withIcon == 0 {
		t.Error("no MalOp has a non-empty iconBase64")
	}
	if oldest := tenant.OldestMalopTime(); oldest.Before(time.UnixMilli(earliest)) || oldest.After(testNow) {
		t.Errorf("OldestMalopTime %s is not within the last days before %s", oldest, testNow)
	}
}

func TestLoadTenantPublicFixture(t *testing.T) {
	if _, err := os.Stat(publicTenantDir); err != nil {
		t.Skipf("the published tenant is not available at %s: %v", publicTenantDir, err)
	}

	tenant, err := cybereasontest.LoadTenant(publicTenantDir)
	if err != nil {
		t.Fatalf("LoadTenant: %v", err)
	}

	for _, file := range []struct {
		name   string
		loaded []json.RawMessage
	}{
		{cybereasontest.SensorsFile, tenant.Sensors()},
		{cybereasontest.MalopsFile, tenant.Malops()},
	} {
		data, err := os.ReadFile(filepath.Join(publicTenantDir, file.name))
		if err != nil {
			t.Fatal(err)
		}
		var original []json.RawMessage
		if err := json.Unmarshal(data, &original); err != nil {
			t.Fatal(err)
		}
		// The MalOps of the file come first, followed by those that only the v2 file has.
		if len(file.loaded) < len(original) || len(original) == 0 {
			t.Fatalf("%s: loaded %d objects, the file has %d", file.name, len(file.loaded), len(original))
		}
		for i := range original {
			var compact bytes.Buffer
			if err := json.Compact(&compact, original[i]); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(file.loaded[i], compact.Bytes()) {
				t.Errorf("%s: object %d changed when loaded:\n got %s\nwant %s", file.name, i, file.loaded[i], compact.Bytes())
			}
		}
	}
	if ids := tenant.SensorIDs(); !strings.Contains(ids[0], ":PYLUMCLIENT_") {
		t.Errorf("first sensorId %q is not a sensorId", ids[0])
	}
	if tenant.OldestMalopTime().IsZero() {
		t.Error("OldestMalopTime is zero for a tenant with MalOps")
	}
}

func TestLoadTenantErrors(t *testing.T) {
	const goodSensors = `[{"sensorId":"a:PYLUMCLIENT_X_H_000000000001","status":"Online"}]`
	const goodMalops = `[{"guid":"m1","creationTime":1,"lastUpdateTime":2}]`
	tests := []struct {
		name    string
		sensors string // "" leaves the file out
		malops  string
		want    string
	}{
		{"missing sensors file", "", goodMalops, cybereasontest.SensorsFile},
		{"missing malops file", goodSensors, "", cybereasontest.MalopsFile},
		{"sensors not an array", `{"sensors":[]}`, goodMalops, "expected a JSON array of objects"},
		{"sensor not an object", `[1]`, goodMalops, "element 0 is not a JSON object"},
		{"sensor without sensorId", `[{"status":"Online"}]`, goodMalops, "sensorId is missing"},
		{"sensorId not a string", `[{"sensorId":5}]`, goodMalops, "not a non-empty string"},
		{"duplicate sensorId", `[{"sensorId":"a"},{"sensorId":"a"}]`, goodMalops, `element 1: duplicate sensorId "a"`},
		{"malop without guid", goodSensors, `[{"creationTime":1}]`, "guid"},
		{"malop without times", goodSensors, `[{"guid":"m1"}]`, "neither creationTime nor lastUpdateTime"},
		{"malop with a bad time", goodSensors, `[{"guid":"m1","creationTime":"soon"}]`, "creationTime"},
		{"duplicate malop", goodSensors, `[{"guid":"m1","creationTime":1},{"guid":"m1","creationTime":1}]`, `duplicate guid "m1"`},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, cybereasontest.SensorsFile, test.sensors)
			writeFile(t, dir, cybereasontest.MalopsFile, test.malops)

			_, err := cybereasontest.LoadTenant(dir)
			if err == nil {
				t.Fatal("LoadTenant returned no error")
			}
			if !strings.Contains(err.Error(), test.want) {
				t.Errorf("error %q does not contain %q", err, test.want)
			}
		})
	}
}

// writeFile writes content to dir/name, or nothing when content is empty.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if content == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
