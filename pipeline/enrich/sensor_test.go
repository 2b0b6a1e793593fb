package enrich

import (
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/schemas"
)

const fullSensorUID = "cybereason:console.example.net:64b0c0ffee0000000000abcd:PYLUMCLIENT_NORTHWIND_FIN-LT-042_3C52821A9F07"

func TestProcessFullSensorHeaders(t *testing.T) {
	stage := newTestStage(t)
	out := processOne(t, stage, sensorMessage(t, readTestdata(t, "sensor-full.json")))

	if out.Topic != DefaultAssetsTopic {
		t.Errorf("topic = %q, want %q", out.Topic, DefaultAssetsTopic)
	}
	if string(out.Key) != fullSensorUID {
		t.Errorf("key = %q, want %q", out.Key, fullSensorUID)
	}
	id := headerValue(t, out, "ce_id")
	if !regexp.MustCompile("^" + regexp.QuoteMeta(fullSensorUID) + "#[0-9a-f]{16}$").MatchString(id) {
		t.Errorf("ce_id = %q, want <asset_uid>#<16 hex>", id)
	}
	want := map[string]string{
		"ce_specversion": "1.0",
		"ce_source":      testSensorsSource,
		"ce_type":        "com.oversoc.asset.v1",
		"ce_time":        testPollTime,
		"ce_subject":     fullSensorUID,
		"ce_tenant":      testTenant,
		"ce_dataschema":  "https://schemas.oversoc.com/oversoc/1.1.0/asset.schema.json",
		"content-type":   "application/json",
	}
	for key, value := range want {
		if got := headerValue(t, out, key); got != value {
			t.Errorf("header %s = %q, want %q", key, got, value)
		}
	}
	if len(out.Headers) != len(want)+1 {
		t.Errorf("%d headers, want %d", len(out.Headers), len(want)+1)
	}

	asset := decodeAsset(t, out)
	if asset.Metadata.UID != id {
		t.Errorf("metadata.uid = %q, want the ce_id %q", asset.Metadata.UID, id)
	}
	fingerprint, err := schemas.Fingerprint(schemas.KindAsset, out.Value)
	if err != nil {
		t.Fatal(err)
	}
	if id != fullSensorUID+"#"+fingerprint {
		t.Errorf("ce_id = %q, want uid#%s", id, fingerprint)
	}
	if err := stage.cfg.Validator.Validate(schemas.KindAsset, out.Value); err != nil {
		t.Errorf("output does not validate: %v", err)
	}
}

