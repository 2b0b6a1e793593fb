package cybereason_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// startJitteryConsole starts a fake console that accepts testUser and testPassword and waits a
// random time up to maxDelay before each /rest response, so that pages requested together
// complete in random order.
func startJitteryConsole(t *testing.T, tenant *cybereasontest.Tenant, maxDelay time.Duration) (*cybereasontest.Console, string) {
	t.Helper()
	console := cybereasontest.NewHandler(tenant, cybereasontest.Options{Username: testUser, Password: testPassword})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/rest/") {
			timer := time.NewTimer(rand.N(maxDelay))
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
			}
		}
		console.ServeHTTP(w, r)
	}))
	t.Cleanup(server.Close)
	return console, server.URL
}

// newPagingClient returns a client with pages of pageSize sensors, concurrency pages requested at
// a time, and retries after 10 ms.
func newPagingClient(t *testing.T, url string, pageSize, concurrency int) *cybereason.Client {
	t.Helper()
	return newClient(t, url, testPassword, func(c *cybereason.Config) {
		c.PageSize = pageSize
		c.PageConcurrency = concurrency
		c.RetryBackoffMin = 10 * time.Millisecond
		c.RetryBackoffMax = 5 * time.Second
	}, nil)
}

// checkPagesServedOnce fails unless the console served each of the pages 0 to pages-1 exactly
// once and no other page.
func checkPagesServedOnce(t *testing.T, stats cybereasontest.Stats, pages int) {
	t.Helper()
	for page := range pages {
		if stats.SensorPages[page] != 1 {
			t.Errorf("page %d was served %d times, want once", page, stats.SensorPages[page])
		}
	}
	if len(stats.SensorPages) != pages {
		t.Errorf("console served pages %v, want only pages 0 to %d", stats.SensorPages, pages-1)
	}
}

func TestQuerySensorsConcurrentPagesInOrder(t *testing.T) {
	tests := []struct {
		name        string
		sensors     int
		pageSize    int
		concurrency int
	}{
		{"one page at a time", 950, 100, 1},
		{"two pages", 950, 100, 2},
		{"three pages, last page full", 1000, 100, 3},
		{"more pages than exist", 450, 100, 8},
		{"one page only", 40, 100, 3},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tenant := cybereasontest.GenerateTenant(31, test.sensors, 0, testNow)
			console, url := startJitteryConsole(t, tenant, 30*time.Millisecond)
			client := newPagingClient(t, url, test.pageSize, test.concurrency)

			result, err := querySensors(t, client)
			if err != nil {
				t.Fatalf("QuerySensors: %v", err)
			}

			pages := (test.sensors + test.pageSize - 1) / test.pageSize
			if want := pageRange(pages); !slices.Equal(result.pages, want) {
				t.Errorf("callback got pages %v, want %v", result.pages, want)
			}
			checkInventory(t, tenant, result.ids)
			stats := console.Stats()
			checkPagesServedOnce(t, stats, pages)
			if requested := stats.Requests["POST /rest/sensors/query"]; requested != pages {
				t.Errorf("client sent %d sensors queries, want %d: none past the last page", requested, pages)
			}
			if stats.Logins != 1 {
				t.Errorf("console counted %d logins, want 1", stats.Logins)
			}
		})
	}
}

func TestQuerySensorsConcurrentSessionExpiry(t *testing.T) {
	const concurrency = 3
	tests := []struct {
		name       string
		pagesFirst int // pages served before the session expires
	}{
		{"after the first page", 1},
		{"after the fourth page", 4},
		// Later, every page left could already be in flight and pass the session check.
		{"after the seventh page", 7},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tenant := cybereasontest.GenerateTenant(32, 950, 0, testNow)
			console, url := startJitteryConsole(t, tenant, 30*time.Millisecond)
			client := newPagingClient(t, url, 100, concurrency)

			console.ExpireSessionsAfterPages(test.pagesFirst)
			result, err := querySensors(t, client)
			if err != nil {
				t.Fatalf("QuerySensors: %v", err)
			}

			if want := pageRange(10); !slices.Equal(result.pages, want) {
				t.Errorf("callback got pages %v, want %v", result.pages, want)
			}
			checkInventory(t, tenant, result.ids)
			stats := console.Stats()
			checkPagesServedOnce(t, stats, 10)
			if stats.Logins != 2 {
				t.Errorf("console counted %d logins, want 2 (the first and one shared re-login)", stats.Logins)
			}
			// Every request in flight when the session expired may meet it, but no other.
			if stats.LoginRedirects > concurrency {
				t.Errorf("console redirected %d requests to the login page, want at most %d", stats.LoginRedirects, concurrency)
			}
		})
	}
}

