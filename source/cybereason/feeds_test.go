package cybereason_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// publicTenantDir is a tenant of published console payloads, kept outside the repository.
const publicTenantDir = "../../../shared/fixtures/cybereason/tenant-public"

// startScriptedConsole starts a console that accepts any login and responds to every /rest request
// with respond, which gets the request path and body.
func startScriptedConsole(t *testing.T, respond func(path string, body []byte) (int, string)) string {
	t.Helper()
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login.html" {
			http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "0123456789ABCDEF0123456789ABCDEF", Path: "/"})
			w.Header().Set("Location", "/#/current?")
			w.WriteHeader(http.StatusFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		status, response := respond(r.URL.Path, body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, response)
	}))
	t.Cleanup(server.Close)
	return server.URL
}

// jsonMembers decodes a JSON object into its members.
func jsonMembers(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	return members
}

func guidOf(t *testing.T, raw []byte) string {
	t.Helper()
	var guid string
	if err := json.Unmarshal(jsonMembers(t, raw)["guid"], &guid); err != nil {
		t.Fatalf("no string guid: %s", raw)
	}
	return guid
}

func TestMalopsV2PagesByItemOffset(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(31, 40, 23, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.MalopsV2.PageSize = 5 }, nil)

	malops, err := client.MalopsV2(context.Background(), tenant.OldestMalopTime(), testNow)
	if err != nil {
		t.Fatalf("MalopsV2: %v", err)
	}

	want := tenant.MalopsV2()
	if len(malops) != len(want) || len(want) != 23 {
		t.Fatalf("got %d MalOps, want %d (the tenant has 23)", len(malops), len(want))
	}
	for i, malop := range malops {
		members := jsonMembers(t, malop.Raw)
		if malop.GUID != guidOf(t, want[i]) {
			t.Errorf("MalOp %d is %s, want %s", i, malop.GUID, guidOf(t, want[i]))
		}
		if _, ok := members["iconBase64"]; ok {
			t.Errorf("MalOp %s still has iconBase64", malop.GUID)
		}
		if isEDR := string(members["isEdr"]) == "true"; malop.EDR != isEDR {
			t.Errorf("MalOp %s: EDR %t, isEdr %s", malop.GUID, malop.EDR, members["isEdr"])
		}
		if i > 0 && malop.LastUpdateTime.Before(malops[i-1].LastUpdateTime) {
			t.Errorf("MalOp %d is older than the one before", i)
		}
	}
	// Each page starts with the last MalOp of the page before, so a page
	// brings 4 new MalOps: offsets 0, 4, 8, 12, 16 and 20.
	if requests := console.Stats().Requests["POST /rest/mmng/v2/malops"]; requests != 6 {
		t.Errorf("%d v2 requests for 23 MalOps in overlapping pages of 5, want 6", requests)
	}
}

func TestMalopsV2Window(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(32, 20, 15, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)
	from, to := testNow.Add(-72*time.Hour), testNow.Add(-24*time.Hour)

	malops, err := client.MalopsV2(context.Background(), from, to)
	if err != nil {
		t.Fatalf("MalopsV2: %v", err)
	}
	for _, malop := range malops {
		if malop.LastUpdateTime.Before(from) || malop.LastUpdateTime.After(to) {
			t.Errorf("MalOp %s updated at %s, outside the window", malop.GUID, malop.LastUpdateTime)
		}
	}
	inWindow := 0
	for _, m := range tenantMalops(t, tenant) {
		if m.lastUpdate >= from.UnixMilli() && m.lastUpdate <= to.UnixMilli() {
			inWindow++
		}
	}
	if len(malops) != inWindow {
		t.Errorf("got %d MalOps, the tenant has %d updated in the window", len(malops), inWindow)
	}
}

