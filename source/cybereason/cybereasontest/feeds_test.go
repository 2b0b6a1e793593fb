package cybereasontest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func TestGenerateTenantFeedsAreDeterministic(t *testing.T) {
	first := cybereasontest.GenerateTenant(42, 60, 12, testNow)
	second := cybereasontest.GenerateTenant(42, 60, 12, testNow)

	if !slices.EqualFunc(first.MalopsV2(), second.MalopsV2(), sameJSON) {
		t.Error("two tenants of seed 42 have different v2 MalOps")
	}
	if !slices.EqualFunc(first.Malware(), second.Malware(), sameJSON) {
		t.Error("two tenants of seed 42 have different malware alerts")
	}
	if !slices.EqualFunc(first.Policies(), second.Policies(), sameJSON) {
		t.Error("two tenants of seed 42 have different policies")
	}
	if first.Advance(testNow).NewMalware != second.Advance(testNow).NewMalware {
		t.Error("Advance of two tenants of seed 42 created different malware alerts")
	}
}

func TestGeneratedMalopsV2Shape(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(43, 60, 30, testNow)
	inbox := byKey(t, decodeObjects(t, tenant.Malops()), "guid")
	v2 := decodeObjects(t, tenant.MalopsV2())
	if len(v2) != len(inbox) {
		t.Fatalf("%d v2 MalOps for %d inbox MalOps", len(v2), len(inbox))
	}
	for _, malop := range v2 {
		guid, _ := malop["guid"].(string)
		source, ok := inbox[guid]
		if !ok {
			t.Fatalf("v2 MalOp %s is not in the inbox", guid)
		}
		if malop["isEdr"] != source["edr"] {
			t.Errorf("MalOp %s: isEdr %v, inbox edr %v", guid, malop["isEdr"], source["edr"])
		}
		if _, ok := malop["rootCauseElementHashes"].([]any); !ok {
			t.Errorf("MalOp %s: rootCauseElementHashes %v is not an array", guid, malop["rootCauseElementHashes"])
		}
		if _, ok := malop["investigationStatus"].(string); !ok {
			t.Errorf("MalOp %s has no investigationStatus", guid)
		}
		labels, _ := malop["labels"].([]any)
		for _, label := range labels {
			if _, ok := label.(map[string]any)["labelText"]; !ok {
				t.Errorf("MalOp %s: label %v is not an object with labelText", guid, label)
			}
		}
	}
}

func TestMalopsV2ItemOffsetPaging(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(44, 20, 9, testNow))
	session := console.session(t)

	var result struct {
		Data struct {
			TotalHits int               `json:"totalHits"`
			Offset    int               `json:"offset"`
			Data      []json.RawMessage `json:"data"`
		} `json:"data"`
		Status string `json:"status"`
	}
	resp := console.post(t, "/rest/mmng/v2/malops", session, `{"search":{},"range":{"from":0,"to":9999999999999},"pagination":{"pageSize":4,"offset":8}}`)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	if err := json.Unmarshal(resp.body, &result); err != nil {
		t.Fatal(err)
	}
	if result.Status != "SUCCESS" || result.Data.TotalHits != 9 || result.Data.Offset != 8 || len(result.Data.Data) != 1 {
		t.Errorf("status %s, totalHits %d, offset %d, %d MalOps; want SUCCESS, 9, 8, 1",
			result.Status, result.Data.TotalHits, result.Data.Offset, len(result.Data.Data))
	}
}

func TestFeedsWithoutSessionRedirect(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(45, 5, 2, testNow))
	for _, path := range []string{"/rest/mmng/v2/malops", "/rest/crimes/unified", "/rest/detection/details", "/rest/malware/query"} {
		resp := console.post(t, path, nil, `{}`)
		if resp.status != http.StatusFound || resp.header.Get("Location") != "/login.html" {
			t.Errorf("%s without a session: status %d, Location %q", path, resp.status, resp.header.Get("Location"))
		}
	}
	if resp := console.get(t, "/rest/policies", nil); resp.status != http.StatusFound {
		t.Errorf("GET /rest/policies without a session: status %d", resp.status)
	}
}

