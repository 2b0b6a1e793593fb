package cybereasontest_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

const (
	testUser     = "analyst@example.com"
	testPassword = "s3cret-pass"
)

var sessionIDPattern = regexp.MustCompile(`^[0-9A-F]{32}$`)

// console is a started fake console and a client that follows no redirects, as the connector's
// client does.
type console struct {
	*cybereasontest.Server
	http *http.Client
}

func startConsole(t *testing.T, tenant *cybereasontest.Tenant) *console {
	t.Helper()
	server := cybereasontest.NewServer(tenant, cybereasontest.Options{Username: testUser, Password: testPassword})
	t.Cleanup(server.Close)

	client := server.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Cleanup(client.CloseIdleConnections)
	return &console{Server: server, http: client}
}

// response is a finished HTTP exchange with its body read (and decompressed by the transport).
type response struct {
	status  int
	header  http.Header
	cookies []*http.Cookie
	body    []byte
}

func (c *console) send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, cookies: resp.Cookies(), body: body}
}

func (c *console) login(t *testing.T, user, password string) response {
	t.Helper()
	form := url.Values{"username": {user}, "password": {password}}
	req, err := http.NewRequest(http.MethodPost, c.URL+"/login.html", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(t, req)
}

// session logs in and returns the session cookie.
func (c *console) session(t *testing.T) *http.Cookie {
	t.Helper()
	resp := c.login(t, testUser, testPassword)
	cookie := findCookie(resp.cookies, "JSESSIONID")
	if resp.status != http.StatusFound || cookie == nil {
		t.Fatalf("login: status %d, cookies %v", resp.status, resp.cookies)
	}
	return cookie
}

func (c *console) post(t *testing.T, path string, session *http.Cookie, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if session != nil {
		req.AddCookie(session)
	}
	return c.send(t, req)
}

func (c *console) get(t *testing.T, path string, session *http.Cookie) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if session != nil {
		req.AddCookie(session)
	}
	return c.send(t, req)
}

func findCookie(cookies []*http.Cookie, name string) *http.Cookie {
	for _, cookie := range cookies {
		if cookie.Name == name {
			return cookie
		}
	}
	return nil
}

func TestLoginAcceptedSetsSession(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(1, 3, 0, testNow))

	resp := c.login(t, testUser, testPassword)

	if resp.status != http.StatusFound || resp.header.Get("Location") != "/#/current?" {
		t.Errorf("status %d, Location %q; want 302 to /#/current?", resp.status, resp.header.Get("Location"))
	}
	if len(resp.body) != 0 {
		t.Errorf("body %q, want empty", resp.body)
	}
	session := findCookie(resp.cookies, "JSESSIONID")
	if session == nil {
		t.Fatalf("no JSESSIONID cookie in %v", resp.cookies)
	}
	if !sessionIDPattern.MatchString(session.Value) || session.Path != "/" || !session.HttpOnly || session.MaxAge != 28800 {
		t.Errorf("JSESSIONID cookie %+v, want 32 upper-case hex digits, Path=/, HttpOnly, Max-Age=28800", session)
	}
	if remember := findCookie(resp.cookies, "rememberMe"); remember == nil || remember.Value != "deleteMe" || remember.MaxAge >= 0 {
		t.Errorf("rememberMe cookie %+v, want deleteMe with Max-Age=0", remember)
	}
	if stats := c.Stats(); stats.Logins != 1 {
		t.Errorf("Stats().Logins = %d, want 1", stats.Logins)
	}
}

func TestLoginRejectedRedirectsToError(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(1, 3, 0, testNow))

	resp := c.login(t, testUser, "wrong")

	if location := resp.header.Get("Location"); resp.status != http.StatusFound || !strings.Contains(location, "error") {
		t.Errorf("status %d, Location %q; want 302 to a URL containing error", resp.status, location)
	}
	if findCookie(resp.cookies, "JSESSIONID") == nil {
		t.Error("a rejected login sets no JSESSIONID, but the console sets one")
	}
	page := c.get(t, resp.header.Get("Location"), nil)
	if page.status != http.StatusOK || !bytes.Contains(page.body, []byte("<app-login>")) {
		t.Errorf("GET %s: status %d, want 200 with the login page", resp.header.Get("Location"), page.status)
	}
	if stats := c.Stats(); stats.Logins != 0 || stats.RejectedLogins != 1 {
		t.Errorf("Stats: %d logins, %d rejected; want 0 and 1", stats.Logins, stats.RejectedLogins)
	}
}