func TestMalopsV2NotSupported(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(33, 5, 3, testNow))
			console.DropV2(status)
			client := newClient(t, console.URL, testPassword, nil, nil)

			_, err := client.MalopsV2(context.Background(), testNow.Add(-time.Hour), testNow)

			if !errors.Is(err, cybereason.ErrNotSupported) {
				t.Fatalf("error %v, want ErrNotSupported", err)
			}
			var statusErr *cybereason.StatusError
			if !errors.As(err, &statusErr) || statusErr.StatusCode != status {
				t.Errorf("error %v does not carry the %d StatusError", err, status)
			}
			if _, err := client.MalopsInbox(context.Background(), testNow.Add(-time.Hour), testNow); err != nil {
				t.Errorf("the inbox fails too on a console without v2: %v", err)
			}
		})
	}
}

func TestMalopsV2LaterPageRejected(t *testing.T) {
	first := `{"data":{"pageSize":2,"offset":0,"totalHits":10,"data":[{"guid":"a","lastUpdateTime":1},{"guid":"b","lastUpdateTime":2}]},"status":"SUCCESS"}`
	for _, status := range []int{http.StatusBadRequest, http.StatusNotFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			url := startScriptedConsole(t, func(_ string, body []byte) (int, string) {
				var query struct {
					Pagination struct{ Offset int } `json:"pagination"`
				}
				_ = json.Unmarshal(body, &query)
				if query.Pagination.Offset == 0 {
					return http.StatusOK, first
				}
				return status, `{"message":"rejected"}`
			})
			client := newClient(t, url, testPassword, nil, nil)

			_, err := client.MalopsV2(context.Background(), testNow.Add(-time.Hour), testNow)

			var statusErr *cybereason.StatusError
			if !errors.As(err, &statusErr) || statusErr.StatusCode != status {
				t.Fatalf("error %v, want the %d *StatusError", err, status)
			}
			if errors.Is(err, cybereason.ErrNotSupported) {
				t.Errorf("error %v wraps ErrNotSupported after the console returned the first page", err)
			}
		})
	}
}

func TestMalopsV2DisabledByOption(t *testing.T) {
	server := cybereasontest.NewServer(cybereasontest.GenerateTenant(33, 5, 3, testNow),
		cybereasontest.Options{Username: testUser, Password: testPassword, DisableV2: true})
	t.Cleanup(server.Close)
	client := newClient(t, server.URL, testPassword, nil, nil)

	if _, err := client.MalopsV2(context.Background(), testNow.Add(-time.Hour), testNow); !errors.Is(err, cybereason.ErrNotSupported) {
		t.Fatalf("error %v, want ErrNotSupported", err)
	}
}

func TestMalopsV2PagingFaults(t *testing.T) {
	page := `{"data":{"pageSize":2,"offset":0,"totalHits":10,"data":[{"guid":"a","lastUpdateTime":1},{"guid":"b","lastUpdateTime":2}]},"status":"SUCCESS"}`
	tests := []struct {
		name   string
		second string
		want   error
	}{
		{"empty page before totalHits", `{"data":{"pageSize":2,"offset":2,"totalHits":10,"data":[]},"status":"SUCCESS"}`, cybereason.ErrPageEmpty},
		{"same page again", page, cybereason.ErrPageRepeated},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			requests := 0
			url := startScriptedConsole(t, func(string, []byte) (int, string) {
				requests++
				if requests == 1 {
					return http.StatusOK, page
				}
				return http.StatusOK, test.second
			})
			client := newClient(t, url, testPassword, nil, nil)

			_, err := client.MalopsV2(context.Background(), testNow.Add(-time.Hour), testNow)

			if !errors.Is(err, test.want) {
				t.Fatalf("error %v, want %v", err, test.want)
			}
			if requests != 2 {
				t.Errorf("%d requests, want 2", requests)
			}
		})
	}
}

