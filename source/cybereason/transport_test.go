package cybereason_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

const sensorsEndpoint = "POST /rest/sensors/query"

// waitRecorder replaces the client's wait before a retry: it records each wait and returns at
// once, so retry tests take no time.
type waitRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *waitRecorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func (r *waitRecorder) recorded() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

// newRetryClient returns a client whose waits before retries are recorded instead of slept.
func newRetryClient(t *testing.T, baseURL string, change func(*cybereason.Config), logger *slog.Logger) (*cybereason.Client, *waitRecorder) {
	t.Helper()
	client := newClient(t, baseURL, testPassword, func(c *cybereason.Config) {
		c.RetryBackoffMin = 100 * time.Millisecond
		c.RetryBackoffMax = 10 * time.Second
		if change != nil {
			change(c)
		}
	}, logger)
	waits := &waitRecorder{}
	cybereason.SetSleep(client, waits.sleep)
	return client, waits
}

func TestRetryThenSuccess(t *testing.T) {
	tests := []struct {
		name     string
		inject   func(*cybereasontest.Server)
		minWait  time.Duration // lower bound of every recorded wait
		maxWait  time.Duration // upper bound of every recorded wait
		wantLogs string
	}{
		{"429 with Retry-After", func(s *cybereasontest.Server) { s.Throttle(2, 3*time.Second) }, 3 * time.Second, 10 * time.Second, `"status":429`},
		{"429 without Retry-After", func(s *cybereasontest.Server) { s.Throttle(2, 0) }, 50 * time.Millisecond, 200 * time.Millisecond, `"status":429`},
		{"503", func(s *cybereasontest.Server) { s.FailRequests(2, http.StatusServiceUnavailable) }, 50 * time.Millisecond, 200 * time.Millisecond, `"status":503`},
		{"500 Tomcat page", func(s *cybereasontest.Server) { s.FailRequests(2, http.StatusInternalServerError) }, 50 * time.Millisecond, 200 * time.Millisecond, `"status":500`},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tenant := cybereasontest.GenerateTenant(43, 5, 0, testNow)
			console := startConsole(t, tenant)
			var logs syncBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			client, waits := newRetryClient(t, console.URL, nil, logger)
			test.inject(console)

			result, err := querySensors(t, client)

			if err != nil {
				t.Fatalf("QuerySensors: %v", err)
			}
			checkInventory(t, tenant, result.ids)
			if attempts := console.Stats().Requests[sensorsEndpoint]; attempts != 3 {
				t.Errorf("console received %d sensors requests, want 3 (two failures, one success)", attempts)
			}
			recorded := waits.recorded()
			if len(recorded) != 2 {
				t.Fatalf("client waited %d times, want 2", len(recorded))
			}
			for i, wait := range recorded {
				if wait < test.minWait || wait > test.maxWait {
					t.Errorf("wait %d is %s, want %s to %s", i+1, wait, test.minWait, test.maxWait)
				}
			}
			output := logs.String()
			for _, want := range []string{"retrying", `"endpoint":"` + sensorsEndpoint + `"`, test.wantLogs, `"attempt":2`} {
				if !strings.Contains(output, want) {
					t.Errorf("logs lack %s:\n%s", want, output)
				}
			}
		})
	}
}

func TestRetryBackoffGrows(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(44, 5, 0, testNow))
	client, waits := newRetryClient(t, console.URL, func(c *cybereason.Config) {
		c.RetryBackoffMin, c.RetryBackoffMax = time.Second, 4*time.Second
	}, nil)
	console.FailRequests(5, http.StatusBadGateway)

	_, err := querySensors(t, client)

	var statusErr *cybereason.StatusError
	if !errors.As(err, &statusErr) || statusErr.StatusCode != http.StatusBadGateway {
		t.Fatalf("QuerySensors error %v, want a 502 *StatusError", err)
	}
	// Each wait is its backoff minus up to half of it: 1s, 2s, 4s, then capped at 4s.
	bounds := [][2]time.Duration{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}, {2 * time.Second, 4 * time.Second}, {2 * time.Second, 4 * time.Second}}
	recorded := waits.recorded()
	if len(recorded) != len(bounds) {
		t.Fatalf("client waited %d times, want %d: %v", len(recorded), len(bounds), recorded)
	}
	for i, wait := range recorded {
		if wait < bounds[i][0] || wait > bounds[i][1] {
			t.Errorf("wait %d is %s, want %s to %s", i+1, wait, bounds[i][0], bounds[i][1])
		}
	}
}