func TestDropV2Statuses(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(46, 5, 2, testNow))
	session := console.session(t)
	body := `{"range":{"from":0,"to":1},"pagination":{"pageSize":10,"offset":0}}`
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound, 0} {
		console.DropV2(status)
		want := status
		if want == 0 {
			want = http.StatusOK
		}
		if resp := console.post(t, "/rest/mmng/v2/malops", session, body); resp.status != want {
			t.Errorf("DropV2(%d): status %d, want %d", status, resp.status, want)
		}
	}
}

func TestCrimesValuesAreStrings(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(47, 30, 16, testNow)
	console := startConsole(t, tenant)
	session := console.session(t)

	resp := console.post(t, "/rest/crimes/unified", session,
		`{"totalResultLimit":10000,"perGroupLimit":10000,"perFeatureLimit":100,"templateContext":"OVERVIEW","queryPath":[{"requestedType":"MalopProcess","guidList":[],"result":true,"filters":null}],"customFields":[]}`)
	var result struct {
		Data struct {
			Elements map[string]struct {
				SimpleValues map[string]struct {
					Values []json.RawMessage `json:"values"`
				} `json:"simpleValues"`
			} `json:"resultIdToElementDataMap"`
		} `json:"data"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(resp.body, &result); err != nil || result.Status != "SUCCESS" {
		t.Fatalf("status %d, %v: %s", resp.status, err, resp.body)
	}
	if len(result.Data.Elements) == 0 {
		t.Fatal("no MalopProcess elements")
	}
	for guid, element := range result.Data.Elements {
		for name, feature := range element.SimpleValues {
			for _, value := range feature.Values {
				if !bytes.HasPrefix(value, []byte(`"`)) && string(value) != "null" {
					t.Errorf("MalOp %s: %s value %s is not a string", guid, name, value)
				}
			}
		}
	}
}

func TestAdvanceAddsMalware(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(48, 20, 5, testNow)
	before := len(tenant.Malware())

	changes := tenant.Advance(testNow)

	if len(tenant.Malware()) != before+1 || changes.NewMalware == "" {
		t.Errorf("%d alerts after Advance, want %d; new alert %q", len(tenant.Malware()), before+1, changes.NewMalware)
	}
	if !strings.Contains(changes.String(), "malware alert "+changes.NewMalware) {
		t.Errorf("changes %q do not name the new alert", changes)
	}
}

func TestLoadTenantSynthesizesPolicies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, cybereasontest.SensorsFile, `[
	  {"sensorId":"a","policyId":"p1","policyName":"Default","compliance":true},
	  {"sensorId":"b","policyId":"p1","policyName":"Default","compliance":false},
	  {"sensorId":"c","policyId":"p2","policyName":"Servers"}
	]`)
	writeFile(t, dir, cybereasontest.MalopsFile, `[]`)
	tenant, err := cybereasontest.LoadTenant(dir)
	if err != nil {
		t.Fatal(err)
	}
	policies := decodeObjects(t, tenant.Policies())
	if len(policies) != 2 || policies[0]["id"] != "p1" || policies[1]["name"] != "Servers" {
		t.Fatalf("policies %v, want p1 and p2", policies)
	}
	if policies[0]["assignedSensors"] != json.Number("2") || policies[0]["nonCompliantSensors"] != json.Number("1") {
		t.Errorf("policy p1 counts %v", policies[0])
	}
}

func TestOldestAlertTime(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, cybereasontest.SensorsFile, `[]`)
	writeFile(t, dir, cybereasontest.MalopsFile, `[{"guid":"m","creationTime":5000,"lastUpdateTime":6000,"machines":[]}]`)
	writeFile(t, dir, cybereasontest.MalopsV2File, `[{"guid":"v","creationTime":4000,"lastUpdateTime":4500,"machines":[]}]`)
	writeFile(t, dir, cybereasontest.MalwareFile, `[{"guid":"w","timestamp":3000}]`)
	tenant, err := cybereasontest.LoadTenant(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := tenant.OldestAlertTime().UnixMilli(); got != 3000 {
		t.Errorf("OldestAlertTime %d ms, want 3000 (the malware alert)", got)
	}
}
