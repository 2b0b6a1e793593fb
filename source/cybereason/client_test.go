package cybereason_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testUser     = "analyst@example.com"
	testPassword = "Tr0ub4dor&3-not-in-logs"
)

var testNow = time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)

// startConsole starts a fake console that accepts testUser and testPassword.
func startConsole(t *testing.T, tenant *cybereasontest.Tenant) *cybereasontest.Server {
	t.Helper()
	server := cybereasontest.NewServer(tenant, cybereasontest.Options{Username: testUser, Password: testPassword})
	t.Cleanup(server.Close)
	return server
}

// newClient returns a client of baseURL with testUser and password. A non-nil change adjusts the
// config first.
func newClient(t *testing.T, baseURL, password string, change func(*cybereason.Config), logger *slog.Logger) *cybereason.Client {
	t.Helper()
	cfg := cybereason.Config{
		BaseURL:  baseURL,
		Username: testUser,
		Password: func() (string, error) { return password, nil },
		Timeout:  30 * time.Second, // a guard against hangs, not an assertion
	}
	if change != nil {
		change(&cfg)
	}
	client, err := cybereason.NewClient(cfg, logger)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(client.CloseIdleConnections)
	return client
}

func TestNewClientValidatesConfig(t *testing.T) {
	password := func() (string, error) { return "x", nil }
	valid := cybereason.Config{BaseURL: "https://acme.cybereason.net:8443", Username: "u", Password: password}
	tests := []struct {
		name   string
		change func(*cybereason.Config)
		want   []string
	}{
		{"missing everything", func(c *cybereason.Config) { *c = cybereason.Config{} }, []string{"BaseURL is missing", "Username is missing", "Password is missing"}},
		{"ftp URL", func(c *cybereason.Config) { c.BaseURL = "ftp://acme" }, []string{"must start with https:// or http://"}},
		{"URL without host", func(c *cybereason.Config) { c.BaseURL = "https://" }, []string{"has no host"}},
		{"URL with credentials", func(c *cybereason.Config) { c.BaseURL = "https://u:hunter2@acme" }, []string{"must not contain credentials"}},
		{"URL with query", func(c *cybereason.Config) { c.BaseURL = "https://acme/?x=1" }, []string{"query or a fragment"}},
		{"page size too large", func(c *cybereason.Config) { c.PageSize = 1001 }, []string{"PageSize 1001"}},
		{"page concurrency too large", func(c *cybereason.Config) { c.PageConcurrency = 17 }, []string{"PageConcurrency 17"}},
		{"page concurrency negative", func(c *cybereason.Config) { c.PageConcurrency = -1 }, []string{"PageConcurrency -1"}},
		{"negative values", func(c *cybereason.Config) { c.Timeout, c.MaxPages, c.MaxResponseBytes = -1, -1, -1 },
			[]string{"Timeout -1ns", "MaxPages -1", "MaxResponseBytes -1"}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			cfg := valid
			test.change(&cfg)
			_, err := cybereason.NewClient(cfg, nil)
			if err == nil {
				t.Fatal("NewClient accepted an invalid config")
			}
			for _, want := range test.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q repeats the password of the URL", err)
			}
		})
	}

	if _, err := cybereason.NewClient(valid, nil); err != nil {
		t.Errorf("NewClient rejected a valid config: %v", err)
	}
}

func TestLoginAccepted(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(1, 5, 0, testNow))
	client := newClient(t, console.URL, testPassword, nil, nil)

	if err := client.Login(context.Background()); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if stats := console.Stats(); stats.Logins != 1 {
		t.Errorf("console counted %d logins, want 1", stats.Logins)
	}
}