func TestRetriesExhausted(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(45, 5, 0, testNow))
	client, _ := newRetryClient(t, console.URL, func(c *cybereason.Config) { c.MaxRetries = 2 }, nil)
	console.FailRequests(10, http.StatusInternalServerError)

	_, err := querySensors(t, client)

	var statusErr *cybereason.StatusError
	if !errors.As(err, &statusErr) || statusErr.StatusCode != http.StatusInternalServerError {
		t.Fatalf("QuerySensors error %v, want a 500 *StatusError", err)
	}
	for _, want := range []string{sensorsEndpoint, "500 Internal Server Error", "gave up after 3 attempts", "HTTP Status 500"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if attempts := console.Stats().Requests[sensorsEndpoint]; attempts != 3 {
		t.Errorf("console received %d sensors requests, want 3", attempts)
	}
}

func TestRetryAfterLongerThanMaxStops(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(46, 5, 0, testNow))
	client, waits := newRetryClient(t, console.URL, nil, nil)
	console.Throttle(1, time.Hour)

	_, err := querySensors(t, client)

	if err == nil || !strings.Contains(err.Error(), "longer than RetryBackoffMax") {
		t.Fatalf("QuerySensors error %v, want one about the long Retry-After", err)
	}
	if recorded := waits.recorded(); len(recorded) != 0 {
		t.Errorf("client waited %v, want no wait", recorded)
	}
}

func TestRetryWaitEndsWithContext(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(47, 5, 0, testNow))
	client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) {
		c.RetryBackoffMin = time.Hour // the wait ends only by the cancellation below
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cybereason.SetSleep(client, func(waitCtx context.Context, _ time.Duration) error {
		cancel()
		<-waitCtx.Done()
		return waitCtx.Err()
	})
	console.Throttle(1, 0)

	err := client.QuerySensors(ctx, func(cybereason.SensorPage) error { return nil })

	if !errors.Is(err, context.Canceled) {
		t.Errorf("QuerySensors error %v, want context.Canceled", err)
	}
	var statusErr *cybereason.StatusError
	if !errors.As(err, &statusErr) || statusErr.StatusCode != http.StatusTooManyRequests {
		t.Errorf("QuerySensors error %v, want it to keep the 429 *StatusError", err)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(48, 5, 3, testNow))
	client, waits := newRetryClient(t, console.URL, nil, nil)
	console.FailRequests(1, http.StatusForbidden)

	malops, err := client.MalopsInbox(context.Background(), testNow.Add(-time.Hour), testNow)

	var statusErr *cybereason.StatusError
	if !errors.As(err, &statusErr) || statusErr.StatusCode != http.StatusForbidden {
		t.Fatalf("MalopsInbox error %v, want a 403 *StatusError", err)
	}
	if !strings.Contains(err.Error(), "lacks the role") || !strings.Contains(err.Error(), "POST /rest/detection/inbox") {
		t.Errorf("error %q does not name the endpoint and the missing role", err)
	}
	if malops != nil {
		t.Errorf("MalopsInbox returned %d MalOps with the error", len(malops))
	}
	if recorded := waits.recorded(); len(recorded) != 0 {
		t.Errorf("client waited %v before retrying a 403, want no retry", recorded)
	}
}

func TestEnvelopeFailures(t *testing.T) {
	statuses := []string{
		cybereason.StatusFailure, cybereason.StatusPartialSuccess, cybereason.StatusQueryLimitCrossed,
		cybereason.StatusTimeoutError, cybereason.StatusNoServersConfigured,
	}
	for _, status := range statuses {
		t.Run(status, func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(49, 5, 3, testNow))
			client, waits := newRetryClient(t, console.URL, nil, nil)
			ctx := context.Background()

			console.FailEnvelopes(1, status)
			malops, err := client.MalopsInbox(ctx, testNow.Add(-24*time.Hour), testNow)
			checkEnvelopeError(t, err, "POST /rest/detection/inbox", status)
			if malops != nil {
				t.Errorf("MalopsInbox returned %d MalOps with the error", len(malops))
			}

			console.FailEnvelopes(1, status)
			pages := 0
			err = client.QuerySensors(ctx, func(cybereason.SensorPage) error { pages++; return nil })
			checkEnvelopeError(t, err, sensorsEndpoint, status)
			if pages != 0 {
				t.Errorf("QuerySensors passed %d pages on with the error", pages)
			}

			if recorded := waits.recorded(); len(recorded) != 0 {
				t.Errorf("client retried an envelope failure after %v", recorded)
			}
			if stats := console.Stats(); stats.EnvelopeFailures != 2 || stats.Logins != 1 {
				t.Errorf("console counted %d envelope failures and %d logins, want 2 and 1", stats.EnvelopeFailures, stats.Logins)
			}
		})
	}
}