func TestProcessFullSensorFields(t *testing.T) {
	stage := newTestStage(t)
	out := processOne(t, stage, sensorMessage(t, readTestdata(t, "sensor-full.json")))
	record := decodeMap(t, out.Value)

	want := map[string]any{
		"/schema_version":                             "1.1.0",
		"/class_uid":                                  5001,
		"/type_uid":                                   500102,
		"/time":                                       1767225600000,
		"/metadata/version":                           "1.8.0",
		"/metadata/tenant_uid":                        testTenant,
		"/metadata/processed_time":                    1767225605000,
		"/metadata/log_provider":                      "cybereason-connector/0.0.0-test",
		"/metadata/product/name":                      "Cybereason Defense Platform",
		"/metadata/product/version":                   "23.2.140",
		"/asset_uid":                                  fullSensorUID,
		"/device/uid":                                 "64b0c0ffee0000000000abcd:PYLUMCLIENT_NORTHWIND_FIN-LT-042_3C52821A9F07",
		"/device/uid_alt":                             "Qm9vdHN0cmFwMDQy",
		"/device/name":                                "fin-lt-042",
		"/device/hostname":                            "fin-lt-042.corp.northwind.test",
		"/device/domain":                              "corp.northwind.test",
		"/device/type_id":                             0,
		"/device/ip":                                  "10.20.30.42",
		"/device/mac":                                 "3c:52:82:1a:9f:07",
		"/device/network_interfaces/0/ip":             "10.20.30.42",
		"/device/network_interfaces/0/mac":            "3c:52:82:1a:9f:07",
		"/device/os/name":                             "Windows 11",
		"/device/os/type_id":                          100,
		"/device/os/version":                          "11",
		"/device/model":                               "Intel(R) Core(TM) i5-1245U",
		"/device/hw_info/serial_number":               "NW-5CG2041XYZ",
		"/device/first_seen_time":                     1735689600000,
		"/device/last_seen_time":                      1767225590000,
		"/device/is_managed":                          true,
		"/device/is_compliant":                        true,
		"/device/groups/0/uid":                        "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
		"/device/groups/0/name":                       "Finance laptops",
		"/device/org/name":                            "Northwind",
		"/device/org/ou_name":                         "Finance",
		"/device/agent_list/0/uid":                    "PYLUMCLIENT_NORTHWIND_FIN-LT-042_3C52821A9F07",
		"/device/agent_list/0/type_id":                1,
		"/device/agent_list/0/version":                "23.2.140.1",
		"/device/agent_list/0/policies/0/uid":         "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a",
		"/device/agent_list/0/policies/0/name":        "Laptops - prevent",
		"/device/agent_list/0/policies/0/is_applied":  true,
		"/protection/sensor_status":                   "online",
		"/protection/lifecycle_state":                 "active",
		"/protection/service_status":                  "up",
		"/protection/prevention":                      "enabled",
		"/protection/anti_malware":                    "enabled",
		"/protection/anti_malware_mode":               "enabled",
		"/protection/static_analysis_detect":          "detect_only",
		"/protection/static_analysis_prevent":         "enabled",
		"/protection/ransomware_protection":           "enabled",
		"/protection/anti_exploit":                    "enabled",
		"/protection/powershell_protection":           "enabled",
		"/protection/document_protection":             "detect_only",
		"/protection/document_protection_mode":        "moderate",
		"/protection/firewall":                        "disabled",
		"/protection/device_control":                  "enabled",
		"/protection/remote_shell":                    "disabled",
		"/protection/behavioral_execution_prevention": "detect_only",
		"/protection/variant_payload_prevention":      "enabled",
		"/protection/variant_file_prevention":         "enabled",
		"/protection/is_isolated":                     false,
		"/protection/is_outdated":                     false,
		"/protection/is_effective":                    true,
		"/protection/security_level_id":               1,
		"/protection/security_level":                  "Secure",
		"/protection/security_states":                 []any{},
		"/protection/raw/status":                      "Online",
		"/protection/raw/amStatus":                    "AM_QUARANTINE",
		"/protection/raw/isolated":                    "false",
		"/protection/raw/variantFilePreventionMode":   "VFP_M_QUARANTINE",
		"/unmapped/cybereason/siteName":               "Paris",
		"/unmapped/cybereason/siteId":                 3,
		"/unmapped/cybereason/criticalAsset":          true,
		"/unmapped/cybereason/customTags":             "vip,travel",
		"/unmapped/cybereason/upTime":                 86400000,
		"/unmapped/cybereason/avDbVersion":            "91234",
		"/unmapped/cybereason/externalIpAddress":      "203.0.113.17",
	}
	for pointer, value := range want {
		assertAt(t, record, pointer, value)
	}

	cybereason := valueAt(t, record, "/unmapped/cybereason").(map[string]any)
	for _, absent := range []string{"someFieldFromANewerConsole", "serverIp", "privateServerIp", "internalIpAddress", "exitReason", "pendingActions", "sensorArchivedByUser", "deviceType"} {
		if _, ok := cybereason[absent]; ok {
			t.Errorf("unmapped.cybereason has %s, want it left out", absent)
		}
	}
	if len(stage.Stats().UnknownValues) != 0 {
		t.Errorf("unknown values %v, want none", stage.Stats().UnknownValues)
	}
}

