package enrich

import (
	"reflect"
	"testing"

	"github.com/oversoc/cybereason-connector/schemas"
)

const edrFindingUID = "cybereason:console.example.net:malop:AAAAbWFsb3AwMDAx"

func TestProcessEDRMalop(t *testing.T) {
	stage := newTestStage(t)
	out := processOne(t, stage, malopMessage(t, readTestdata(t, "malop-edr.json")))

	if out.Topic != DefaultFindingsTopic || string(out.Key) != edrFindingUID {
		t.Errorf("topic %q key %q, want %q %q", out.Topic, out.Key, DefaultFindingsTopic, edrFindingUID)
	}
	headers := map[string]string{
		"ce_type":       "com.oversoc.finding.v1",
		"ce_source":     testMalopsSource,
		"ce_time":       "2025-12-30T13:15:00.000Z",
		"ce_subject":    edrFindingUID,
		"ce_dataschema": "https://schemas.oversoc.com/oversoc/1.1.0/finding.schema.json",
	}
	for key, value := range headers {
		if got := headerValue(t, out, key); got != value {
			t.Errorf("header %s = %q, want %q", key, got, value)
		}
	}
	finding := decodeFinding(t, out)
	if finding.Metadata.UID != headerValue(t, out, "ce_id") {
		t.Errorf("metadata.uid %q differs from ce_id %q", finding.Metadata.UID, headerValue(t, out, "ce_id"))
	}

	record := decodeMap(t, out.Value)
	want := map[string]any{
		"/class_uid":                            2004,
		"/activity_id":                          1,
		"/type_uid":                             200401,
		"/is_alert":                             true,
		"/time":                                 1767100000000,
		"/severity_id":                          4,
		"/severity":                             "High",
		"/status_id":                            1,
		"/status":                               "New",
		"/status_detail":                        "Active",
		"/priority_id":                          3,
		"/priority":                             "High",
		"/verdict_id":                           0,
		"/metadata/profiles":                    []any{"incident"},
		"/finding_info/uid":                     "AAAAbWFsb3AwMDAx",
		"/finding_info/title":                   "invoice_2026.pdf.exe",
		"/finding_info/types":                   []any{"Malicious by obscured extension", "Suspicious process tree"},
		"/finding_info/created_time":            1767100000000,
		"/finding_info/modified_time":           1767100900000,
		"/finding_info/src_url":                 "https://console.example.net:8443/#/malop/AAAAbWFsb3AwMDAx",
		"/finding_info/analytic":                map[string]any{"type_id": 99, "type": "Other", "name": "EXTENSION_MANIPULATION", "category": "EDR"},
		"/finding_info/data_sources":            []any{"EDR"},
		"/finding_info/tags":                    []any{map[string]any{"name": "label", "value": "triage-q1"}},
		"/devices/0":                            map[string]any{"uid_alt": "Qm9vdHN0cmFwMDQy", "name": "fin-lt-042", "os": map[string]any{"name": "Windows", "type_id": 100, "type": "Windows"}, "is_isolated": false},
		"/devices/1":                            map[string]any{"uid_alt": "TWFjaGluZTAwMDAy", "name": "fin-lt-007", "os": map[string]any{"name": "macOS", "type_id": 300, "type": "macOS"}, "is_isolated": true},
		"/users/0":                              map[string]any{"uid": "AAAAdXNlcjAwMDAx", "name": "fin-lt-042\\jdoe", "type_id": 1, "type": "User"},
		"/users/1":                              map[string]any{"uid": "AAAAdXNlcjAwMDAy", "name": "fin-lt-042\\system", "type_id": 3, "type": "System"},
		"/unmapped/cybereason/edr":              true,
		"/unmapped/cybereason/escalated":        true,
		"/unmapped/cybereason/decisionStatuses": []any{"Detected"},
	}
	for pointer, value := range want {
		assertAt(t, record, pointer, value)
	}
	assertOptional(t, record, "/end_time", nil)
	assertOptional(t, record, "/unmapped/cybereason/machines", nil)
	assertOptional(t, record, "/unmapped/cybereason/iconBase64", nil)

	wantObservables := []schemas.Observable{
		{TypeID: 1, Type: "Hostname", Name: "devices[0].name", Value: "fin-lt-042"},
		{TypeID: 1, Type: "Hostname", Name: "devices[1].name", Value: "fin-lt-007"},
		{TypeID: 4, Type: "User Name", Name: "users[0].name", Value: "fin-lt-042\\jdoe"},
		{TypeID: 4, Type: "User Name", Name: "users[1].name", Value: "fin-lt-042\\system"},
		{TypeID: 7, Type: "File Name", Name: "unmapped.cybereason.primaryRootCauseName", Value: "invoice_2026.pdf.exe"},
		{TypeID: 8, Type: "Hash", Name: "unmapped.cybereason.rootCauseElementHashes", Value: "3f786850e387550fdab836ed7e6dc881de23001b"},
	}
	if !reflect.DeepEqual(finding.Observables, wantObservables) {
		t.Errorf("observables\n got %+v\nwant %+v", finding.Observables, wantObservables)
	}
}

