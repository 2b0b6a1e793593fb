package cybereason_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// collected is what QuerySensors passed to its callback.
type collected struct {
	pages  []int
	ids    []string
	raws   map[string]json.RawMessage
	totals []int
}

func querySensors(t *testing.T, client *cybereason.Client) (collected, error) {
	t.Helper()
	result := collected{raws: make(map[string]json.RawMessage)}
	err := client.QuerySensors(context.Background(), func(page cybereason.SensorPage) error {
		result.pages = append(result.pages, page.Index)
		result.totals = append(result.totals, page.TotalResults)
		for _, sensor := range page.Sensors {
			result.ids = append(result.ids, sensor.ID)
			result.raws[sensor.ID] = sensor.Raw
		}
		return nil
	})
	return result, err
}

// checkInventory fails unless ids holds every sensorId of the tenant exactly once.
func checkInventory(t *testing.T, tenant *cybereasontest.Tenant, ids []string) {
	t.Helper()
	want := slices.Sorted(slices.Values(tenant.SensorIDs()))
	got := slices.Sorted(slices.Values(ids))
	if len(got) != len(want) {
		t.Errorf("got %d sensors, the tenant has %d", len(got), len(want))
	}
	if compacted := slices.Compact(slices.Clone(got)); len(compacted) != len(got) {
		t.Errorf("%d sensorIds were returned more than once", len(got)-len(compacted))
	}
	if !slices.Equal(got, want) {
		t.Error("the sensorIds returned differ from the tenant's")
	}
}

func TestQuerySensorsReadsEveryPage(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(21, 2500, 0, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)

	result, err := querySensors(t, client)
	if err != nil {
		t.Fatalf("QuerySensors: %v", err)
	}

	if !slices.Equal(result.pages, []int{0, 1, 2}) {
		t.Errorf("pages %v, want [0 1 2] for 2500 sensors of 1000 per page", result.pages)
	}
	if !slices.Equal(result.totals, []int{2500, 2500, 2500}) {
		t.Errorf("TotalResults %v, want 2500 on every page", result.totals)
	}
	checkInventory(t, tenant, result.ids)

	sensors := tenant.Sensors()
	for i, id := range tenant.SensorIDs() {
		if !bytes.Equal(result.raws[id], sensors[i]) {
			t.Fatalf("sensor %s: Raw differs from the console's object", id)
		}
	}
	stats := console.Stats()
	if stats.Logins != 1 || len(stats.SensorPages) != 3 {
		t.Errorf("console counted %d logins and pages %v; want 1 login and pages 0 to 2", stats.Logins, stats.SensorPages)
	}
}

func TestQuerySensorsSessionExpiresMidway(t *testing.T) {
	tests := []struct {
		name       string
		pagesFirst int // pages served before the session expires
	}{
		{"after the first page", 1},
		{"after the second page", 2},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tenant := cybereasontest.GenerateTenant(22, 950, 0, testNow)
			console := startConsole(t, tenant)
			// One page at a time, so exactly one request meets the expired session.
			client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) {
				c.PageSize = 300
				c.PageConcurrency = 1
			}, nil)

			console.ExpireSessionsAfterPages(test.pagesFirst)
			result, err := querySensors(t, client)
			if err != nil {
				t.Fatalf("QuerySensors: %v", err)
			}

			if !slices.Equal(result.pages, []int{0, 1, 2, 3}) {
				t.Errorf("pages %v, want [0 1 2 3]", result.pages)
			}
			checkInventory(t, tenant, result.ids)
			stats := console.Stats()
			if stats.Logins != 2 {
				t.Errorf("console counted %d logins, want 2 (the first and one more)", stats.Logins)
			}
			if stats.LoginRedirects != 1 {
				t.Errorf("console redirected %d requests to the login page, want 1", stats.LoginRedirects)
			}
			for page := range 4 {
				if stats.SensorPages[page] != 1 {
					t.Errorf("page %d was served %d times, want once", page, stats.SensorPages[page])
				}
			}
		})
	}
}