func TestProcessSensorStringTypes(t *testing.T) {
	stage := newTestStage(t)
	sensor := readTestdata(t, "sensor-full.json")
	sensor["isolated"] = "true"
	sensor["outdated"] = "FALSE"
	sensor["compliance"] = "false"
	sensor["firstSeenTime"] = "1735689600000"
	sensor["lastPylumUpdateTimestampMs"] = "1767225590000"
	sensor["siteId"] = "3"

	record := decodeMap(t, processOne(t, stage, sensorMessage(t, sensor)).Value)

	assertAt(t, record, "/protection/is_isolated", true)
	assertAt(t, record, "/protection/is_outdated", false)
	assertAt(t, record, "/device/is_compliant", false)
	assertAt(t, record, "/device/agent_list/0/policies/0/is_applied", false)
	assertAt(t, record, "/device/first_seen_time", 1735689600000)
	assertAt(t, record, "/device/last_seen_time", 1767225590000)
	assertAt(t, record, "/protection/raw/isolated", "true")
	assertAt(t, record, "/protection/security_level_id", 2)
}

// TestProcessSensorNullAndEmptyAreAbsent checks that null, "" and a missing field give the same
// record.
func TestProcessSensorNullAndEmptyAreAbsent(t *testing.T) {
	optional := []string{
		"guid", "machineName", "fqdn", "internalIpAddress", "osType", "osVersionType", "deviceModel",
		"serialNumber", "organization", "organizationalUnit", "groupId", "groupName", "policyId", "policyName",
		"version", "consoleVersion", "status", "serviceStatus", "isolated", "outdated", "compliance",
		"firstSeenTime", "lastPylumUpdateTimestampMs", "lastPylumInfoMsgUpdateTime", "preventionStatus",
		"antiMalwareStatus", "amStatus", "staticAnalysisDetectMode", "staticAnalysisPreventMode",
		"ransomwareStatus", "antiExploitStatus", "powerShellStatus", "documentProtectionStatus",
		"documentProtectionMode", "fwStatus", "usbStatus", "remoteShellStatus", "bepMode", "vppMode",
		"variantFilePreventionMode", "siteName", "upTime", "avDbVersion", "customTags",
		"amModeOrigin", "antiMalwareModeOrigin", "staticAnalysisDetectModeOrigin", "staticAnalysisPreventModeOrigin",
		"preventionError",
	}
	variants := map[string]func(map[string]any, string){
		"null":    func(s map[string]any, name string) { s[name] = nil },
		"empty":   func(s map[string]any, name string) { s[name] = "" },
		"blank":   func(s map[string]any, name string) { s[name] = "  " },
		"missing": func(s map[string]any, name string) { delete(s, name) },
	}
	stage := newTestStage(t)
	ids := make(map[string]string)
	for variant, apply := range variants {
		sensor := readTestdata(t, "sensor-full.json")
		for _, name := range optional {
			apply(sensor, name)
		}
		out := processOne(t, stage, sensorMessage(t, sensor))
		ids[variant] = headerValue(t, out, "ce_id")

		record := decodeMap(t, out.Value)
		protection := valueAt(t, record, "/protection").(map[string]any)
		wantKeys := []string{"is_effective", "lifecycle_state", "security_level", "security_level_id", "security_states", "sensor_status"}
		if keys := slices.Sorted(maps.Keys(protection)); !slices.Equal(keys, wantKeys) {
			t.Errorf("%s: protection keys %v, want %v", variant, keys, wantKeys)
		}
		device := valueAt(t, record, "/device").(map[string]any)
		for _, absent := range []string{"uid_alt", "name", "hostname", "ip", "os", "model", "hw_info", "is_compliant", "groups", "org"} {
			if _, ok := device[absent]; ok {
				t.Errorf("%s: device has %s, want it left out", variant, absent)
			}
		}
	}
	for variant, id := range ids {
		if id != ids["missing"] {
			t.Errorf("variant %s has ce_id %s, missing fields give %s", variant, id, ids["missing"])
		}
	}
	if unknown := stage.Stats().UnknownValues; len(unknown) != 0 {
		t.Errorf("unknown values %v, want none", unknown)
	}
}

func TestProcessSensorMinimal(t *testing.T) {
	stage := newTestStage(t)
	record := decodeMap(t, processOne(t, stage, sensorMessage(t, map[string]any{"sensorId": "srv:PYLUMCLIENT_X"})).Value)

	assertAt(t, record, "/device/uid", "srv:PYLUMCLIENT_X")
	assertAt(t, record, "/device/agent_list/0/uid", "srv:PYLUMCLIENT_X")
	assertAt(t, record, "/protection/sensor_status", "unknown")
	assertAt(t, record, "/protection/security_level_id", 0)
	if _, ok := record["unmapped"]; ok {
		t.Errorf("record has unmapped, want none for a sensor without extra fields")
	}
}