func checkEnvelopeError(t *testing.T, err error, endpoint, status string) {
	t.Helper()
	var envelopeErr *cybereason.EnvelopeError
	if !errors.As(err, &envelopeErr) {
		t.Fatalf("error %v, want an *EnvelopeError", err)
	}
	if envelopeErr.Endpoint != endpoint {
		t.Errorf("EnvelopeError.Endpoint = %q, want %q", envelopeErr.Endpoint, endpoint)
	}
	if envelopeErr.Status != status {
		t.Errorf("EnvelopeError.Status = %q, want %q", envelopeErr.Status, status)
	}
	if !strings.Contains(envelopeErr.Message, status) {
		t.Errorf("EnvelopeError.Message = %q, want the console's message", envelopeErr.Message)
	}
	if text := err.Error(); !strings.Contains(text, endpoint) || !strings.Contains(text, status) {
		t.Errorf("error %q does not name the endpoint and the status", text)
	}
}

func TestTruncatedJSON(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(50, 30, 0, testNow))
	client, waits := newRetryClient(t, console.URL, nil, nil)
	console.TruncateResponses(1)

	_, err := querySensors(t, client)

	if err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), sensorsEndpoint) {
		t.Fatalf("QuerySensors error %v, want a truncated-response error naming the endpoint", err)
	}
	stats := console.Stats()
	if stats.TruncatedResponses != 1 {
		t.Errorf("console truncated %d responses, want 1", stats.TruncatedResponses)
	}
	if stats.Logins != 1 || stats.Requests[sensorsEndpoint] != 1 {
		t.Errorf("console counted %d logins and %d sensors requests, want 1 and 1 (no new login, no retry)",
			stats.Logins, stats.Requests[sensorsEndpoint])
	}
	if recorded := waits.recorded(); len(recorded) != 0 {
		t.Errorf("client retried a truncated response after %v", recorded)
	}
}

func TestSlowConsoleTimesOut(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(51, 5, 0, testNow))
	client, waits := newRetryClient(t, console.URL, func(c *cybereason.Config) { c.Timeout = 50 * time.Millisecond }, nil)
	console.SlowResponses(10 * time.Second) // longer than the timeout; the request ends it

	err := client.Login(context.Background())

	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Login error %v, want one wrapping context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "timed out after 50ms") || !strings.Contains(err.Error(), "CYBEREASON_REQUEST_TIMEOUT") {
		t.Errorf("Login error %v, want a timeout naming 50ms and CYBEREASON_REQUEST_TIMEOUT", err)
	}
	if recorded := waits.recorded(); len(recorded) != 0 {
		t.Errorf("client retried a timeout after %v", recorded)
	}
}

// writeCAFile writes pem to a file in a test folder and returns its path.
func writeCAFile(t *testing.T, pem []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCAFileTrustsConsole(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(52, 5, 0, testNow)
	console := cybereasontest.NewTLSServer(tenant, cybereasontest.Options{Username: testUser, Password: testPassword})
	t.Cleanup(console.Close)
	caFile := writeCAFile(t, console.CertificatePEM())

	trusted := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.CAFile = caFile }, nil)
	result, err := querySensors(t, trusted)
	if err != nil {
		t.Fatalf("QuerySensors with CAFile: %v", err)
	}
	checkInventory(t, tenant, result.ids)

	untrusted := newClient(t, console.URL, testPassword, nil, nil)
	err = untrusted.Login(context.Background())
	var verification *tls.CertificateVerificationError
	if !errors.As(err, &verification) {
		t.Fatalf("Login without CAFile: %v, want a *tls.CertificateVerificationError", err)
	}
	for _, want := range []string{"certificate was not trusted", "CYBEREASON_CA_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestCAFileInvalid(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	notPEM := writeCAFile(t, []byte("not a certificate\n"))
	tests := []struct {
		name, path, want string
	}{
		{"missing file", missing, missing},
		{"no certificate", notPEM, "contains no PEM certificate"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			_, err := cybereason.NewClient(cybereason.Config{
				BaseURL:  "https://console.example",
				Username: testUser,
				Password: func() (string, error) { return testPassword, nil },
				CAFile:   test.path,
			}, nil)
			if err == nil || !strings.Contains(err.Error(), test.want) || !strings.Contains(err.Error(), "CAFile") {
				t.Errorf("NewClient error %v, want one naming CAFile and %q", err, test.want)
			}
		})
	}
}