// TestMalopsV2UpdatedWhilePaging removes a MalOp from the window after the
// first page, as an update on the console does: every later MalOp moves one
// place up, and none may be skipped.
func TestMalopsV2UpdatedWhilePaging(t *testing.T) {
	var requests atomic.Int32
	url := startScriptedConsole(t, func(_ string, body []byte) (int, string) {
		guids := []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}
		if requests.Add(1) > 1 {
			guids = slices.Delete(guids, 1, 2) // m1 was updated and left the window
		}
		var query struct {
			Pagination struct{ PageSize, Offset int } `json:"pagination"`
		}
		if err := json.Unmarshal(body, &query); err != nil {
			return http.StatusBadRequest, `{}`
		}

		var items []string
		for i := query.Pagination.Offset; i < len(guids) && i < query.Pagination.Offset+query.Pagination.PageSize; i++ {
			items = append(items, fmt.Sprintf(`{"guid":%q,"lastUpdateTime":%d}`, guids[i], 1000+i))
		}
		return http.StatusOK, fmt.Sprintf(`{"data":{"totalHits":%d,"data":[%s]},"status":"SUCCESS"}`, len(guids), strings.Join(items, ","))
	})
	client := newClient(t, url, testPassword, func(c *cybereason.Config) { c.MalopsV2.PageSize = 4 }, nil)

	malops, err := client.MalopsV2(context.Background(), testNow.Add(-time.Hour), testNow)
	if err != nil {
		t.Fatalf("MalopsV2: %v", err)
	}

	got := malopGUIDList(malops)
	want := []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("MalOps %v, want each of %v once", got, want)
	}
}

func malopGUIDList(malops []cybereason.Malop) []string {
	guids := make([]string, len(malops))
	for i, malop := range malops {
		guids[i] = malop.GUID
	}
	return guids
}

func TestMalopsV2PageCap(t *testing.T) {
	offsets := 0
	url := startScriptedConsole(t, func(_ string, body []byte) (int, string) {
		offsets++
		var query struct {
			Pagination struct{ Offset int } `json:"pagination"`
		}
		_ = json.Unmarshal(body, &query)
		guid, _ := json.Marshal(query.Pagination.Offset)
		return http.StatusOK, `{"data":{"totalHits":1000000,"data":[{"guid":"g` + string(guid) + `","lastUpdateTime":1}]},"status":"SUCCESS"}`
	})
	client := newClient(t, url, testPassword, func(c *cybereason.Config) { c.MaxPages = 4 }, nil)

	_, err := client.MalopsV2(context.Background(), testNow.Add(-time.Hour), testNow)

	if !errors.Is(err, cybereason.ErrTooManyPages) {
		t.Fatalf("error %v, want ErrTooManyPages", err)
	}
	if offsets != 4 {
		t.Errorf("%d requests with MaxPages 4", offsets)
	}
}

func TestMalopsV2EnvelopeFailure(t *testing.T) {
	url := startScriptedConsole(t, func(string, []byte) (int, string) {
		return http.StatusOK, `{"data":null,"status":"TIMEOUT_ERROR","message":"query timed out"}`
	})
	client := newClient(t, url, testPassword, nil, nil)

	_, err := client.MalopsV2(context.Background(), testNow.Add(-time.Hour), testNow)

	var envelopeErr *cybereason.EnvelopeError
	if !errors.As(err, &envelopeErr) || envelopeErr.Status != "TIMEOUT_ERROR" {
		t.Fatalf("error %v, want an EnvelopeError with TIMEOUT_ERROR", err)
	}
}

func TestMalopsInboxEDRFlag(t *testing.T) {
	url := startScriptedConsole(t, func(string, []byte) (int, string) {
		return http.StatusOK, `{"malops":[
		  {"guid":"a","lastUpdateTime":1,"edr":true},
		  {"guid":"b","lastUpdateTime":1,"edr":"true"},
		  {"guid":"c","lastUpdateTime":1,"edr":"false"},
		  {"guid":"d","lastUpdateTime":1,"edr":null},
		  {"guid":"e","lastUpdateTime":1}]}`
	})
	client := newClient(t, url, testPassword, nil, nil)

	malops, err := client.MalopsInbox(context.Background(), testNow.Add(-time.Hour), testNow)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string]bool)
	for _, malop := range malops {
		got[malop.GUID] = malop.EDR
	}
	want := map[string]bool{"a": true, "b": true, "c": false, "d": false, "e": false}
	for guid, edr := range want {
		if got[guid] != edr {
			t.Errorf("MalOp %s: EDR %t, want %t", guid, got[guid], edr)
		}
	}
}