func TestProcessSensorMaskedIPs(t *testing.T) {
	tests := []struct {
		name    string
		ip      any
		pylumID string
		wantIP  any // nil: absent
		wantMAC any
		keptIP  any
	}{
		{"masked", "<internal_ip_address>", "PYLUMCLIENT_ACME_HOST_3C52821A9F07", nil, "3c:52:82:1a:9f:07", "<internal_ip_address>"},
		{"loopback", "127.0.0.1", "PYLUMCLIENT_ACME_HOST_3C52821A9F07", nil, "3c:52:82:1a:9f:07", "127.0.0.1"},
		{"masked without MAC", "<ip_address>", "PYLUMCLIENT_ACME_HOST", nil, nil, "<ip_address>"},
		{"number", 42, "PYLUMCLIENT_ACME_HOST", nil, nil, "42"},
		{"ipv6", "2001:db8::42", "PYLUMCLIENT_ACME_HOST", "2001:db8::42", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newTestStage(t)
			sensor := readTestdata(t, "sensor-full.json")
			sensor["internalIpAddress"] = tt.ip
			sensor["pylumId"] = tt.pylumID

			record := decodeMap(t, processOne(t, stage, sensorMessage(t, sensor)).Value)

			assertOptional(t, record, "/device/ip", tt.wantIP)
			assertOptional(t, record, "/device/mac", tt.wantMAC)
			assertOptional(t, record, "/device/network_interfaces/0/ip", tt.wantIP)
			assertOptional(t, record, "/unmapped/cybereason/internalIpAddress", tt.keptIP)
			if tt.wantIP == nil && tt.wantMAC == nil {
				assertOptional(t, record, "/device/network_interfaces", nil)
			}
		})
	}
}

func TestProcessSensorUnknownValues(t *testing.T) {
	stage := newTestStage(t)
	sensor := readTestdata(t, "sensor-full.json")
	sensor["status"] = "Hibernating"
	sensor["serviceStatus"] = "Degraded"
	sensor["preventionStatus"] = "HALF_ON"
	sensor["antiExploitStatus"] = "AE_BETA"
	sensor["documentProtectionMode"] = "DM_EXTREME"
	sensor["isolated"] = "maybe"
	sensor["osType"] = "PLAN9"

	record := decodeMap(t, processOne(t, stage, sensorMessage(t, sensor)).Value)

	assertAt(t, record, "/protection/sensor_status", "unknown")
	assertAt(t, record, "/protection/lifecycle_state", "unknown")
	assertAt(t, record, "/protection/service_status", "unknown")
	assertAt(t, record, "/protection/prevention", "unknown")
	assertAt(t, record, "/protection/anti_exploit", "unknown")
	assertAt(t, record, "/protection/document_protection_mode", "unknown")
	assertOptional(t, record, "/protection/is_isolated", nil)
	assertAt(t, record, "/protection/raw/preventionStatus", "HALF_ON")
	assertAt(t, record, "/protection/raw/isolated", "maybe")
	assertAt(t, record, "/device/os/type_id", 0)

	want := map[string]int64{
		"sensor.status": 1, "sensor.serviceStatus": 1, "sensor.preventionStatus": 1, "sensor.antiExploitStatus": 1,
		"sensor.documentProtectionMode": 1, "sensor.isolated": 1, "sensor.osType": 1,
	}
	if got := stage.Stats().UnknownValues; !reflect.DeepEqual(got, want) {
		t.Errorf("unknown values %v, want %v", got, want)
	}
}

