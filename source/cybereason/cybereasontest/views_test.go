package cybereasontest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// viewsSensors are the sensors of the tenant that views tests load. Sensor s1 runs on the machine
// that MalOp in-edr lists.
const viewsSensors = `[
  {"sensorId":"s1","guid":"m-1","pylumId":"PYLUM-1","machineName":"desktop-1","osType":"WINDOWS","status":"Online"},
  {"sensorId":"s2","guid":"m-2","pylumId":"PYLUM-2","machineName":"desktop-2","osType":"WINDOWS","status":"Online"}
]`

// viewsInbox contains two open inbox MalOps. MalOp shared is also in viewsV2.
const viewsInbox = `[
  {"@class":".MalopInboxModel","guid":"in-edr","displayName":"svch0st.exe","rootCauseElementType":"Process",
   "primaryRootCauseName":"svch0st.exe","rootCauseElementNamesCount":1,"detectionEngines":["EDR"],
   "detectionTypes":["Connection to a known command and control server"],"malopDetectionType":"CNC",
   "creationTime":1000,"lastUpdateTime":2000,"iconBase64":"","priority":"HIGH","group":"group-1",
   "rootCauseElementHashes":"","status":"Active","severity":"High",
   "machines":[{"@class":".MachineInboxModel","guid":"m-1","displayName":"desktop-1","osType":"WINDOWS","connected":true,"isolated":false,"lastConnected":1900,"empty":true}],
   "users":[{"guid":"u-1","displayName":"desktop-1\\jdoe","admin":false,"localSystem":false,"domainUser":true}],
   "containers":[],"labels":["IT-Closed","Reviewed"],"decisionStatuses":[],"malopCloseTime":null,"closerName":null,
   "malopType":"CNC","escalated":false,"malopPriority":"HIGH","edr":true,"malopStatus":"Active",
   "malopSeverity":"High","closed":false,"empty":true},
  {"@class":".MalopInboxModel","guid":"shared","displayName":"invoice.pdf.exe","rootCauseElementType":"File",
   "detectionEngines":["AntiVirus"],"malopDetectionType":"KNOWN_MALWARE","creationTime":3000,"lastUpdateTime":4000,
   "rootCauseElementHashes":"0123456789abcdef0123456789abcdef01234567","status":"Active","severity":"Medium",
   "machines":[],"labels":[],"decisionStatuses":["Prevented"],"malopType":"KNOWN_MALWARE","edr":false,
   "closed":false}
]`

// viewsV2 contains a closed v2 MalOp that the inbox file lacks, and MalOp shared.
const viewsV2 = `[
  {"guid":"v2-only","displayName":"aasiapp.pdf.exe","creationTime":5000,"lastUpdateTime":6000,
   "metadataUpdateTime":6000,"decisionStatuses":[],"detectionEngines":["EDR"],"mitreTactics":[],
   "mitreTechniques":[],"mitreSubTechniques":[],"rootCauseElementHashes":["aaaa","bbbb"],"iocs":["File"],
   "detectionTypes":["Malicious by Obscured Extension"],
   "labels":[{"id":108,"labelText":"IT-Closed","count":47,"empty":false}],
   "investigationStatus":"Closed","closerName":"soc@example.com","priority":"MEDIUM","status":"Active",
   "severity":"High","detectionType":"EXTENSION_MANIPULATION","escalated":true,"iconBase64":"","isEdr":true,
   "groups":["group-2"],"rootCauseElementType":"File",
   "machines":[{"guid":"m-9","displayName":"server-9","connected":false,"isolated":true,"osType":"LINUX","lastConnected":5900,"pylumId":"PYLUM-9"}],
   "users":[]},
  {"guid":"shared","displayName":"invoice.pdf.exe","creationTime":3000,"lastUpdateTime":4000,
   "metadataUpdateTime":4100,"rootCauseElementHashes":["0123456789abcdef0123456789abcdef01234567"],
   "labels":[],"investigationStatus":"UnderInvestigation","status":"Active","severity":"Medium",
   "detectionType":"KNOWN_MALWARE","isEdr":false,"machines":[],"users":[]}
]`

// loadViewsTenant writes the views test tenant to a temporary folder and loads it.
func loadViewsTenant(t *testing.T) *cybereasontest.Tenant {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, cybereasontest.SensorsFile, viewsSensors)
	writeFile(t, dir, cybereasontest.MalopsFile, viewsInbox)
	writeFile(t, dir, cybereasontest.MalopsV2File, viewsV2)
	tenant, err := cybereasontest.LoadTenant(dir)
	if err != nil {
		t.Fatalf("LoadTenant: %v", err)
	}
	return tenant
}