func TestQuerySensorsConcurrentRetry(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*cybereasontest.Console)
	}{
		{"429 with Retry-After", func(c *cybereasontest.Console) { c.Throttle(1, time.Second) }},
		{"503", func(c *cybereasontest.Console) { c.FailRequests(1, http.StatusServiceUnavailable) }},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tenant := cybereasontest.GenerateTenant(33, 800, 0, testNow)
			console, url := startJitteryConsole(t, tenant, 30*time.Millisecond)
			client := newPagingClient(t, url, 100, 3)

			// The fault is armed once page 0 is handled, so it meets one of the pages then
			// requested together.
			var pages []int
			err := client.QuerySensors(context.Background(), func(page cybereason.SensorPage) error {
				if page.Index == 0 {
					test.fault(console)
				}
				pages = append(pages, page.Index)
				return nil
			})
			if err != nil {
				t.Fatalf("QuerySensors: %v", err)
			}

			if want := pageRange(8); !slices.Equal(pages, want) {
				t.Errorf("callback got pages %v, want %v", pages, want)
			}
			stats := console.Stats()
			checkPagesServedOnce(t, stats, 8)
			if faults := stats.ThrottledResponses + stats.FailedResponses; faults != 1 {
				t.Errorf("console gave %d error responses, want 1", faults)
			}
			if requested := stats.Requests["POST /rest/sensors/query"]; requested != 9 {
				t.Errorf("client sent %d sensors queries, want 9: 8 pages and one retry", requested)
			}
		})
	}
}

