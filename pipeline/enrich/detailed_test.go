package enrich

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/oversoc/cybereason-connector/schemas"
)

func TestProcessDetailedEDRMalop(t *testing.T) {
	for _, shape := range []struct{ file, eventType string }{
		{"malop-edr.json", RawMalopType},
		{"malop-v2.json", RawMalopV2Type},
	} {
		t.Run(shape.file, func(t *testing.T) {
			stage := newTestStage(t)
			msg := detailedMessage(t, readTestdata(t, shape.file), shape.eventType, readTestdata(t, "crimes-element.json"), "/rest/crimes/unified")
			out := processOne(t, stage, msg)
			record := decodeMap(t, out.Value)
			finding := decodeFinding(t, out)

			want := map[string]any{
				"/finding_uid":    edrFindingUID,
				"/status_id":      2,
				"/status":         "In Progress",
				"/status_detail":  "OPEN",
				"/activity_id":    1,
				"/devices/0/name": "fin-lt-042",
				"/devices/2":      map[string]any{"uid_alt": "TWFjaGluZTAwMDk5", "name": "fin-srv-099"},
				"/users/0/type":   "User",
				"/users/2":        map[string]any{"uid": "AAAAdXNlcjAwMDA5", "name": "northwind\\svc-backup", "type_id": 0, "type": "Unknown"},
				"/unmapped/cybereason/details/detailsEndpoint":    "/rest/crimes/unified",
				"/unmapped/cybereason/details/managementStatus":   []any{"OPEN"},
				"/unmapped/cybereason/details/decisionFeature":    []any{"File.maliciousByObscuredExtension(Malop decision)"},
				"/unmapped/cybereason/details/malopActivityTypes": []any{"MALICIOUS_INFECTION", "CNC_COMMUNICATION"},
				"/unmapped/cybereason/details/isBlocked":          []any{"false"},
				"/unmapped/cybereason/details/primaryRootCauseElements": []any{
					map[string]any{"elementType": "File", "guid": "AAAAZmlsZTAwMDAx", "name": "invoice_2026.pdf.exe"},
				},
			}
			for pointer, value := range want {
				assertAt(t, record, pointer, value)
			}
			if len(finding.Devices) != 3 || len(finding.Users) != 3 {
				t.Errorf("%d devices and %d users, want 3 and 3", len(finding.Devices), len(finding.Users))
			}
			assertOptional(t, record, "/unmapped/cybereason/details/comments", nil)
			assertOptional(t, record, "/unmapped/cybereason/details/closeTime", nil)

			for _, observable := range []schemas.Observable{
				{TypeID: 1, Type: "Hostname", Name: "devices[2].name", Value: "fin-srv-099"},
				{TypeID: 4, Type: "User Name", Name: "users[2].name", Value: "northwind\\svc-backup"},
				{TypeID: 9, Type: "Process Name", Name: "unmapped.cybereason.details.rootCauseElementNames", Value: "rundll32.exe"},
				{TypeID: 8, Type: "Hash", Name: "unmapped.cybereason.details.rootCauseElementHashes", Value: "9e107d9d372bb6826bd81d3542a419d6"},
			} {
				if !containsObservable(finding.Observables, observable) {
					t.Errorf("observables lack %+v: %+v", observable, finding.Observables)
				}
			}
			assertUniqueObservables(t, finding.Observables)
			if stats := stage.Stats(); stats.DetailsFailed != 0 || len(stats.UnknownValues) != 0 {
				t.Errorf("details failed %d, unknown values %v; want none", stats.DetailsFailed, stats.UnknownValues)
			}
		})
	}
}

func TestDetailedEDRManagementStatus(t *testing.T) {
	tests := []struct {
		name       string
		management string
		malop      func(map[string]any)
		status     int
		verdict    int
		detail     string
		activity   int
	}{
		{"unread", "UNREAD", func(map[string]any) {}, statusNew, verdictUnknown, "UNREAD", 1},
		{"to review", "TODO", func(map[string]any) {}, statusNew, verdictUnknown, "TODO", 1},
		{"reopened", "REOPEN", func(map[string]any) {}, statusNew, verdictUnknown, "REOPEN", 1},
		{"not relevant", "FP", func(map[string]any) {}, statusResolved, verdictFalsePositive, "FP", 3},
		{"remediated", "CLOSED", func(map[string]any) {}, statusResolved, verdictTruePositive, "CLOSED", 3},
		{"resolved MalOp stays", "OPEN", func(m map[string]any) { m["status"] = "Remediated" }, statusResolved, verdictTruePositive, "Remediated", 3},
		{"unknown keeps MalOp status", "ESCALATED", func(map[string]any) {}, statusNew, verdictUnknown, "Active", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newTestStage(t)
			malop := readTestdata(t, "malop-edr.json")
			tt.malop(malop)
			details := readTestdata(t, "crimes-element.json")
			simple := details["simpleValues"].(map[string]any)
			simple["managementStatus"] = map[string]any{"totalValues": 1, "values": []any{tt.management}}
			simple["closeTime"] = map[string]any{"totalValues": 1, "values": []any{"1767200000000"}}

			finding := decodeFinding(t, processOne(t, stage, detailedMessage(t, malop, RawMalopType, details, "/rest/crimes/unified")))

			if finding.StatusID != tt.status || finding.VerdictID != tt.verdict || finding.StatusDetail != tt.detail || finding.ActivityID != tt.activity {
				t.Errorf("status %d verdict %d detail %q activity %d; want %d %d %q %d",
					finding.StatusID, finding.VerdictID, finding.StatusDetail, finding.ActivityID, tt.status, tt.verdict, tt.detail, tt.activity)
			}
			if tt.activity == 3 && finding.EndTime == 0 {
				t.Errorf("end_time missing on a Close")
			}
			if tt.activity == 1 && finding.EndTime != 0 {
				t.Errorf("end_time %d on a Create", finding.EndTime)
			}
		})
	}
}