func TestPagesAreHTML(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(1, 3, 0, testNow))
	tests := []struct {
		path string
		want []string
	}{
		{"/login.html", []string{"<title>Cybereason | Login</title>", "<app-login></app-login>"}},
		{"/", []string{"<title>Cybereason</title>", "<app></app>"}},
	}
	for _, test := range tests {
		resp := c.get(t, test.path, nil)
		if resp.status != http.StatusOK || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: status %d, Content-Type %q; want 200 text/html", test.path, resp.status, resp.header.Get("Content-Type"))
		}
		for _, want := range test.want {
			if !bytes.Contains(resp.body, []byte(want)) {
				t.Errorf("GET %s: body does not contain %s", test.path, want)
			}
		}
	}
}

func TestRESTWithoutSessionRedirectsToLogin(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(1, 3, 0, testNow))
	tests := []struct {
		name    string
		session *http.Cookie
	}{
		{"no cookie", nil},
		{"unknown cookie", &http.Cookie{Name: "JSESSIONID", Value: strings.Repeat("A", 32)}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			resp := c.post(t, "/rest/sensors/query", test.session, `{}`)
			if resp.status != http.StatusFound || resp.header.Get("Location") != "/login.html" {
				t.Errorf("status %d, Location %q; want 302 to /login.html", resp.status, resp.header.Get("Location"))
			}
			if len(resp.body) != 0 {
				t.Errorf("body %q, want empty", resp.body)
			}
			if cookie := findCookie(resp.cookies, "JSESSIONID"); cookie == nil || !sessionIDPattern.MatchString(cookie.Value) {
				t.Errorf("JSESSIONID cookie %v, want a new session id", cookie)
			}
		})
	}
}

func TestLogoutEndsSession(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(1, 3, 0, testNow))
	session := c.session(t)

	c.get(t, "/logout", session)
	resp := c.post(t, "/rest/sensors/query", session, `{}`)

	if resp.status != http.StatusFound {
		t.Errorf("query after logout: status %d, want 302 to the login page", resp.status)
	}
	if stats := c.Stats(); stats.Logouts != 1 {
		t.Errorf("Stats().Logouts = %d, want 1", stats.Logouts)
	}
}

// sensorsResult is the decoded response body of POST /rest/sensors/query.
type sensorsResult struct {
	TotalResults  int                        `json:"totalResults"`
	SensorsStatus map[string]json.RawMessage `json:"sensorsStatus"`
	Sensors       []struct {
		SensorID string `json:"sensorId"`
		Status   string `json:"status"`
	} `json:"sensors"`
	HasMoreResults *bool `json:"hasMoreResults"`
}

func decodeSensors(t *testing.T, resp response) sensorsResult {
	t.Helper()
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var result sensorsResult
	if err := json.Unmarshal(resp.body, &result); err != nil {
		t.Fatalf("decode sensors response: %v", err)
	}
	if result.HasMoreResults == nil {
		t.Fatal("the response has no hasMoreResults")
	}
	return result
}

func TestSensorsQueryPagesByIndex(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(2, 250, 0, testNow)
	c := startConsole(t, tenant)
	session := c.session(t)

	var ids []string
	for page := 0; page < 3; page++ {
		result := decodeSensors(t, c.post(t, "/rest/sensors/query", session,
			fmt.Sprintf(`{"limit":100,"offset":%d,"sortingFieldName":"sensorId","sortDirection":"ASC","filters":[]}`, page)))
		if result.TotalResults != 250 {
			t.Errorf("page %d: totalResults %d, want 250", page, result.TotalResults)
		}
		if more := page < 2; *result.HasMoreResults != more {
			t.Errorf("page %d: hasMoreResults %t, want %t", page, *result.HasMoreResults, more)
		}
		if string(result.SensorsStatus["@class"]) != `".SensorsStatusOverview"` {
			t.Errorf("page %d: sensorsStatus @class is %s", page, result.SensorsStatus["@class"])
		}
		for _, sensor := range result.Sensors {
			ids = append(ids, sensor.SensorID)
		}
	}

	want := slices.Sorted(slices.Values(tenant.SensorIDs()))
	if !slices.Equal(ids, want) {
		t.Errorf("pages returned %d sensors, not the tenant's %d sensorIds in sensorId order", len(ids), len(want))
	}
	if stats := c.Stats(); stats.SensorPages[0] != 1 || stats.SensorPages[1] != 1 || stats.SensorPages[2] != 1 {
		t.Errorf("Stats().SensorPages = %v, want one result per page", stats.SensorPages)
	}
}