// servedViews returns the MalOps that the console serves from the inbox and the v2 API, each as
// its members by name.
func servedViews(t *testing.T, tenant *cybereasontest.Tenant) (inbox, v2 []map[string]json.RawMessage) {
	t.Helper()
	console := startConsole(t, tenant)
	session := console.session(t)

	resp := console.post(t, "/rest/detection/inbox", session, `{"startTime":0,"endTime":9999999999999}`)
	var inboxBody struct {
		Malops []map[string]json.RawMessage `json:"malops"`
	}
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &inboxBody) != nil {
		t.Fatalf("inbox: status %d: %s", resp.status, resp.body)
	}

	resp = console.post(t, "/rest/mmng/v2/malops", session,
		`{"search":{},"range":{"from":0,"to":9999999999999},"pagination":{"pageSize":100,"offset":0}}`)
	var v2Body struct {
		Data struct {
			TotalHits int                          `json:"totalHits"`
			Data      []map[string]json.RawMessage `json:"data"`
		} `json:"data"`
	}
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &v2Body) != nil {
		t.Fatalf("v2 MalOps: status %d: %s", resp.status, resp.body)
	}
	if v2Body.Data.TotalHits != len(v2Body.Data.Data) {
		t.Errorf("v2 totalHits %d, but %d MalOps on the only page", v2Body.Data.TotalHits, len(v2Body.Data.Data))
	}
	return inboxBody.Malops, v2Body.Data.Data
}

// malopsByGUID indexes MalOps by guid and fails the test when a guid appears twice.
func malopsByGUID(t *testing.T, view string, malops []map[string]json.RawMessage) map[string]map[string]json.RawMessage {
	t.Helper()
	indexed := make(map[string]map[string]json.RawMessage, len(malops))
	for _, malop := range malops {
		var guid string
		if err := json.Unmarshal(malop["guid"], &guid); err != nil {
			t.Fatalf("%s: MalOp without a string guid: %v", view, malop)
		}
		if indexed[guid] != nil {
			t.Errorf("%s: guid %s appears twice", view, guid)
		}
		indexed[guid] = malop
	}
	return indexed
}

// compactText compacts JSON text, for comparing it with served bytes.
func compactText(t *testing.T, text string) string {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(text)); err != nil {
		t.Fatalf("compact %s: %v", text, err)
	}
	return compact.String()
}