func TestQuerySensorsEndlessPaging(t *testing.T) {
	tests := []struct {
		name      string
		mode      cybereasontest.EndlessPaging
		want      error
		wantPages int // pages handed to the callback
	}{
		{"same page repeated", cybereasontest.PagingRepeatLastPage, cybereason.ErrPageRepeated, 3},
		{"new page every time", cybereasontest.PagingNewSensors, cybereason.ErrTooManyPages, 6},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(23, 250, 0, testNow))
			console.SetEndlessPaging(test.mode)
			client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) {
				c.PageSize = 100
				c.MaxPages = 6
			}, nil)

			result, err := querySensors(t, client)

			if !errors.Is(err, test.want) {
				t.Fatalf("QuerySensors error %v, want %v", err, test.want)
			}
			if len(result.pages) != test.wantPages {
				t.Errorf("callback got %d pages, want %d", len(result.pages), test.wantPages)
			}
			if requested := console.Stats().Requests["POST /rest/sensors/query"]; requested > 6 {
				t.Errorf("client requested %d pages with MaxPages 6", requested)
			}
		})
	}
}

func TestQuerySensorsHTMLInsteadOfJSON(t *testing.T) {
	t.Run("once: logs in again and retries", func(t *testing.T) {
		tenant := cybereasontest.GenerateTenant(24, 40, 0, testNow)
		console := startConsole(t, tenant)
		client := newClient(t, console.URL, testPassword, nil, nil)

		console.HTMLInsteadOfJSON(1)
		result, err := querySensors(t, client)
		if err != nil {
			t.Fatalf("QuerySensors: %v", err)
		}

		checkInventory(t, tenant, result.ids)
		if stats := console.Stats(); stats.Logins != 2 || stats.HTMLResponses != 1 {
			t.Errorf("console counted %d logins and %d HTML responses, want 2 and 1", stats.Logins, stats.HTMLResponses)
		}
	})

	t.Run("twice: fails without returning anything", func(t *testing.T) {
		console := startConsole(t, cybereasontest.GenerateTenant(24, 40, 0, testNow))
		client := newClient(t, console.URL, testPassword, nil, nil)

		console.HTMLInsteadOfJSON(2)
		result, err := querySensors(t, client)

		if err == nil || !strings.Contains(err.Error(), "/rest/sensors/query") || !strings.Contains(err.Error(), "HTML") {
			t.Fatalf("QuerySensors error %v, want one naming the endpoint and the HTML response", err)
		}
		if len(result.pages) != 0 {
			t.Errorf("callback got %d pages, want none", len(result.pages))
		}
		if stats := console.Stats(); stats.Logins != 2 {
			t.Errorf("console counted %d logins, want 2 (no loop of logins)", stats.Logins)
		}
	})
}

func TestQuerySensorsStopsOnCallbackError(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(25, 250, 0, testNow))
	client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.PageSize = 100 }, nil)
	stop := errors.New("stop here")

	calls := 0
	err := client.QuerySensors(context.Background(), func(cybereason.SensorPage) error {
		calls++
		return stop
	})

	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("QuerySensors returned %v after %d calls, want the callback's error after 1", err, calls)
	}
}

func TestQuerySensorsStatusErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		wantText      string
		wantTemporary bool
	}{
		{"forbidden", http.StatusForbidden, "lacks the role", false},
		{"throttled", http.StatusTooManyRequests, "429 Too Many Requests", true},
		{"server error", http.StatusInternalServerError, "500 Internal Server Error", true},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(26, 10, 0, testNow))
			// Without retries, so that the one injected failure reaches the caller.
			client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.MaxRetries = -1 }, nil)
			console.FailRequests(1, test.status)

			_, err := querySensors(t, client)

			var statusErr *cybereason.StatusError
			if !errors.As(err, &statusErr) {
				t.Fatalf("QuerySensors error %v, want a *StatusError", err)
			}
			if statusErr.StatusCode != test.status || statusErr.Temporary() != test.wantTemporary {
				t.Errorf("StatusError %d, Temporary %t; want %d, %t", statusErr.StatusCode, statusErr.Temporary(), test.status, test.wantTemporary)
			}
			if !strings.Contains(err.Error(), test.wantText) || !strings.Contains(err.Error(), "POST /rest/sensors/query") {
				t.Errorf("error %q does not name the endpoint and %q", err, test.wantText)
			}
		})
	}
}

func TestQuerySensorsBoundsResponseSize(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(27, 20, 0, testNow))
	client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.MaxResponseBytes = 4096 }, nil)

	_, err := querySensors(t, client)

	if err == nil || !strings.Contains(err.Error(), "larger than MaxResponseBytes") {
		t.Errorf("QuerySensors error %v, want one about MaxResponseBytes", err)
	}
}

