package enrich

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/oversoc/cybereason-connector/schemas"
)

// sharedFinding keeps the normalized fields that both MalOp shapes carry. The v2 shape adds
// the devices' agents, MITRE attacks and the investigation status, and its unmapped bag names
// other vendor fields, so those are left out. Observables are compared by type and value because
// the v2 root cause name lives in finding_info.title.
type sharedFinding struct {
	FindingUID   string
	ActivityID   int
	Time         int64
	SeverityID   int
	StatusID     int
	VerdictID    int
	PriorityID   int
	EndTime      int64
	IsAlert      bool
	Info         schemas.FindingInfo
	Devices      []schemas.DeviceRef
	Users        []schemas.User
	Observations []string
}

func sharedFields(finding schemas.Finding) sharedFinding {
	out := sharedFinding{
		FindingUID: finding.FindingUID,
		ActivityID: finding.ActivityID,
		Time:       finding.Time,
		SeverityID: finding.SeverityID,
		StatusID:   finding.StatusID,
		VerdictID:  finding.VerdictID,
		PriorityID: finding.PriorityID,
		EndTime:    finding.EndTime,
		IsAlert:    finding.IsAlert != nil && *finding.IsAlert,
		Info:       finding.FindingInfo,
		Users:      finding.Users,
	}
	out.Info.Attacks = nil
	for _, device := range finding.Devices {
		device.AgentList = nil
		out.Devices = append(out.Devices, device)
	}
	for _, observable := range finding.Observables {
		out.Observations = append(out.Observations, observable.Type+"="+observable.Value)
	}
	return out
}

func TestMalopShapesNormalizeAlike(t *testing.T) {
	tests := []struct {
		name    string
		inbox   func(map[string]any)
		v2      func(map[string]any)
		status  int
		verdict int
	}{
		{"open", func(map[string]any) {}, func(map[string]any) {}, statusNew, verdictUnknown},
		{
			"remediated and closed",
			func(m map[string]any) {
				m["status"], m["malopStatus"], m["closed"], m["malopCloseTime"] = "Remediated", "Remediated", true, 1767200000000
			},
			func(m map[string]any) {
				m["status"], m["investigationStatus"], m["malopCloseTime"] = "Remediated", "Closed", 1767200000000
			},
			statusResolved, verdictTruePositive,
		},
		{
			"active but closed",
			func(m map[string]any) { m["closed"] = true },
			func(m map[string]any) { m["investigationStatus"] = "Closed" },
			statusResolved, verdictUnknown,
		},
		{
			"excluded",
			func(m map[string]any) { m["status"], m["malopStatus"] = "Excluded", "Excluded" },
			func(m map[string]any) { m["status"] = "Excluded" },
			statusSuppressed, verdictBenign,
		},
		{
			"two hashes",
			func(m map[string]any) {
				m["rootCauseElementHashes"] = "3f786850e387550fdab836ed7e6dc881de23001b,9e107d9d372bb6826bd81d3542a419d6"
			},
			func(m map[string]any) {
				m["rootCauseElementHashes"] = []any{"3f786850e387550fdab836ed7e6dc881de23001b", "9e107d9d372bb6826bd81d3542a419d6"}
			},
			statusNew, verdictUnknown,
		},
		{
			"no labels and no edr flag",
			func(m map[string]any) { delete(m, "labels"); delete(m, "edr") },
			func(m map[string]any) { m["labels"] = []any{}; delete(m, "isEdr") },
			statusNew, verdictUnknown,
		},
		{
			"edr flags as strings",
			func(m map[string]any) { m["edr"] = "false" },
			func(m map[string]any) { m["isEdr"] = "false" },
			statusNew, verdictUnknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newTestStage(t)
			inbox := readTestdata(t, "malop-edr.json")
			tt.inbox(inbox)
			v2 := readTestdata(t, "malop-v2.json")
			tt.v2(v2)

			fromInbox := decodeFinding(t, processOne(t, stage, typedMalopMessage(t, RawMalopType, "AAAAbWFsb3AwMDAx", inbox)))
			fromV2 := decodeFinding(t, processOne(t, stage, typedMalopMessage(t, RawMalopV2Type, "AAAAbWFsb3AwMDAx", v2)))

			if got, want := sharedFields(fromV2), sharedFields(fromInbox); !reflect.DeepEqual(got, want) {
				t.Errorf("v2 and inbox shapes differ\n   v2 %+v\ninbox %+v", got, want)
			}
			if fromV2.StatusID != tt.status || fromV2.VerdictID != tt.verdict {
				t.Errorf("status %d verdict %d, want %d %d", fromV2.StatusID, fromV2.VerdictID, tt.status, tt.verdict)
			}
			if unknown := stage.Stats().UnknownValues; len(unknown) != 0 {
				t.Errorf("unknown values %v, want none", unknown)
			}
		})
	}
}