// generatedMalops returns an EDR and an EPP MalOp guid of a generated tenant.
func generatedMalops(t *testing.T, tenant *cybereasontest.Tenant) (edr, epp string) {
	t.Helper()
	for _, raw := range tenant.Malops() {
		members := jsonMembers(t, raw)
		var malopType string
		_ = json.Unmarshal(members["malopType"], &malopType)
		switch {
		case string(members["edr"]) == "true" && edr == "" && malopType != "LATERAL_MOVEMENT":
			edr = guidOf(t, raw)
		case string(members["edr"]) == "false" && epp == "":
			epp = guidOf(t, raw)
		}
	}
	if edr == "" || epp == "" {
		t.Fatal("the tenant lacks an EDR or an EPP MalOp")
	}
	return edr, epp
}

func TestEDRMalopDetails(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(34, 30, 12, testNow)
	edr, _ := generatedMalops(t, tenant)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)

	details, err := client.EDRMalopDetails(context.Background(), edr)
	if err != nil {
		t.Fatalf("EDRMalopDetails: %v", err)
	}

	var element struct {
		GUIDString   string `json:"guidString"`
		SimpleValues map[string]struct {
			Values []json.RawMessage `json:"values"`
		} `json:"simpleValues"`
		ElementValues map[string]json.RawMessage `json:"elementValues"`
	}
	if err := json.Unmarshal(details, &element); err != nil {
		t.Fatal(err)
	}
	if element.GUIDString != edr {
		t.Errorf("guidString %q, want %q", element.GUIDString, edr)
	}
	creation := element.SimpleValues["creationTime"].Values
	if len(creation) != 1 || !bytes.HasPrefix(creation[0], []byte(`"`)) {
		t.Errorf("creationTime values %s, want one JSON string", creation)
	}
	if _, ok := element.SimpleValues["iconBase64"]; ok {
		t.Error("simpleValues still has iconBase64")
	}
	for _, name := range []string{"managementStatus", "decisionFeature", "rootCauseElementTypes"} {
		if _, ok := element.SimpleValues[name]; !ok {
			t.Errorf("simpleValues lack %s", name)
		}
	}
	for _, name := range []string{"affectedMachines", "affectedUsers", "primaryRootCauseElements"} {
		if _, ok := element.ElementValues[name]; !ok {
			t.Errorf("elementValues lack %s", name)
		}
	}
	if requests := console.Stats().Requests["POST /rest/crimes/unified"]; requests != 1 {
		t.Errorf("%d crimes requests for a MalopProcess MalOp, want 1", requests)
	}
}

func TestEDRMalopDetailsLogonSessionFallback(t *testing.T) {
	dir := t.TempDir()
	writeTenantFile(t, dir, cybereasontest.SensorsFile, `[]`)
	writeTenantFile(t, dir, cybereasontest.MalopsFile, `[{"guid":"11.42","lastUpdateTime":5,"edr":true,"machines":[]}]`)
	writeTenantFile(t, dir, cybereasontest.CrimesFile("MalopLogonSession"),
		`{"data":{"resultIdToElementDataMap":{"11.42":{"simpleValues":{"creationTime":{"totalValues":1,"values":["5"]}},"guidString":"11.42"}}},"status":"SUCCESS"}`)
	tenant, err := cybereasontest.LoadTenant(dir)
	if err != nil {
		t.Fatal(err)
	}
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)

	details, err := client.EDRMalopDetails(context.Background(), "11.42")
	if err != nil {
		t.Fatalf("EDRMalopDetails: %v", err)
	}
	if !bytes.Contains(details, []byte(`"guidString":"11.42"`)) {
		t.Errorf("details %s are not the LogonSession element", details)
	}
	if requests := console.Stats().Requests["POST /rest/crimes/unified"]; requests != 2 {
		t.Errorf("%d crimes requests, want 2 (MalopProcess, then MalopLogonSession)", requests)
	}
}