func TestProcessDetailedEPPMalop(t *testing.T) {
	stage := newTestStage(t)
	msg := detailedMessage(t, readTestdata(t, "malop-epp.json"), RawMalopType, readTestdata(t, "epp-details.json"), "/rest/detection/details")
	out := processOne(t, stage, msg)
	record := decodeMap(t, out.Value)
	finding := decodeFinding(t, out)

	want := map[string]any{
		"/status_id":                  4,
		"/verdict_id":                 2,
		"/devices/0/uid_alt":          "-20444.1198775089551518743",
		"/devices/0/hostname":         "kiosk-03.northwind.test",
		"/devices/0/agent_list/0/uid": "PYLUMCLIENT_NORTHWIND_KIOSK-03_0A1B2C3D4E5F",
		"/users/0":                    map[string]any{"uid": "AAAAdXNlcjAwMDIx", "name": "kiosk-03\\guest", "type_id": 1, "type": "User"},
		"/unmapped/cybereason/details/detailsEndpoint":              "/rest/detection/details",
		"/unmapped/cybereason/details/decisionStatuses":             []any{"Quarantined"},
		"/unmapped/cybereason/details/detectionDecisionStatuses":    []any{"DDS_QUARANTINED"},
		"/unmapped/cybereason/details/fileClassificationType":       "av_detected",
		"/unmapped/cybereason/details/detectionValues":              []any{"Gen:Variant.Keygen.17"},
		"/unmapped/cybereason/details/fileSuspects/0/correctedPath": "c:\\users\\guest\\downloads\\keygen_patch.exe",
		"/finding_info/attacks": []any{
			map[string]any{"technique": map[string]any{"uid": "T1204"}, "sub_technique": map[string]any{"uid": "T1204.002"}},
		},
	}
	for pointer, value := range want {
		assertAt(t, record, pointer, value)
	}
	assertOptional(t, record, "/unmapped/cybereason/details/fileSuspects/0/counter", nil)
	if len(finding.Devices) != 1 {
		t.Errorf("devices %+v, want the one machine with the details merged in", finding.Devices)
	}
	for _, observable := range []schemas.Observable{
		{TypeID: 4, Type: "User Name", Name: "users[0].name", Value: "kiosk-03\\guest"},
		{TypeID: 45, Type: "File Path", Name: "unmapped.cybereason.details.filePaths", Value: "c:\\users\\guest\\downloads\\keygen_patch.exe"},
		{TypeID: 8, Type: "Hash", Name: "unmapped.cybereason.details.fileHash", Value: "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{TypeID: 7, Type: "File Name", Name: "unmapped.cybereason.primaryRootCauseName", Value: "keygen_patch.exe"},
	} {
		if !containsObservable(finding.Observables, observable) {
			t.Errorf("observables lack %+v: %+v", observable, finding.Observables)
		}
	}
	assertUniqueObservables(t, finding.Observables)
	if got := stage.Stats().DetailsFailed; got != 0 {
		t.Errorf("details failed = %d, want 0", got)
	}
}

// TestDetailedMalopBadDetails checks that unusable details leave the finding of the MalOp alone:
// the same record, and so the same id, as the MalOp without details.
func TestDetailedMalopBadDetails(t *testing.T) {
	crimesWithBadValues := readTestdata(t, "crimes-element.json")
	crimesWithBadValues["simpleValues"] = "garbage"
	crimesWithBadValues["elementValues"] = []any{1, 2}
	otherMalop := readTestdata(t, "crimes-element.json")
	otherMalop["guidString"] = "AAAAb3RoZXIwMDAx"
	eppForOther := readTestdata(t, "epp-details.json")
	eppForOther["guid"] = "11.123"

	tests := []struct {
		name     string
		details  any
		endpoint string
		want     string
	}{
		{"null", nil, "/rest/crimes/unified", "details missing or null"},
		{"string", "garbage", "/rest/crimes/unified", "details is a JSON string"},
		{"array", []any{1}, "/rest/detection/details", "details is a JSON array"},
		{"empty EDR object", map[string]any{}, "/rest/crimes/unified", "neither a simpleValues nor an elementValues object"},
		{"EDR values of the wrong type", crimesWithBadValues, "/rest/crimes/unified", "neither a simpleValues nor an elementValues object"},
		{"EDR details of another MalOp", otherMalop, "/rest/crimes/unified", "AAAAb3RoZXIwMDAx"},
		{"EPP envelope failure", map[string]any{"status": "FAILURE", "message": "Malop ID is not valid"}, "/rest/detection/details", "have no guid"},
		{"EPP details of another MalOp", eppForOther, "/rest/detection/details", "11.123"},
		{"unknown endpoint", readTestdata(t, "crimes-element.json"), "/rest/visualsearch/query/simple", "unsupported detailsEndpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			stage, err := New(Config{Validator: newTestStage(t).cfg.Validator, Now: testNow, ProductVersion: "0.0.0-test"}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			malop := readTestdata(t, "malop-edr.json")
			plain := processOne(t, stage, malopMessage(t, malop))

			out := processOne(t, stage, detailedMessage(t, malop, RawMalopType, tt.details, tt.endpoint))

			if err := stage.cfg.Validator.Validate(schemas.KindFinding, out.Value); err != nil {
				t.Errorf("finding does not validate: %v", err)
			}
			if got, want := headerValue(t, out, "ce_id"), headerValue(t, plain, "ce_id"); got != want {
				t.Errorf("ce_id %s, want %s of the MalOp without details", got, want)
			}
			stats := stage.Stats()
			if stats.DetailsFailed != 1 || stats.Rejected != 0 || stats.Malops != 2 {
				t.Errorf("stats %+v, want 1 details failure, no rejection, 2 MalOps", stats)
			}
			if !strings.Contains(logs.String(), "MalOp details not used") || !strings.Contains(logs.String(), tt.want) {
				t.Errorf("log %q lacks the warning with %q", logs.String(), tt.want)
			}
		})
	}
}