func TestLoginRejectedByConsole(t *testing.T) {
	tests := []struct {
		name     string
		password string
		prepare  func(*cybereasontest.Server)
	}{
		{"wrong password redirects to the error page", "wrong-password", nil},
		{"login page returned with status 200", testPassword, func(s *cybereasontest.Server) { s.LoginPageInsteadOfRedirect(1) }},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(1, 5, 0, testNow))
			if test.prepare != nil {
				test.prepare(console)
			}
			client := newClient(t, console.URL, test.password, nil, nil)

			err := client.Login(context.Background())

			if !errors.Is(err, cybereason.ErrCredentialsRejected) {
				t.Fatalf("Login error %v, want ErrCredentialsRejected", err)
			}
			if !strings.Contains(err.Error(), testUser) {
				t.Errorf("error %q does not name the user", err)
			}
			if strings.Contains(err.Error(), test.password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// TestLoginJudgesRedirectTarget checks responses that a real console, or a proxy in front of it,
// may return and that the fake console does not produce.
func TestLoginJudgesRedirectTarget(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		location  string
		body      string
		wantError string // "" for success
		rejected  bool
		wrongURL  bool // a redirect away from the console URL
	}{
		{"success", http.StatusFound, "/#/current?", "", "", false, false},
		{"back to the login page", http.StatusFound, "/login.html", "", "redirected to /login.html", true, false},
		{"absolute error URL", http.StatusFound, originMark + "/login.html?error=1", "", "error=1", true, false},
		{"permanent redirect to the login page", http.StatusMovedPermanently, "/login.html", "", "CYBEREASON_URL", false, true},
		{"permanent redirect 308 to the console", http.StatusPermanentRedirect, "/#/current?", "", "308 Permanent Redirect", false, true},
		{"login page on another host", http.StatusFound, "https://acme.example/login.html?error=1", "", "another origin", false, true},
		{"login page with another scheme", http.StatusFound, "https://" + originHostMark + "/login.html?error", "", "another origin", false, true},
		{"console on another port", http.StatusFound, "http://127.0.0.1:1/#/current?", "", "CYBEREASON_URL", false, true},
		{"error URL with a session id", http.StatusFound, "/login.html;jsessionid=" + sessionValue + "?error", "", "/login.html;jsessionid=REDACTED?error", true, false},
		{"password reset", http.StatusFound, "/reset.html", "", "password has expired", true, false},
		{"redirect without Location", http.StatusFound, "", "", "without a Location", false, false},
		{"login page by title", http.StatusOK, "", "<html><title>Cybereason | Login</title></html>", "login page", true, false},
		{"two-factor prompt without a TOTP secret", http.StatusOK, "", "<p>Two factor authentication</p>", "CYBEREASON_TOTP_SECRET", true, false},
		{"unrelated page", http.StatusOK, "", "<html>hello</html>", "is the console's", false, false},
		{"server error", http.StatusInternalServerError, "", "boom", "500 Internal Server Error", false, false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: sessionValue, Path: "/"})
				if test.location != "" {
					w.Header().Set("Location", strings.NewReplacer(originMark, "http://"+r.Host, originHostMark, r.Host).Replace(test.location))
				}
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(test.status)
				_, _ = w.Write([]byte(test.body))
			}))
			t.Cleanup(server.Close)
			client := newClient(t, server.URL, testPassword, nil, nil)

			err := client.Login(context.Background())

			if test.wantError == "" {
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), test.wantError) {
				t.Fatalf("Login error %v, want one containing %q", err, test.wantError)
			}
			if errors.Is(err, cybereason.ErrCredentialsRejected) != test.rejected {
				t.Errorf("errors.Is(err, ErrCredentialsRejected) = %t, want %t", !test.rejected, test.rejected)
			}
			if errors.Is(err, cybereason.ErrLoginRedirectedAway) != test.wrongURL {
				t.Errorf("errors.Is(err, ErrLoginRedirectedAway) = %t, want %t", !test.wrongURL, test.wrongURL)
			}
			if strings.Contains(err.Error(), sessionValue) {
				t.Errorf("error %q contains the session id", err)
			}
		})
	}
}

// Marks in a Location of TestLoginJudgesRedirectTarget that the test server replaces by its
// own origin and host.
const (
	originMark     = "{origin}"
	originHostMark = "{host}"
)

// sessionValue is the JSESSIONID that the hand-written consoles of these tests set.
const sessionValue = "0123456789ABCDEF0123456789ABCDEF"

// TestSessionIDInRedirectHidden checks a console that appends the session id to the login
// redirect of an expired session, as servlet containers do when they rewrite URLs.
func TestSessionIDInRedirectHidden(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: sessionValue, Path: "/"})
		location := "/#/current?"
		if r.URL.Path != "/login.html" {
			location = "/login.html;jsessionid=" + sessionValue
		}
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(server.Close)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := newClient(t, server.URL, testPassword, nil, logger)

	err := client.QuerySensors(context.Background(), func(cybereason.SensorPage) error { return nil })

	if err == nil || !strings.Contains(err.Error(), "/login.html;jsessionid=REDACTED") {
		t.Fatalf("QuerySensors error %v, want one naming the redirect with the session id hidden", err)
	}
	if strings.Contains(err.Error(), sessionValue) {
		t.Errorf("error %q contains the session id", err)
	}
	if output := logs.String(); !strings.Contains(output, "logging in again") || strings.Contains(output, sessionValue) {
		t.Errorf("logs lack the new login or contain the session id:\n%s", output)
	}
}