func TestLoadedTenantServesOneSetOfMalops(t *testing.T) {
	inboxList, v2List := servedViews(t, loadViewsTenant(t))
	inbox := malopsByGUID(t, "inbox", inboxList)
	v2 := malopsByGUID(t, "v2", v2List)

	for _, guid := range []string{"in-edr", "shared", "v2-only"} {
		if inbox[guid] == nil {
			t.Errorf("inbox lacks MalOp %s", guid)
		}
		if v2[guid] == nil {
			t.Errorf("v2 API lacks MalOp %s", guid)
		}
	}
	if len(inboxList) != 3 || len(v2List) != 3 {
		t.Fatalf("inbox has %d MalOps and v2 API %d, want 3 each", len(inboxList), len(v2List))
	}

	tests := []struct {
		view   string
		guid   string
		member string
		want   string // compact JSON
	}{
		// Converted inbox MalOp in the v2 shape.
		{"v2", "in-edr", "isEdr", `true`},
		{"v2", "in-edr", "labels", `[{"id":108,"labelText":"IT-Closed","count":1,"empty":false},{"id":109,"labelText":"Reviewed","count":1,"empty":false}]`},
		{"v2", "in-edr", "rootCauseElementHashes", `[]`},
		{"v2", "in-edr", "investigationStatus", `"Pending"`},
		{"v2", "in-edr", "detectionType", `"CNC"`},
		{"v2", "in-edr", "priority", `"HIGH"`},
		{"v2", "in-edr", "groups", `["group-1"]`},
		{"v2", "in-edr", "creationTime", `1000`},
		{"v2", "in-edr", "lastUpdateTime", `2000`},
		{"v2", "in-edr", "machines", `[{"guid":"m-1","displayName":"desktop-1","connected":true,"isolated":false,"osType":"WINDOWS","lastConnected":1900,"pylumId":"PYLUM-1"}]`},
		{"v2", "in-edr", "users", `[{"guid":"u-1","displayName":"desktop-1\\jdoe","admin":false,"localSystem":false,"domainUser":true}]`},
		// Converted v2 MalOp in the inbox shape.
		{"inbox", "v2-only", "@class", `".MalopInboxModel"`},
		{"inbox", "v2-only", "edr", `true`},
		{"inbox", "v2-only", "labels", `["IT-Closed"]`},
		{"inbox", "v2-only", "rootCauseElementHashes", `"aaaa"`},
		{"inbox", "v2-only", "closed", `true`},
		{"inbox", "v2-only", "status", `"Active"`},
		{"inbox", "v2-only", "malopStatus", `"Active"`},
		{"inbox", "v2-only", "malopType", `"EXTENSION_MANIPULATION"`},
		{"inbox", "v2-only", "malopDetectionType", `"EXTENSION_MANIPULATION"`},
		{"inbox", "v2-only", "primaryRootCauseName", `"aasiapp.pdf.exe"`},
		{"inbox", "v2-only", "priority", `"MEDIUM"`},
		{"inbox", "v2-only", "malopPriority", `"MEDIUM"`},
		{"inbox", "v2-only", "malopSeverity", `"High"`},
		{"inbox", "v2-only", "escalated", `true`},
		{"inbox", "v2-only", "closerName", `"soc@example.com"`},
		{"inbox", "v2-only", "group", `"group-2"`},
		{"inbox", "v2-only", "machines", `[{"@class":".MachineInboxModel","guid":"m-9","displayName":"server-9","osType":"LINUX","connected":false,"isolated":true,"lastConnected":5900,"empty":true}]`},
		// MalOp shared keeps the object of each file.
		{"inbox", "shared", "edr", `false`},
		{"inbox", "shared", "rootCauseElementHashes", `"0123456789abcdef0123456789abcdef01234567"`},
		{"v2", "shared", "isEdr", `false`},
		{"v2", "shared", "investigationStatus", `"UnderInvestigation"`},
		{"v2", "shared", "metadataUpdateTime", `4100`},
	}
	views := map[string]map[string]map[string]json.RawMessage{"inbox": inbox, "v2": v2}
	for _, test := range tests {
		t.Run(test.view+"/"+test.guid+"/"+test.member, func(t *testing.T) {
			malop := views[test.view][test.guid]
			if malop == nil {
				t.Fatalf("%s lacks MalOp %s", test.view, test.guid)
			}
			got, ok := malop[test.member]
			if !ok {
				t.Fatalf("MalOp %s has no %s", test.guid, test.member)
			}
			if string(got) != test.want {
				t.Errorf("%s = %s, want %s", test.member, got, test.want)
			}
		})
	}
}

func TestLoadedTenantKeepsLoadedObjects(t *testing.T) {
	tenant := loadViewsTenant(t)
	var inboxFile, v2File []json.RawMessage
	if err := json.Unmarshal([]byte(viewsInbox), &inboxFile); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(viewsV2), &v2File); err != nil {
		t.Fatal(err)
	}

	inbox := tenant.Malops()
	if len(inbox) != 3 {
		t.Fatalf("%d inbox MalOps, want 3", len(inbox))
	}
	for i, loaded := range inboxFile {
		if string(inbox[i]) != compactText(t, string(loaded)) {
			t.Errorf("inbox MalOp %d changed when loaded:\n got %s\nwant %s", i, inbox[i], loaded)
		}
	}

	served := make(map[string]bool)
	for _, raw := range tenant.MalopsV2() {
		served[string(raw)] = true
	}
	for i, loaded := range v2File {
		if !served[compactText(t, string(loaded))] {
			t.Errorf("v2 MalOp %d of the file is not served as loaded", i)
		}
	}
}