func TestDetailedMalopRejectsBadWrapper(t *testing.T) {
	malop := readTestdata(t, "malop-edr.json")
	details := readTestdata(t, "crimes-element.json")
	withKey := func(key string) func() any {
		return func() any { return key }
	}
	tests := []struct {
		name    string
		wrapper map[string]any
		key     func() any
		want    string
	}{
		{"no malop", map[string]any{"details": details}, withKey("AAAAbWFsb3AwMDAx"), "malop in the detailed MalOp is a JSON null, expected an object"},
		{"malop is a string", map[string]any{"malop": "AAAAbWFsb3AwMDAx"}, withKey("AAAAbWFsb3AwMDAx"), "is a JSON string"},
		{"malop without guid", map[string]any{"malop": map[string]any{"displayName": "x"}}, withKey("AAAAbWFsb3AwMDAx"), "missing guid in the value"},
		{"key mismatch", map[string]any{"malop": malop}, withKey("other"), `message key "other" does not match guid`},
		{"unknown malopType", map[string]any{"malop": malop, "malopType": "com.oversoc.cybereason.sensor.raw"}, withKey("AAAAbWFsb3AwMDAx"), `unsupported malopType "com.oversoc.cybereason.sensor.raw"`},
	}
	stage := newTestStage(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := typedMalopMessage(t, RawMalopDetailedType, tt.key().(string), tt.wrapper)

			_, err := stage.Process(context.Background(), msg)

			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Process error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDetailedMalopInfersEndpoint(t *testing.T) {
	stage := newTestStage(t)
	edr := decodeMap(t, processOne(t, stage, detailedMessage(t, readTestdata(t, "malop-edr.json"), "", readTestdata(t, "crimes-element.json"), "")).Value)
	epp := decodeMap(t, processOne(t, stage, detailedMessage(t, readTestdata(t, "malop-epp.json"), "", readTestdata(t, "epp-details.json"), "")).Value)

	assertAt(t, edr, "/unmapped/cybereason/details/detailsEndpoint", "/rest/crimes/unified")
	assertAt(t, epp, "/unmapped/cybereason/details/detailsEndpoint", "/rest/detection/details")
}

func containsObservable(observables []schemas.Observable, want schemas.Observable) bool {
	for _, observable := range observables {
		if reflect.DeepEqual(observable, want) {
			return true
		}
	}
	return false
}

func assertUniqueObservables(t *testing.T, observables []schemas.Observable) {
	t.Helper()
	seen := make(map[string]bool)
	for _, observable := range observables {
		key := observable.Type + "=" + observable.Value
		if seen[key] {
			t.Errorf("observable %s appears twice", key)
		}
		seen[key] = true
	}
}