func TestLoginReadsPasswordEachTime(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(1, 5, 0, testNow))
	passwords := []string{testPassword, "rotated-away"}
	calls := 0
	client := newClient(t, console.URL, "", func(c *cybereason.Config) {
		c.Password = func() (string, error) {
			password := passwords[min(calls, len(passwords)-1)]
			calls++
			return password, nil
		}
	}, nil)

	if err := client.Login(context.Background()); err != nil {
		t.Fatalf("first Login: %v", err)
	}
	if err := client.Login(context.Background()); !errors.Is(err, cybereason.ErrCredentialsRejected) {
		t.Errorf("second Login with the changed password: %v, want ErrCredentialsRejected", err)
	}
}

func TestLogoutEndsSession(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(1, 5, 0, testNow))
	client := newClient(t, console.URL, testPassword, nil, nil)
	ctx := context.Background()

	if err := client.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if err := client.QuerySensors(ctx, func(cybereason.SensorPage) error { return nil }); err != nil {
		t.Fatalf("QuerySensors after Logout: %v", err)
	}

	stats := console.Stats()
	if stats.Logouts != 1 || stats.Logins != 2 || stats.LoginRedirects != 0 {
		t.Errorf("console counted %d logouts, %d logins, %d redirects; want 1, 2 (a fresh login before the query), 0",
			stats.Logouts, stats.Logins, stats.LoginRedirects)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sessionRecorder serves a fake console and records every JSESSIONID value it sets.
type sessionRecorder struct {
	console *cybereasontest.Console
	mu      sync.Mutex
	issued  []string
}

func (s *sessionRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.console.ServeHTTP(w, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cookie := range (&http.Response{Header: w.Header()}).Cookies() {
		if cookie.Name == "JSESSIONID" {
			s.issued = append(s.issued, cookie.Value)
		}
	}
}

func (s *sessionRecorder) sessionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

func TestLogsHoldNoSecrets(t *testing.T) {
	recorder := &sessionRecorder{console: cybereasontest.NewHandler(cybereasontest.GenerateTenant(1, 30, 5, testNow),
		cybereasontest.Options{Username: testUser, Password: testPassword})}
	server := httptest.NewServer(recorder)
	t.Cleanup(server.Close)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := newClient(t, server.URL, testPassword, func(c *cybereason.Config) { c.PageSize = 10 }, logger)
	ctx := context.Background()

	recorder.console.ExpireSessionsAfterPages(1)
	if err := client.QuerySensors(ctx, func(cybereason.SensorPage) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rejected := newClient(t, server.URL, "wrong-"+testPassword, nil, logger)
	loginErr := rejected.Login(ctx)
	if loginErr == nil {
		t.Fatal("login with a wrong password succeeded")
	}

	output := logs.String() + "\n" + loginErr.Error()
	sessions := recorder.sessionIDs()
	if len(sessions) < 3 {
		t.Fatalf("the console set %d session cookies, want at least 3 (two logins and a redirect)", len(sessions))
	}
	for _, secret := range append([]string{testPassword, "JSESSIONID="}, sessions...) {
		if strings.Contains(output, secret) {
			t.Errorf("logs or the login error contain %q:\n%s", secret, output)
		}
	}
	for _, event := range []string{"logged in to Cybereason console", "logging in again", "Cybereason login failed", "received Cybereason sensors page"} {
		if !strings.Contains(output, event) {
			t.Errorf("logs lack %q", event)
		}
	}
}

func TestRejectedCredentialsNotSentAgain(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(2, 3, 0, testNow)
	console := startConsole(t, tenant)
	var password atomic.Value
	password.Store("wrong password")
	client := newClient(t, console.URL, "", func(c *cybereason.Config) {
		c.Password = func() (string, error) { return password.Load().(string), nil }
	}, nil)

	for attempt := range 3 {
		if err := client.Login(context.Background()); !errors.Is(err, cybereason.ErrCredentialsRejected) {
			t.Fatalf("login %d: error %v, want ErrCredentialsRejected", attempt+1, err)
		}
	}
	if got := console.Stats().RejectedLogins; got != 1 {
		t.Errorf("console saw %d rejected logins for the same wrong password, want 1", got)
	}

	password.Store(testPassword) // the secret was rotated
	if err := client.Login(context.Background()); err != nil {
		t.Fatalf("login after the password changed: %v", err)
	}
	if got := console.Stats().Logins; got != 1 {
		t.Errorf("console saw %d accepted logins, want 1", got)
	}
}