func TestProcessSensorLifecycle(t *testing.T) {
	tests := []struct {
		status, service string
		managed         bool
		states          []any
		effective       bool
		level           int
	}{
		{"Online", "Down", true, []any{stateEntry(5, "Protection malfunction")}, false, 2},
		{"Offline", "Down", true, []any{}, true, 1},
		{"Stale", "Up", true, []any{stateEntry(99, "Sensor stale")}, false, 2},
		{"Archived", "Down", false, []any{stateEntry(99, "Sensor archived")}, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.status+" "+tt.service, func(t *testing.T) {
			stage := newTestStage(t)
			sensor := readTestdata(t, "sensor-full.json")
			sensor["status"] = tt.status
			sensor["serviceStatus"] = tt.service

			record := decodeMap(t, processOne(t, stage, sensorMessage(t, sensor)).Value)

			assertAt(t, record, "/device/is_managed", tt.managed)
			assertAt(t, record, "/protection/security_states", tt.states)
			assertAt(t, record, "/protection/is_effective", tt.effective)
			assertAt(t, record, "/protection/security_level_id", tt.level)
		})
	}
}

func stateEntry(id int, state string) map[string]any {
	return map[string]any{"state_id": json.Number(strconv.Itoa(id)), "state": state}
}

func TestSensorSameInputSameID(t *testing.T) {
	first := newTestStage(t)
	second := newTestStage(t)
	second.cfg.Now = func() time.Time { return testNow().Add(time.Hour) }
	sensor := readTestdata(t, "sensor-full.json")

	a := headerValue(t, processOne(t, first, sensorMessage(t, sensor)), "ce_id")
	b := headerValue(t, processOne(t, first, sensorMessage(t, sensor)), "ce_id")
	c := headerValue(t, processOne(t, second, sensorMessage(t, sensor)), "ce_id")

	if a != b || a != c {
		t.Errorf("ce_ids %s, %s, %s differ for the same input", a, b, c)
	}
}

func TestSensorVolatileChangesKeepID(t *testing.T) {
	changes := map[string]func(map[string]any){
		"lastPylumUpdateTimestampMs": func(s map[string]any) { s["lastPylumUpdateTimestampMs"] = 1767229999000 },
		"Online to Offline":          func(s map[string]any) { s["status"] = "Offline" },
		"Offline with service down": func(s map[string]any) {
			s["status"] = "Offline"
			s["serviceStatus"] = "Down"
			s["disconnected"] = true
		},
		"upTime":            func(s map[string]any) { s["upTime"] = 90000000 },
		"cpu and memory":    func(s map[string]any) { s["cpuUsage"] = 0.9; s["memoryUsage"] = 1 },
		"AV DB version":     func(s map[string]any) { s["avDbVersion"] = "91235"; s["avDbLastUpdateTime"] = 1767220000000 },
		"external IP":       func(s map[string]any) { s["externalIpAddress"] = "198.51.100.99" },
		"disconnection":     func(s map[string]any) { s["disconnectionTime"] = 1767220000000; s["disconnected"] = true },
		"info message time": func(s map[string]any) { s["lastPylumInfoMsgUpdateTime"] = 1767229999000 },
		"scans": func(s map[string]any) {
			s["quickScanStatus"] = "IN_PROGRESS"
			s["lastQuickScheduleScanSuccessTime"] = 1
		},
		"pending actions": func(s map[string]any) { s["pendingActions"] = []any{404432574}; s["actionsInProgress"] = 1 },
	}
	stage := newTestStage(t)
	base := headerValue(t, processOne(t, stage, sensorMessage(t, readTestdata(t, "sensor-full.json"))), "ce_id")
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			sensor := readTestdata(t, "sensor-full.json")
			change(sensor)
			if got := headerValue(t, processOne(t, stage, sensorMessage(t, sensor)), "ce_id"); got != base {
				t.Errorf("ce_id = %s, want %s", got, base)
			}
		})
	}

	t.Run("poll time", func(t *testing.T) {
		msg := sensorMessage(t, readTestdata(t, "sensor-full.json"))
		msg.Headers = rawHeaders(RawSensorType, testSensorsSource, "2026-01-01T06:00:00.000Z")
		if got := headerValue(t, processOne(t, stage, msg), "ce_id"); got != base {
			t.Errorf("ce_id = %s, want %s", got, base)
		}
	})
}