func TestSensorsQueryFilters(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(2, 300, 0, testNow)
	c := startConsole(t, tenant)
	session := c.session(t)

	all := decodeSensors(t, c.post(t, "/rest/sensors/query", session, `{}`))
	archived := 0
	for _, sensor := range all.Sensors {
		if sensor.Status == "Archived" {
			archived++
		}
	}
	if archived == 0 {
		t.Fatal("the generated tenant has no archived sensor to filter out")
	}

	tests := []struct {
		operator string
		want     int
	}{
		{"NotEquals", len(all.Sensors) - archived},
		{"Equals", archived},
	}
	for _, test := range tests {
		result := decodeSensors(t, c.post(t, "/rest/sensors/query", session,
			`{"filters":[{"fieldName":"status","operator":"`+test.operator+`","values":["Archived"]}]}`))
		if len(result.Sensors) != test.want || result.TotalResults != test.want {
			t.Errorf("status %s Archived: %d sensors, totalResults %d; want %d", test.operator, len(result.Sensors), result.TotalResults, test.want)
		}
		for _, sensor := range result.Sensors {
			if (sensor.Status == "Archived") != (test.operator == "Equals") {
				t.Errorf("status %s Archived returned a sensor with status %s", test.operator, sensor.Status)
			}
		}
	}
}

func TestSensorsQueryRejectsInvalidQueries(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(2, 5, 0, testNow))
	session := c.session(t)
	tests := []struct {
		name, body, want string
	}{
		{"limit above 1000", `{"limit":1001}`, "limit 1001"},
		{"negative offset", `{"offset":-1}`, "offset -1"},
		{"unknown sort field", `{"sortingFieldName":"shoeSize"}`, "shoeSize"},
		{"unknown operator", `{"filters":[{"fieldName":"status","operator":"Resembles","values":["x"]}]}`, "Resembles"},
		{"not JSON", `limit=5`, "invalid request body"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			resp := c.post(t, "/rest/sensors/query", session, test.body)
			if resp.status != http.StatusBadRequest || !bytes.Contains(resp.body, []byte(test.want)) {
				t.Errorf("status %d, body %s; want 400 mentioning %q", resp.status, resp.body, test.want)
			}
		})
	}
}

func TestResponsesGzippedOnRequest(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(2, 5, 0, testNow))
	session := c.session(t)

	req, err := http.NewRequest(http.MethodPost, c.URL+"/rest/sensors/query", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(session)
	req.Header.Set("Accept-Encoding", "gzip") // set explicitly, so the transport leaves the body compressed
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	decompressed, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var result sensorsResult
	if err := json.NewDecoder(decompressed).Decode(&result); err != nil || len(result.Sensors) != 5 {
		t.Errorf("decoded %d sensors (error %v), want 5", len(result.Sensors), err)
	}
}

func TestInboxWindow(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(4, 50, 40, testNow)
	c := startConsole(t, tenant)
	session := c.session(t)
	malops := decodeObjects(t, tenant.Malops())

	windowStart := testNow.Add(-72 * time.Hour).UnixMilli()
	windowEnd := testNow.Add(-24 * time.Hour).UnixMilli()
	var want []string
	for _, malop := range malops {
		if millis(t, malop["creationTime"]) <= windowEnd && millis(t, malop["lastUpdateTime"]) >= windowStart {
			want = append(want, malop["guid"].(string))
		}
	}
	if len(want) == 0 || len(want) == len(malops) {
		t.Fatalf("the window selects %d of %d MalOps; pick a seed or window that separates them", len(want), len(malops))
	}

	resp := c.post(t, "/rest/detection/inbox", session, fmt.Sprintf(`{"startTime":%d,"endTime":%d}`, windowStart, windowEnd))
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var result struct {
		Malops []struct {
			GUID string `json:"guid"`
		} `json:"malops"`
		MachineCounterModel map[string]int `json:"machineCounterModel"`
	}
	if err := json.Unmarshal(resp.body, &result); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, malop := range result.Malops {
		got = append(got, malop.GUID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("inbox returned %v, want %v", got, want)
	}
	if counter := result.MachineCounterModel; counter["totalMachines"] == 0 ||
		counter["onlineInfectedCount"]+counter["onlineCleanCount"]+counter["offlineInfectedCount"]+counter["offlineCleanCount"] != counter["totalMachines"] {
		t.Errorf("machineCounterModel %v does not add up", counter)
	}
}

func TestInboxRejectsInvalidRange(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(4, 5, 5, testNow))
	session := c.session(t)
	tests := []struct{ name, body string }{
		{"start after end", `{"startTime":2000,"endTime":1000}`},
		{"missing start", `{"endTime":1000}`},
		{"missing end", `{"startTime":1000}`},
		{"not a number", `{"startTime":"yesterday","endTime":1000}`},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			resp := c.post(t, "/rest/detection/inbox", session, test.body)
			if resp.status != http.StatusBadRequest || !bytes.Contains(resp.body, []byte("Time range is not valid")) {
				t.Errorf("status %d, body %s; want 400 Time range is not valid", resp.status, resp.body)
			}
		})
	}
}