func TestQuerySensorsOverTLSWithGzip(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(28, 30, 0, testNow)
	console := cybereasontest.NewHandler(tenant, cybereasontest.Options{Username: testUser, Password: testPassword})
	var mu sync.Mutex
	var encodings []string
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		encodings = append(encodings, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		console.ServeHTTP(w, r)
	}))
	t.Cleanup(server.Close)
	client := newClient(t, server.URL, testPassword, func(c *cybereason.Config) { c.HTTPClient = server.Client() }, nil)

	result, err := querySensors(t, client)
	if err != nil {
		t.Fatalf("QuerySensors over TLS: %v", err)
	}

	checkInventory(t, tenant, result.ids)
	mu.Lock()
	defer mu.Unlock()
	for _, encoding := range encodings {
		if encoding != "gzip" {
			t.Errorf("a request sent Accept-Encoding %q, want gzip", encoding)
		}
	}
}

func TestConcurrentCallsLogInAgainOnce(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(29, 300, 10, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.PageSize = 50 }, nil)
	ctx := context.Background()
	if err := client.Login(ctx); err != nil {
		t.Fatal(err)
	}

	console.ExpireSessions()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() { _, errs[0] = querySensors(t, client) })
	wg.Go(func() { _, errs[1] = client.MalopsInbox(ctx, tenant.OldestMalopTime(), testNow) })
	wg.Go(func() { _, errs[2] = client.MalopsInbox(ctx, tenant.OldestMalopTime(), testNow) })
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if stats := console.Stats(); stats.Logins != 2 {
		t.Errorf("console counted %d logins, want 2 (the first and one shared re-login)", stats.Logins)
	}
}

// startPagingConsole starts a console that accepts every login and serves sensors pages of the
// sensorIds s0 to s(sensors-1). The sensors query response has hasMoreResults only when
// withMore is set. It returns the console URL and a function that lists the page indexes
// requested.
func startPagingConsole(t *testing.T, sensors int, withMore bool) (string, func() []int) {
	t.Helper()
	var mu sync.Mutex
	var requested []int
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login.html" {
			http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "0123456789ABCDEF0123456789ABCDEF", Path: "/"})
			w.Header().Set("Location", "/#/current?")
			w.WriteHeader(http.StatusFound)
			return
		}
		var query struct{ Limit, Offset int }
		if err := json.NewDecoder(r.Body).Decode(&query); err != nil || query.Limit < 1 {
			http.Error(w, "invalid sensors query", http.StatusBadRequest)
			return
		}
		mu.Lock()
		requested = append(requested, query.Offset)
		mu.Unlock()

		response := map[string]any{"totalResults": sensors}
		page := []map[string]string{}
		for i := query.Offset * query.Limit; i < min((query.Offset+1)*query.Limit, sensors); i++ {
			page = append(page, map[string]string{"sensorId": fmt.Sprintf("s%d", i)})
		}
		response["sensors"] = page
		if withMore {
			response["hasMoreResults"] = (query.Offset+1)*query.Limit < sensors
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(response)
	}))
	t.Cleanup(server.Close)
	return server.URL, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(requested)
	}
}

func TestQuerySensorsWithoutHasMoreResults(t *testing.T) {
	tests := []struct {
		name      string
		sensors   int
		withMore  bool
		wantPages []int // page indexes requested
	}{
		{"flag present", 25, true, []int{0, 1, 2}},
		{"flag missing, last page partial", 25, false, []int{0, 1, 2}},
		{"flag missing, last page full", 20, false, []int{0, 1, 2}},
		{"flag missing, one partial page", 4, false, []int{0}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			url, requested := startPagingConsole(t, test.sensors, test.withMore)
			// One page at a time, so the pages arrive in the order they were requested.
			client := newClient(t, url, testPassword, func(c *cybereason.Config) {
				c.PageSize = 10
				c.PageConcurrency = 1
			}, nil)

			result, err := querySensors(t, client)
			if err != nil {
				t.Fatalf("QuerySensors: %v", err)
			}

			if len(result.ids) != test.sensors {
				t.Errorf("got %d sensors, want all %d", len(result.ids), test.sensors)
			}
			if got := requested(); !slices.Equal(got, test.wantPages) {
				t.Errorf("requested pages %v, want %v", got, test.wantPages)
			}
		})
	}
}