func TestSensorStableChangesAlterID(t *testing.T) {
	changes := map[string]func(map[string]any){
		"prevention disabled":   func(s map[string]any) { s["preventionStatus"] = "DISABLED" },
		"anti-malware mode":     func(s map[string]any) { s["amStatus"] = "AM_DETECT_ONLY" },
		"ransomware":            func(s map[string]any) { s["ransomwareStatus"] = "DETECT_ONLY" },
		"isolated":              func(s map[string]any) { s["isolated"] = true },
		"outdated":              func(s map[string]any) { s["outdated"] = true },
		"archived":              func(s map[string]any) { s["status"] = "Archived" },
		"service down online":   func(s map[string]any) { s["serviceStatus"] = "Down" },
		"unknown feature value": func(s map[string]any) { s["usbStatus"] = "READ_ONLY" },
		"policy":                func(s map[string]any) { s["policyName"] = "Laptops - detect" },
		"internal IP":           func(s map[string]any) { s["internalIpAddress"] = "10.20.30.43" },
		"sensor version":        func(s map[string]any) { s["version"] = "23.2.141.0" },
		"group":                 func(s map[string]any) { s["groupName"] = "Unassigned" },
	}
	stage := newTestStage(t)
	base := headerValue(t, processOne(t, stage, sensorMessage(t, readTestdata(t, "sensor-full.json"))), "ce_id")
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			sensor := readTestdata(t, "sensor-full.json")
			change(sensor)
			if got := headerValue(t, processOne(t, stage, sensorMessage(t, sensor)), "ce_id"); got == base {
				t.Errorf("ce_id stayed %s", got)
			}
		})
	}
}

// TestSensorVolatileFieldsAreListed keeps the copied volatile vendor fields in step with
// schemas.VolatileFields, which the fingerprint uses.
func TestSensorVolatileFieldsAreListed(t *testing.T) {
	listed := schemas.VolatileFields(schemas.KindAsset)
	for _, name := range sensorVolatileFields() {
		if !slices.Contains(listed, "/unmapped/cybereason/"+name) {
			t.Errorf("volatile sensor field %s is not in schemas.VolatileFields", name)
		}
	}
	for _, name := range sensorStableFields() {
		if slices.Contains(listed, "/unmapped/cybereason/"+name) {
			t.Errorf("stable sensor field %s is in schemas.VolatileFields", name)
		}
	}
}

// decodeMap decodes a record with numbers as json.Number.
func decodeMap(t *testing.T, data []byte) map[string]any {
	t.Helper()
	record, err := decodeVendorObject(data)
	if err != nil {
		t.Fatal(err)
	}
	return record
}

// lookup returns the value at a JSON pointer of object keys and array indexes.
func lookup(record map[string]any, pointer string) (any, bool) {
	var current any = record
	for _, token := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		switch v := current.(type) {
		case map[string]any:
			next, ok := v[token]
			if !ok {
				return nil, false
			}
			current = next
		case []any:
			i, err := strconv.Atoi(token)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			current = v[i]
		default:
			return nil, false
		}
	}
	return current, true
}

func valueAt(t *testing.T, record map[string]any, pointer string) any {
	t.Helper()
	value, ok := lookup(record, pointer)
	if !ok {
		t.Fatalf("record has no %s", pointer)
	}
	return value
}

// assertAt compares the value at pointer with want after a JSON round trip, so that ints compare
// equal to json.Number.
func assertAt(t *testing.T, record map[string]any, pointer string, want any) {
	t.Helper()
	got, ok := lookup(record, pointer)
	if !ok {
		t.Errorf("%s is missing, want %v", pointer, want)
		return
	}
	if g, w := canonical(t, got), canonical(t, want); g != w {
		t.Errorf("%s = %s, want %s", pointer, g, w)
	}
}

// assertOptional checks the value at pointer, or that it is absent when want is nil.
func assertOptional(t *testing.T, record map[string]any, pointer string, want any) {
	t.Helper()
	if want != nil {
		assertAt(t, record, pointer, want)
		return
	}
	if got, ok := lookup(record, pointer); ok {
		t.Errorf("%s = %v, want it absent", pointer, got)
	}
}

func canonical(t *testing.T, value any) string {
	t.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