func TestSessionRenewedBeforeExpiry(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(53, 5, 0, testNow))
	clock := &fakeClock{now: testNow}
	client := newClient(t, console.URL, testPassword, func(c *cybereason.Config) { c.SessionRenewAfter = time.Hour }, nil)
	cybereason.SetClock(client, clock.Now)
	ctx := context.Background()

	if _, err := querySensors(t, client); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Minute)
	if _, err := querySensors(t, client); err != nil {
		t.Fatal(err)
	}
	if logins := console.Stats().Logins; logins != 1 {
		t.Errorf("after 59 minutes the console counted %d logins, want 1", logins)
	}

	clock.Advance(time.Minute)
	if err := client.QuerySensors(ctx, func(cybereason.SensorPage) error { return nil }); err != nil {
		t.Fatal(err)
	}
	stats := console.Stats()
	if stats.Logins != 2 {
		t.Errorf("after 60 minutes the console counted %d logins, want 2", stats.Logins)
	}
	if stats.LoginRedirects != 0 {
		t.Errorf("console redirected %d calls to the login page, want 0 (renewed before expiry)", stats.LoginRedirects)
	}
}

// fakeClock is a clock that moves only when a test advances it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLogoutTwiceAndWithoutSession(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(54, 5, 0, testNow))
	client := newClient(t, console.URL, testPassword, nil, nil)
	ctx := context.Background()

	if err := client.Logout(ctx); err != nil {
		t.Errorf("Logout without a session: %v", err)
	}
	if err := client.Login(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := client.Logout(ctx); err != nil {
			t.Errorf("Logout %d: %v", i+1, err)
		}
	}

	stats := console.Stats()
	if stats.Requests["GET /logout"] != 1 {
		t.Errorf("console received %d logout requests, want 1", stats.Requests["GET /logout"])
	}
	if stats.Logouts != 1 {
		t.Errorf("console ended %d sessions, want 1", stats.Logouts)
	}
}

func TestNewClientValidatesRetries(t *testing.T) {
	tests := []struct {
		name   string
		change func(*cybereason.Config)
		want   string
	}{
		{"negative minimum", func(c *cybereason.Config) { c.RetryBackoffMin = -time.Second }, "RetryBackoffMin -1s"},
		{"negative maximum", func(c *cybereason.Config) { c.RetryBackoffMax = -time.Second }, "RetryBackoffMax -1s"},
		{"minimum above maximum", func(c *cybereason.Config) { c.RetryBackoffMin, c.RetryBackoffMax = time.Minute, time.Second }, "greater than RetryBackoffMax"},
		{"negative renewal age", func(c *cybereason.Config) { c.SessionRenewAfter = -time.Minute }, "SessionRenewAfter -1m0s"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			cfg := cybereason.Config{
				BaseURL:  "https://console.example",
				Username: testUser,
				Password: func() (string, error) { return testPassword, nil },
			}
			test.change(&cfg)
			if _, err := cybereason.NewClient(cfg, nil); err == nil || !strings.Contains(err.Error(), test.want) {
				t.Errorf("NewClient error %v, want one containing %q", err, test.want)
			}
		})
	}
}

func TestRetryWaitPastDeadlineNotTaken(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(46, 5, 0, testNow))
	client, waits := newRetryClient(t, console.URL, func(c *cybereason.Config) { c.RetryBackoffMax = time.Minute }, nil)
	console.Throttle(1, 50*time.Second)
	// The deadline leaves ample time for the requests, and ends before the console's Retry-After.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	err := client.QuerySensors(ctx, func(cybereason.SensorPage) error { return nil })

	var statusErr *cybereason.StatusError
	if !errors.As(err, &statusErr) || statusErr.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("QuerySensors error %v, want the 429 *StatusError", err)
	}
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("error %q does not say that the wait ends after the deadline", err)
	}
	if recorded := waits.recorded(); len(recorded) != 0 {
		t.Errorf("client waited %v before a retry that the deadline would cut short", recorded)
	}
	if requests := console.Stats().Requests[sensorsEndpoint]; requests != 1 {
		t.Errorf("console received %d sensors requests, want 1", requests)
	}
}