func TestProcessEPPMalop(t *testing.T) {
	stage := newTestStage(t)
	record := decodeMap(t, processOne(t, stage, malopMessage(t, readTestdata(t, "malop-epp.json"))).Value)

	want := map[string]any{
		"/finding_uid":                    "cybereason:console.example.net:malop:11.-7348610021234567890",
		"/activity_id":                    3,
		"/type_uid":                       200403,
		"/is_alert":                       false,
		"/time":                           1766500000000,
		"/end_time":                       1766700000000,
		"/severity_id":                    3,
		"/status_id":                      4,
		"/status":                         "Resolved",
		"/status_detail":                  "Remediated",
		"/verdict_id":                     2,
		"/verdict":                        "True Positive",
		"/priority_id":                    0,
		"/priority":                       "Unknown",
		"/finding_info/title":             "keygen_patch.exe",
		"/finding_info/src_url":           "https://console.example.net:8443/#/detection-malop/11.-7348610021234567890",
		"/finding_info/modified_time":     1766600000000,
		"/finding_info/analytic/category": "AntiVirus, StaticAnalysis",
		"/finding_info/tags":              []any{map[string]any{"name": "label", "value": "IT-Closed"}},
		"/observables/1":                  map[string]any{"type_id": 7, "type": "File Name", "name": "unmapped.cybereason.primaryRootCauseName", "value": "keygen_patch.exe"},
		"/observables/2":                  map[string]any{"type_id": 8, "type": "Hash", "name": "unmapped.cybereason.rootCauseElementHashes", "value": "d41d8cd98f00b204e9800998ecf8427e"},
		"/unmapped/cybereason/closed":     "true",
	}
	for pointer, value := range want {
		assertAt(t, record, pointer, value)
	}
	assertOptional(t, record, "/users", nil)
}

func TestMalopEDRFlagFallback(t *testing.T) {
	tests := []struct {
		name    string
		edr     any
		engines []any
		page    string
	}{
		{"edr true", true, []any{"AntiVirus"}, "/#/malop/"},
		{"edr false wins over EDR engine", false, []any{"EDR"}, "/#/detection-malop/"},
		{"no flag, EDR engine", nil, []any{"EDR"}, "/#/malop/"},
		{"no flag, other engines", nil, []any{"AntiVirus"}, "/#/detection-malop/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newTestStage(t)
			malop := readTestdata(t, "malop-edr.json")
			malop["edr"] = tt.edr
			malop["detectionEngines"] = tt.engines

			record := decodeMap(t, processOne(t, stage, malopMessage(t, malop)).Value)

			assertAt(t, record, "/finding_info/src_url", "https://console.example.net:8443"+tt.page+"AAAAbWFsb3AwMDAx")
		})
	}
}

func TestMalopDevicesLinkToSeenSensors(t *testing.T) {
	stage := newTestStage(t)
	before := decodeMap(t, processOne(t, stage, malopMessage(t, readTestdata(t, "malop-edr.json"))).Value)
	assertOptional(t, before, "/devices/0/uid", nil)

	processOne(t, stage, sensorMessage(t, readTestdata(t, "sensor-full.json")))
	after := decodeMap(t, processOne(t, stage, malopMessage(t, readTestdata(t, "malop-edr.json"))).Value)

	assertAt(t, after, "/devices/0/uid", "64b0c0ffee0000000000abcd:PYLUMCLIENT_NORTHWIND_FIN-LT-042_3C52821A9F07")
	assertAt(t, after, "/devices/0/asset_uid", fullSensorUID)
	assertOptional(t, after, "/devices/1/uid", nil)
	if got := stage.Stats().Machines; got != 1 {
		t.Errorf("machines in index = %d, want 1", got)
	}

	otherTenant := malopMessage(t, readTestdata(t, "malop-edr.json"))
	otherTenant.Headers = rawHeaders(RawMalopType, testMalopsSource, "2025-12-30T13:15:00.000Z")
	otherTenant.Headers[5].Value = []byte("other.example.net")
	other := decodeMap(t, processOne(t, stage, otherTenant).Value)
	assertOptional(t, other, "/devices/0/uid", nil)
}

func TestMalopSameInputSameID(t *testing.T) {
	stage := newTestStage(t)
	malop := readTestdata(t, "malop-edr.json")
	first := headerValue(t, processOne(t, stage, malopMessage(t, malop)), "ce_id")
	second := headerValue(t, processOne(t, stage, malopMessage(t, malop)), "ce_id")
	if first != second {
		t.Errorf("ce_ids %s and %s differ for the same input", first, second)
	}
}

func TestMalopIDChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(map[string]any)
		same   bool
	}{
		{"machine connection state", func(m map[string]any) {
			machine := m["machines"].([]any)[0].(map[string]any)
			machine["connected"] = false
			machine["lastConnected"] = 1767229999000
			machine["lastConnectedDate"] = "2026-01-01 01:13:19"
		}, true},
		{"icon", func(m map[string]any) { m["iconBase64"] = "iVBORw0KGgo=" }, true},
		{"last update", func(m map[string]any) { m["lastUpdateTime"] = 1767101000000 }, false},
		{"status", func(m map[string]any) { m["status"] = "Remediated" }, false},
		{"closed", func(m map[string]any) { m["closed"] = true }, false},
		{"machine isolated", func(m map[string]any) { m["machines"].([]any)[0].(map[string]any)["isolated"] = true }, false},
		{"label", func(m map[string]any) { m["labels"] = []any{"triage-q2"} }, false},
	}
	stage := newTestStage(t)
	base := headerValue(t, processOne(t, stage, malopMessage(t, readTestdata(t, "malop-edr.json"))), "ce_id")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			malop := readTestdata(t, "malop-edr.json")
			tt.change(malop)
			got := headerValue(t, processOne(t, stage, malopMessage(t, malop)), "ce_id")
			if (got == base) != tt.same {
				t.Errorf("ce_id %s, base %s, want same=%v", got, base, tt.same)
			}
		})
	}
}

func TestMalopTimeFallback(t *testing.T) {
	tests := []struct {
		name   string
		change func(map[string]any)
		want   int64
	}{
		{"creation time", func(map[string]any) {}, 1767100000000},
		{"last update when creation is 0", func(m map[string]any) { m["creationTime"] = 0 }, 1767100900000},
		{"poll time when both are missing", func(m map[string]any) { delete(m, "creationTime"); m["lastUpdateTime"] = nil }, 1767100500000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newTestStage(t)
			malop := readTestdata(t, "malop-edr.json")
			tt.change(malop)
			msg := malopMessage(t, malop)
			msg.Headers = rawHeaders(RawMalopType, testMalopsSource, "2025-12-30T13:15:00.000Z")

			finding := decodeFinding(t, processOne(t, stage, msg))

			if finding.Time != tt.want {
				t.Errorf("time = %d, want %d", finding.Time, tt.want)
			}
		})
	}
}

func TestMalopSparse(t *testing.T) {
	stage := newTestStage(t)
	finding := decodeFinding(t, processOne(t, stage, malopMessage(t, map[string]any{"guid": "AAAAc3BhcnNlMDAx", "machines": []any{map[string]any{}, "junk"}})))

	if finding.FindingInfo.Title != "MalOp AAAAc3BhcnNlMDAx" {
		t.Errorf("title = %q, want the guid fallback", finding.FindingInfo.Title)
	}
	if finding.StatusID != 0 || finding.Status != "Unknown" || finding.SeverityID != 0 || finding.Severity != "Unknown" {
		t.Errorf("status %d %q severity %d %q, want unknowns", finding.StatusID, finding.Status, finding.SeverityID, finding.Severity)
	}
	if len(finding.Devices) != 0 {
		t.Errorf("devices = %+v, want none", finding.Devices)
	}
	if len(stage.Stats().UnknownValues) != 0 {
		t.Errorf("unknown values %v, want none", stage.Stats().UnknownValues)
	}
}

func TestMalopUnknownValues(t *testing.T) {
	stage := newTestStage(t)
	malop := readTestdata(t, "malop-edr.json")
	malop["status"] = "Escalated"
	malop["severity"] = "Severe"
	malop["priority"] = "URGENT"
	malop["machines"].([]any)[1].(map[string]any)["osType"] = "HAIKU"

	finding := decodeFinding(t, processOne(t, stage, malopMessage(t, malop)))

	if finding.StatusID != 0 || finding.StatusDetail != "Escalated" {
		t.Errorf("status %d detail %q, want 0 and the raw text", finding.StatusID, finding.StatusDetail)
	}
	if finding.Devices[1].OS.Name != "HAIKU" || finding.Devices[1].OS.TypeID != 0 {
		t.Errorf("os %+v, want the raw name and type 0", finding.Devices[1].OS)
	}
	want := map[string]int64{"malop.status": 1, "malop.severity": 1, "malop.priority": 1, "malop.machines.osType": 1}
	if got := stage.Stats().UnknownValues; !reflect.DeepEqual(got, want) {
		t.Errorf("unknown values %v, want %v", got, want)
	}
}