func TestProcessV2Malop(t *testing.T) {
	stage := newTestStage(t)
	out := processOne(t, stage, typedMalopMessage(t, RawMalopV2Type, "AAAAbWFsb3AwMDAx", readTestdata(t, "malop-v2.json")))
	if err := stage.cfg.Validator.Validate(schemas.KindFinding, out.Value); err != nil {
		t.Fatal(err)
	}
	record := decodeMap(t, out.Value)

	want := map[string]any{
		"/finding_uid":                             edrFindingUID,
		"/status_id":                               1,
		"/status_detail":                           "Pending",
		"/finding_info/analytic/name":              "EXTENSION_MANIPULATION",
		"/finding_info/tags":                       []any{map[string]any{"name": "label", "value": "triage-q1"}},
		"/finding_info/src_url":                    "https://console.example.net:8443/#/malop/AAAAbWFsb3AwMDAx",
		"/devices/0/agent_list/0":                  map[string]any{"uid": "PYLUMCLIENT_NORTHWIND_FIN-LT-042_3C52821A9F07", "name": "Cybereason Sensor", "type_id": 1, "type": "Endpoint Detection and Response", "vendor_name": "Cybereason"},
		"/devices/1/is_isolated":                   true,
		"/observables/4":                           map[string]any{"type_id": 7, "type": "File Name", "name": "finding_info.title", "value": "invoice_2026.pdf.exe"},
		"/observables/5":                           map[string]any{"type_id": 8, "type": "Hash", "name": "unmapped.cybereason.rootCauseElementHashes", "value": "3f786850e387550fdab836ed7e6dc881de23001b"},
		"/unmapped/cybereason/investigationStatus": "Pending",
		"/unmapped/cybereason/isEdr":               true,
		"/unmapped/cybereason/detectionType":       "EXTENSION_MANIPULATION",
		"/unmapped/cybereason/iocs":                []any{"File"},
		"/unmapped/cybereason/mitreSubTechniques":  []any{"T1036.007"},
	}
	for pointer, value := range want {
		assertAt(t, record, pointer, value)
	}
	assertOptional(t, record, "/unmapped/cybereason/metadataUpdateTime", nil)

	attacks := decodeFinding(t, out).FindingInfo.Attacks
	wantAttacks := []schemas.Attack{
		{Tactic: &schemas.AttackElement{Name: "Defense Evasion"}},
		{Tactic: &schemas.AttackElement{UID: "TA0002"}},
		{Technique: &schemas.AttackElement{UID: "T1036", Name: "Masquerading"}},
		{Technique: &schemas.AttackElement{UID: "T1059", Name: "Command and Scripting Interpreter"}},
		{Technique: &schemas.AttackElement{UID: "T1036"}, SubTechnique: &schemas.AttackElement{UID: "T1036.007"}},
	}
	if !reflect.DeepEqual(attacks, wantAttacks) {
		t.Errorf("attacks\n got %s\nwant %s", canonical(t, attacks), canonical(t, wantAttacks))
	}
}

func TestV2MalopLinksDeviceByPylumID(t *testing.T) {
	stage := newTestStage(t)
	sensor := readTestdata(t, "sensor-full.json")
	sensor["guid"] = "" // newer consoles leave the sensor guid empty
	processOne(t, stage, sensorMessage(t, sensor))

	record := decodeMap(t, processOne(t, stage, typedMalopMessage(t, RawMalopV2Type, "AAAAbWFsb3AwMDAx", readTestdata(t, "malop-v2.json"))).Value)

	assertAt(t, record, "/devices/0/asset_uid", fullSensorUID)
	assertOptional(t, record, "/devices/1/asset_uid", nil)
}

func TestMalopV2StatusCombination(t *testing.T) {
	tests := []struct {
		status, investigation string
		closed                any
		id, verdict           int
		detail                string
	}{
		{"Active", "Pending", nil, statusNew, verdictUnknown, "Pending"},
		{"Active", "UnderInvestigation", nil, statusInProgress, verdictUnknown, "UnderInvestigation"},
		{"Active", "OnHold", nil, statusInProgress, verdictUnknown, "OnHold"},
		{"Active", "Reopened", nil, statusNew, verdictUnknown, "Reopened"},
		{"Active", "Closed", nil, statusResolved, verdictUnknown, "Closed"},
		{"Active", "", nil, statusNew, verdictUnknown, "Active"},
		{"", "OnHold", nil, statusInProgress, verdictUnknown, "OnHold"},
		{"Active", "OnHold", true, statusResolved, verdictUnknown, "OnHold"},
		{"Remediated", "UnderInvestigation", nil, statusResolved, verdictTruePositive, "Remediated"},
		{"Remediated", "Closed", nil, statusResolved, verdictTruePositive, "Remediated"},
		{"Excluded", "Pending", nil, statusSuppressed, verdictBenign, "Excluded"},
		{"Excluded", "Closed", nil, statusResolved, verdictBenign, "Excluded"},
		{"Closed", "Closed", nil, statusResolved, verdictUnknown, "Closed"},
		{"Active", "Escalated", nil, statusNew, verdictUnknown, "Active"},
	}
	for _, tt := range tests {
		malop := vendorObject{"status": tt.status, "investigationStatus": tt.investigation, "closed": tt.closed}
		got, detail := malopStatus(malop, func(string, string) {})
		if got.id != tt.id || got.verdict != tt.verdict || detail != tt.detail {
			t.Errorf("status %q investigation %q closed %v = %+v %q; want id %d verdict %d %q", tt.status, tt.investigation, tt.closed, got, detail, tt.id, tt.verdict, tt.detail)
		}
	}
}

func TestMalopsTopicRejectsUnknownType(t *testing.T) {
	stage := newTestStage(t)
	msg := typedMalopMessage(t, "com.oversoc.cybereason.malop.v3.raw", "AAAAbWFsb3AwMDAx", readTestdata(t, "malop-v2.json"))

	_, err := stage.Process(context.Background(), msg)

	if err == nil || !strings.Contains(err.Error(), `unsupported ce_type "com.oversoc.cybereason.malop.v3.raw"`) {
		t.Errorf("Process error = %v, want one naming the unsupported ce_type", err)
	}
	if got := stage.Stats().Rejected; got != 1 {
		t.Errorf("rejected = %d, want 1", got)
	}
}