func TestLoadedTenantAdvanceChangesBothViews(t *testing.T) {
	tenant := loadViewsTenant(t)
	changes := tenant.Advance(testNow)
	if changes.UpdatedMalop.GUID == "" || changes.ClosedMalop == "" || changes.NewMalop == "" {
		t.Fatalf("MalOp changes missing: %v", changes)
	}

	inboxList, v2List := servedViews(t, tenant)
	inbox := malopsByGUID(t, "inbox", inboxList)
	v2 := malopsByGUID(t, "v2", v2List)
	if len(inboxList) != 4 || len(v2List) != 4 {
		t.Errorf("inbox has %d MalOps and v2 API %d after Advance, want 4 each", len(inboxList), len(v2List))
	}

	nowMs := strconv.FormatInt(testNow.UnixMilli(), 10)
	for _, guid := range []string{changes.UpdatedMalop.GUID, changes.ClosedMalop, changes.NewMalop} {
		for view, malops := range map[string]map[string]map[string]json.RawMessage{"inbox": inbox, "v2": v2} {
			malop := malops[guid]
			if malop == nil {
				t.Errorf("%s lacks changed MalOp %s", view, guid)
				continue
			}
			if got := string(malop["lastUpdateTime"]); got != nowMs {
				t.Errorf("%s: MalOp %s lastUpdateTime %s, want %s", view, guid, got, nowMs)
			}
		}
	}

	closedInbox, closedV2 := inbox[changes.ClosedMalop], v2[changes.ClosedMalop]
	if closedInbox == nil || closedV2 == nil {
		t.Fatalf("closed MalOp %s is missing from a view", changes.ClosedMalop)
	}
	if got := string(closedInbox["closed"]); got != "true" {
		t.Errorf("inbox: closed MalOp has closed %s", got)
	}
	if got := string(closedV2["investigationStatus"]); got != `"Closed"` {
		t.Errorf("v2: closed MalOp has investigationStatus %s", got)
	}
	if got := string(closedV2["status"]); got != `"Closed"` {
		t.Errorf("v2: closed MalOp has status %s", got)
	}

	updatedInbox, updatedV2 := inbox[changes.UpdatedMalop.GUID], v2[changes.UpdatedMalop.GUID]
	if updatedInbox == nil || updatedV2 == nil {
		t.Fatalf("updated MalOp %s is missing from a view", changes.UpdatedMalop.GUID)
	}
	if got, want := string(updatedV2["escalated"]), string(updatedInbox["escalated"]); got != want {
		t.Errorf("updated MalOp escalated %s in v2, %s in the inbox", got, want)
	}
	if got, want := countArray(t, updatedV2["machines"]), countArray(t, updatedInbox["machines"]); got != want {
		t.Errorf("updated MalOp lists %d machines in v2, %d in the inbox", got, want)
	}

	newInbox, newV2 := inbox[changes.NewMalop], v2[changes.NewMalop]
	if newInbox == nil || newV2 == nil {
		t.Fatalf("new MalOp %s is missing from a view", changes.NewMalop)
	}
	if got, want := string(newV2["isEdr"]), string(newInbox["edr"]); got != want {
		t.Errorf("new MalOp isEdr %s in v2, edr %s in the inbox", got, want)
	}
}

func countArray(t *testing.T, raw json.RawMessage) int {
	t.Helper()
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		t.Fatalf("%s is not a JSON array: %v", raw, err)
	}
	return len(items)
}

func TestLoadTenantRejectsDuplicateV2GUID(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, cybereasontest.SensorsFile, `[]`)
	writeFile(t, dir, cybereasontest.MalopsFile, `[]`)
	writeFile(t, dir, cybereasontest.MalopsV2File, `[{"guid":"v","lastUpdateTime":1},{"guid":"v","lastUpdateTime":2}]`)

	_, err := cybereasontest.LoadTenant(dir)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`duplicate guid "v"`)) {
		t.Errorf("LoadTenant error %v, want one naming the duplicate guid", err)
	}
}

func TestPublicTenantServesOneSetOfMalops(t *testing.T) {
	if _, err := os.Stat(publicTenantDir); err != nil {
		t.Skipf("the published tenant is not available at %s: %v", publicTenantDir, err)
	}
	tenant, err := cybereasontest.LoadTenant(publicTenantDir)
	if err != nil {
		t.Fatalf("LoadTenant: %v", err)
	}

	inboxList, v2List := servedViews(t, tenant)
	inbox := malopsByGUID(t, "inbox", inboxList)
	v2 := malopsByGUID(t, "v2", v2List)
	if len(inboxList) != 5 || len(v2List) != 5 {
		t.Fatalf("inbox has %d MalOps and v2 API %d, want 5 each", len(inboxList), len(v2List))
	}
	for guid := range inbox {
		if v2[guid] == nil {
			t.Errorf("inbox MalOp %s is not in the v2 API", guid)
		}
	}
	for guid, malop := range v2 {
		if !bytes.HasPrefix(malop["rootCauseElementHashes"], []byte("[")) {
			t.Errorf("v2: MalOp %s rootCauseElementHashes %s is not an array", guid, malop["rootCauseElementHashes"])
		}
		if !bytes.HasPrefix(inbox[guid]["rootCauseElementHashes"], []byte(`"`)) {
			t.Errorf("inbox: MalOp %s rootCauseElementHashes %s is not a string", guid, inbox[guid]["rootCauseElementHashes"])
		}
	}
}