func TestMalopDetailsMissingGUID(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(35, 10, 4, testNow))
	client := newClient(t, console.URL, testPassword, nil, nil)

	_, err := client.EDRMalopDetails(context.Background(), "11.000-missing")
	if !errors.Is(err, cybereason.ErrMalopNotFound) || !bytes.Contains([]byte(err.Error()), []byte("11.000-missing")) {
		t.Errorf("EDR error %v, want ErrMalopNotFound naming the guid", err)
	}
	_, err = client.EPPMalopDetails(context.Background(), "11.000-missing")
	if !errors.Is(err, cybereason.ErrMalopNotFound) || !bytes.Contains([]byte(err.Error()), []byte("11.000-missing")) {
		t.Errorf("EPP error %v, want ErrMalopNotFound naming the guid", err)
	}
}

func TestEPPMalopDetails(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(34, 30, 12, testNow)
	_, epp := generatedMalops(t, tenant)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)

	details, err := client.EPPMalopDetails(context.Background(), epp)
	if err != nil {
		t.Fatalf("EPPMalopDetails: %v", err)
	}
	members := jsonMembers(t, details)
	if guidOf(t, details) != epp {
		t.Errorf("details of %s, want %s", guidOf(t, details), epp)
	}
	for _, name := range []string{"fileSuspects", "decisionStatuses", "machines", "timelineEvents"} {
		if _, ok := members[name]; !ok {
			t.Errorf("details lack %s", name)
		}
	}
	if _, ok := members["iconBase64"]; ok {
		t.Error("details still have iconBase64")
	}
	var machines []struct {
		PylumID *string `json:"pylumId"`
	}
	if err := json.Unmarshal(members["machines"], &machines); err != nil || len(machines) == 0 || machines[0].PylumID == nil {
		t.Errorf("machines %s lack a pylumId", members["machines"])
	}
}

// collectMalware reads every malware page of the window.
func collectMalware(t *testing.T, client *cybereason.Client, from, to time.Time) ([]cybereason.MalwarePage, error) {
	t.Helper()
	var pages []cybereason.MalwarePage
	err := client.QueryMalware(context.Background(), from, to, func(page cybereason.MalwarePage) error {
		pages = append(pages, page)
		return nil
	})
	return pages, err
}

func TestQueryMalwarePagesAndWindow(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(36, 30, 40, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.PageSize = 7 }, nil)
	from, to := testNow.Add(-5*24*time.Hour), testNow.Add(-24*time.Hour)

	pages, err := collectMalware(t, client, from, to)
	if err != nil {
		t.Fatalf("QueryMalware: %v", err)
	}

	type alertKey struct {
		guid string
		ms   int64
	}
	var want []alertKey
	guids := make(map[string]int)
	for _, raw := range tenant.Malware() {
		var alert struct {
			GUID      string `json:"guid"`
			Timestamp int64  `json:"timestamp"`
		}
		if err := json.Unmarshal(raw, &alert); err != nil {
			t.Fatal(err)
		}
		guids[alert.GUID]++
		if alert.Timestamp >= from.UnixMilli() && alert.Timestamp < to.UnixMilli() {
			want = append(want, alertKey{alert.GUID, alert.Timestamp})
		}
	}
	var got []alertKey
	for i, page := range pages {
		if page.Index != i {
			t.Errorf("page %d has Index %d", i, page.Index)
		}
		for _, alert := range page.Malware {
			got = append(got, alertKey{alert.GUID, alert.Timestamp.UnixMilli()})
		}
	}
	sortKeys := func(a, b alertKey) int {
		if a.ms != b.ms {
			return int(a.ms - b.ms)
		}
		return bytes.Compare([]byte(a.guid), []byte(b.guid))
	}
	slices.SortFunc(want, sortKeys)
	slices.SortFunc(got, sortKeys)
	if !slices.Equal(got, want) {
		t.Errorf("got %d alerts, want the %d alerts of the window", len(got), len(want))
	}
	if len(pages) < 2 {
		t.Errorf("%d pages of 7 for %d alerts, want several", len(pages), len(want))
	}
	repeated := false
	for _, count := range guids {
		repeated = repeated || count > 1
	}
	if !repeated {
		t.Error("no generated malware alert repeats a guid")
	}
}