func TestQuerySensorsCanceledMidway(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(34, 1000, 0, testNow)
	console, url := startJitteryConsole(t, tenant, 30*time.Millisecond)
	client := newPagingClient(t, url, 100, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var pages []int
	err := client.QuerySensors(ctx, func(page cybereason.SensorPage) error {
		pages = append(pages, page.Index)
		if page.Index == 2 {
			cancel()
		}
		return nil
	})

	if !errors.Is(err, context.Canceled) {
		t.Fatalf("QuerySensors returned %v, want context.Canceled", err)
	}
	if !slices.Equal(pages, []int{0, 1, 2}) {
		t.Errorf("callback got pages %v, want [0 1 2] and none after the cancellation", pages)
	}
	// The goroutine check of TestMain fails the package if a request goroutine outlived
	// QuerySensors. The console may count a canceled request late, so it gets time to do so.
	time.Sleep(100 * time.Millisecond)
	if requested := console.Stats().Requests["POST /rest/sensors/query"]; requested > 5 {
		t.Errorf("client sent %d sensors queries, want at most 5: pages 0 to 2 and 2 ahead", requested)
	}
}

func TestQuerySensorsConcurrentRejectedLogin(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(35, 950, 0, testNow)
	console, url := startJitteryConsole(t, tenant, 30*time.Millisecond)
	var passwordChanged atomic.Bool
	client := newClient(t, url, testPassword, func(c *cybereason.Config) {
		c.PageSize = 100
		c.PageConcurrency = 3
		c.Password = func() (string, error) {
			if passwordChanged.Load() {
				return "an outdated password", nil
			}
			return testPassword, nil
		}
	}, nil)

	// Once page 0 is handled, the session expires and the configured password is wrong, so
	// every later request needs a login that the console rejects.
	err := client.QuerySensors(context.Background(), func(page cybereason.SensorPage) error {
		if page.Index == 0 {
			passwordChanged.Store(true)
			console.ExpireSessions()
		}
		return nil
	})

	if !errors.Is(err, cybereason.ErrCredentialsRejected) {
		t.Fatalf("QuerySensors returned %v, want ErrCredentialsRejected", err)
	}
	stats := console.Stats()
	if stats.Logins != 1 {
		t.Errorf("console accepted %d logins, want only the first", stats.Logins)
	}
	if stats.RejectedLogins != 1 {
		t.Errorf("console rejected %d logins, want 1: the rejected password is not sent again", stats.RejectedLogins)
	}
}

// startChangingConsole starts a console that accepts every login and serves sensors pages of
// the sensorIds s0 to s(n-1), where n is sizes[0] at first and becomes sizes[1] once page
// changeAfter was served. Each response waits a random time up to 20 ms. It returns the console
// URL and a function that lists the page indexes requested.
func startChangingConsole(t *testing.T, sizes [2]int, changeAfter int) (string, func() []int) {
	t.Helper()
	var (
		mu        sync.Mutex
		sensors   = sizes[0]
		requested []int
	)
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
		time.Sleep(rand.N(20 * time.Millisecond))

		mu.Lock()
		requested = append(requested, query.Offset)
		total := sensors
		if query.Offset == changeAfter {
			sensors = sizes[1]
		}
		mu.Unlock()

		page := []map[string]string{}
		for i := query.Offset * query.Limit; i < min((query.Offset+1)*query.Limit, total); i++ {
			page = append(page, map[string]string{"sensorId": fmt.Sprintf("s%03d", i)})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"totalResults":   total,
			"sensors":        page,
			"hasMoreResults": (query.Offset+1)*query.Limit < total,
		})
	}))
	t.Cleanup(server.Close)
	return server.URL, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(requested))
	}
}

func TestQuerySensorsFleetChangesSize(t *testing.T) {
	tests := []struct {
		name        string
		sizes       [2]int // sensors before and after the change
		changeAfter int    // the page served just before the change
		wantPages   int    // pages handed to the callback
		maxExtra    int    // requests allowed past the last page
	}{
		{"grows past the pages known", [2]int{25, 37}, 0, 4, 0},
		{"grows within the last page", [2]int{25, 29}, 0, 3, 0},
		{"shrinks by two pages", [2]int{45, 23}, 0, 3, 1},
		{"shrinks in the middle", [2]int{90, 61}, 3, 7, 2},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			url, requested := startChangingConsole(t, test.sizes, test.changeAfter)
			client := newPagingClient(t, url, 10, 3)

			result, err := querySensors(t, client)
			if err != nil {
				t.Fatalf("QuerySensors: %v", err)
			}

			if want := pageRange(test.wantPages); !slices.Equal(result.pages, want) {
				t.Errorf("callback got pages %v, want %v", result.pages, want)
			}
			// Sensors are added and removed at the end of the sort order, so no sensor changes
			// pages: the inventory is the fleet after the change.
			var want []string
			for i := range test.sizes[1] {
				want = append(want, fmt.Sprintf("s%03d", i))
			}
			if !slices.Equal(result.ids, want) {
				t.Errorf("got sensors %v, want s000 to s%03d once each, in order", result.ids, test.sizes[1]-1)
			}
			got := requested()
			if compacted := slices.Compact(slices.Clone(got)); !slices.Equal(compacted, got) {
				t.Errorf("requested pages %v, want each page once", got)
			}
			if extra := len(got) - test.wantPages; extra < 0 || extra > test.maxExtra {
				t.Errorf("requested pages %v; want pages 0 to %d and at most %d more", got, test.wantPages-1, test.maxExtra)
			}
		})
	}
}

// pageRange returns the page indexes 0 to n-1.
func pageRange(n int) []int {
	pages := make([]int, n)
	for i := range pages {
		pages[i] = i
	}
	return pages
}