func TestQueryMalwareEndlessPaging(t *testing.T) {
	tests := []struct {
		name string
		mode cybereasontest.EndlessPaging
		want error
	}{
		{"same page repeated", cybereasontest.PagingRepeatLastPage, cybereason.ErrPageRepeated},
		{"new page every time", cybereasontest.PagingNewSensors, cybereason.ErrTooManyPages},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(37, 20, 12, testNow))
			console.SetMalwarePaging(test.mode)
			client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) {
				c.PageSize = 5
				c.MaxPages = 6
			}, nil)

			_, err := collectMalware(t, client, testNow.Add(-30*24*time.Hour), testNow)

			if !errors.Is(err, test.want) {
				t.Fatalf("QueryMalware error %v, want %v", err, test.want)
			}
			if requests := console.Stats().Requests["POST /rest/malware/query"]; requests > 6 {
				t.Errorf("%d requests with MaxPages 6", requests)
			}
		})
	}
}

func TestPoliciesFlatAndUnderMetadata(t *testing.T) {
	dir := t.TempDir()
	writeTenantFile(t, dir, cybereasontest.SensorsFile, `[]`)
	writeTenantFile(t, dir, cybereasontest.MalopsFile, `[]`)
	writeTenantFile(t, dir, cybereasontest.PoliciesFile, `[
	  {"id":"p-flat","name":"Flat","isDefault":true},
	  {"metadata":{"id":"p-nested","name":"Nested","isDefault":false},"configuration":{}},
	  {"id":17,"name":"Numeric id"}
	]`)
	tenant, err := cybereasontest.LoadTenant(dir)
	if err != nil {
		t.Fatal(err)
	}
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)

	policies, err := client.Policies(context.Background())
	if err != nil {
		t.Fatalf("Policies: %v", err)
	}
	var ids []string
	for _, policy := range policies {
		ids = append(ids, policy.ID)
	}
	if want := []string{"p-flat", "p-nested", "17"}; !slices.Equal(ids, want) {
		t.Errorf("policy ids %q, want %q", ids, want)
	}
	if !bytes.Contains(policies[1].Raw, []byte(`"configuration":{}`)) {
		t.Errorf("policy raw %s lost members", policies[1].Raw)
	}
}

func TestPoliciesMatchSensors(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(38, 200, 0, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)

	policies, err := client.Policies(context.Background())
	if err != nil {
		t.Fatalf("Policies: %v", err)
	}
	ids := make(map[string]bool)
	for _, policy := range policies {
		ids[policy.ID] = true
	}
	for _, raw := range tenant.Sensors() {
		var sensor struct {
			PolicyID string `json:"policyId"`
		}
		_ = json.Unmarshal(raw, &sensor)
		if !ids[sensor.PolicyID] {
			t.Fatalf("sensor policy %q is not in the policy list", sensor.PolicyID)
		}
	}
}

func TestPublicTenantFeeds(t *testing.T) {
	if _, err := os.Stat(publicTenantDir); err != nil {
		t.Skipf("the public tenant folder %s is not available: %v", publicTenantDir, err)
	}
	tenant, err := cybereasontest.LoadTenant(publicTenantDir)
	if err != nil {
		t.Fatal(err)
	}
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)
	ctx := context.Background()
	all := time.UnixMilli(0)

	v2, err := client.MalopsV2(ctx, all, testNow)
	if err != nil || len(v2) != 5 {
		t.Errorf("MalopsV2: %d MalOps, error %v; want the 4 inbox MalOps and the one of %s", len(v2), err, cybereasontest.MalopsV2File)
	}

	pages, err := collectMalware(t, client, all, testNow)
	if err != nil || len(pages) != 1 || len(pages[0].Malware) != 1 {
		t.Errorf("QueryMalware: %d pages, error %v; want one alert", len(pages), err)
	}

	for _, guid := range crimesGUIDs(t) {
		details, err := client.EDRMalopDetails(ctx, guid)
		if err != nil || !bytes.Contains(details, []byte(`"guidString":"`+guid+`"`)) {
			t.Errorf("EDRMalopDetails(%s): error %v", guid, err)
		}
	}
	detailFiles, _ := filepath.Glob(filepath.Join(publicTenantDir, cybereasontest.DetailsDir, "*.json"))
	for _, path := range detailFiles {
		guid := filepath.Base(path[:len(path)-len(".json")])
		details, err := client.EPPMalopDetails(ctx, guid)
		if err != nil || guidOf(t, details) != guid {
			t.Errorf("EPPMalopDetails(%s): error %v", guid, err)
		}
	}

	policies, err := client.Policies(ctx)
	if err != nil || len(policies) == 0 {
		t.Errorf("Policies: %d policies, error %v; want those of the sensors", len(policies), err)
	}
}

// crimesGUIDs lists the MalOps whose EDR details the public tenant contains: one per crimes file, and
// one of the whole crimes/unified response.
func crimesGUIDs(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(publicTenantDir, cybereasontest.CrimesDir, "*.json"))
	var guids []string
	for _, path := range files {
		guids = append(guids, filepath.Base(path[:len(path)-len(".json")]))
	}
	data, err := os.ReadFile(filepath.Join(publicTenantDir, cybereasontest.CrimesFile("MalopProcess")))
	if err != nil {
		t.Fatal(err)
	}
	var response struct {
		Data struct {
			Elements map[string]json.RawMessage `json:"resultIdToElementDataMap"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &response); err != nil {
		t.Fatal(err)
	}
	for guid := range response.Data.Elements {
		guids = append(guids, guid)
		break
	}
	if len(guids) < 2 {
		t.Fatal("the public tenant has no crimes details")
	}
	return guids
}

func writeTenantFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMalformedObjectsReturnedAsInvalid checks that one object the client
// cannot read does not fail the whole response: it comes back with Invalid set.
func TestMalformedObjectsReturnedAsInvalid(t *testing.T) {
	url := startScriptedConsole(t, func(path string, _ []byte) (int, string) {
		switch path {
		case "/rest/detection/inbox":
			return http.StatusOK, `{"malops":[{"guid":"good","lastUpdateTime":1000},{"guid":"bad","lastUpdateTime":"soon"},{"displayName":"no guid"}]}`
		case "/rest/malware/query":
			return http.StatusOK, `{"data":{"malwares":[{"guid":"m1","timestamp":1000},{"guid":"m2"}],"hasMoreResults":false},"status":"SUCCESS"}`
		default:
			return http.StatusOK, `{"sensors":[{"sensorId":"s1"},{"sensorId":7}],"hasMoreResults":false}`
		}
	})
	client := newClient(t, url, testPassword, nil, nil)
	ctx := context.Background()

	malops, err := client.MalopsInbox(ctx, testNow.Add(-time.Hour), testNow)
	if err != nil {
		t.Fatalf("MalopsInbox: %v", err)
	}
	var invalid []string
	for _, malop := range malops {
		if malop.Invalid != nil {
			invalid = append(invalid, malop.Invalid.Error())
		}
	}
	if len(malops) != 3 || len(invalid) != 2 {
		t.Errorf("%d MalOps with %d invalid (%v), want 3 with 2 invalid", len(malops), len(invalid), invalid)
	}

	var alerts []cybereason.Malware
	err = client.QueryMalware(ctx, testNow.Add(-time.Hour), testNow, func(page cybereason.MalwarePage) error {
		alerts = append(alerts, page.Malware...)
		return nil
	})
	if err != nil {
		t.Fatalf("QueryMalware: %v", err)
	}
	if len(alerts) != 2 || alerts[0].Invalid != nil || alerts[1].Invalid == nil {
		t.Errorf("malware alerts %+v, want the second one invalid", alerts)
	}

	var sensors []cybereason.Sensor
	err = client.QuerySensors(ctx, func(page cybereason.SensorPage) error {
		sensors = append(sensors, page.Sensors...)
		return nil
	})
	if err != nil {
		t.Fatalf("QuerySensors: %v", err)
	}
	if len(sensors) != 2 || sensors[0].Invalid != nil || sensors[1].Invalid == nil {
		t.Errorf("sensors %+v, want the second one invalid", sensors)
	}
}
