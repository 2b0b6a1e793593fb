package connector_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func resultsByName(results []connector.CheckResult) map[string]connector.CheckResult {
	byName := map[string]connector.CheckResult{}
	for _, result := range results {
		byName[result.Name] = result
	}
	return byName
}

func TestCheckEveryFeedWorks(t *testing.T) {
	// Recent MalOps, so that the details probe has one to fetch.
	tenant := cybereasontest.GenerateTenant(5, 20, 5, time.Now())
	tenant.Advance(time.Now())
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
	defer console.Close()
	cfg := testConfig(t, console.URL, cybereasontest.DefaultPassword, 1)

	results := connector.Check(context.Background(), cfg, nil)

	names := []string{"kafka", "console login", "sensors", "malops", "malop details", "malware", "policies"}
	byName := resultsByName(results)
	for _, name := range names {
		result, ok := byName[name]
		if !ok {
			t.Errorf("no result for %s", name)
			continue
		}
		if !result.OK {
			t.Errorf("%s failed: %s", name, result.Detail)
		}
	}
	if len(results) != len(names) {
		t.Errorf("%d results, want %d: %+v", len(results), len(names), results)
	}
}

func TestCheckReportsFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*cybereasontest.Server)
		password string
		probe    string
		want     string
	}{
		{"wrong password", nil, "wrong $pass, word", "console login", "credentials refused"},
		{"no MalOp management API", func(s *cybereasontest.Server) { s.DropV2(404) }, cybereasontest.DefaultPassword, "malops", "detection inbox"},
		{"two-factor account", func(s *cybereasontest.Server) {
			if err := s.RequireTOTP("JBSWY3DPEHPK3PXP"); err != nil {
				t.Fatal(err)
			}
		}, cybereasontest.DefaultPassword, "console login", "TOTP needed"},
		{"role missing", func(s *cybereasontest.Server) { s.FailRequests(1, 403) }, cybereasontest.DefaultPassword, "sensors", "role missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			console := cybereasontest.NewServer(cybereasontest.GenerateTenant(5, 10, 2, time.Now()), cybereasontest.Options{})
			defer console.Close()
			if tt.setup != nil {
				tt.setup(console)
			}
			cfg := testConfig(t, console.URL, tt.password, 1)

			results := connector.Check(context.Background(), cfg, nil)

			result, ok := resultsByName(results)[tt.probe]
			if !ok {
				t.Fatalf("no result for %s: %+v", tt.probe, results)
			}
			if !strings.Contains(result.Detail, tt.want) {
				t.Errorf("%s: %q, want it to contain %q", tt.probe, result.Detail, tt.want)
			}
			for _, result := range results {
				if strings.Contains(result.Detail, tt.password) {
					t.Errorf("%s reveals the password: %s", result.Name, result.Detail)
				}
			}
		})
	}
}

func TestCheckMissingTopic(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", "unused", 1)
	cfg.Stages = []string{"enrich"}
	cfg.Kafka.Topics.NormalizedAssets = "absent.topic"

	results := connector.Check(context.Background(), cfg, nil)

	if len(results) != 1 || results[0].OK || !strings.Contains(results[0].Detail, "absent.topic") {
		t.Errorf("results %+v, want one failed kafka result naming absent.topic", results)
	}
}

func TestCheckLoginRedirectedAway(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+"/login.html", http.StatusMovedPermanently)
	}))
	defer server.Close()
	cfg := testConfig(t, server.URL, cybereasontest.DefaultPassword, 1)

	results := connector.Check(context.Background(), cfg, nil)

	result, ok := resultsByName(results)["console login"]
	if !ok {
		t.Fatalf("no result for console login: %+v", results)
	}
	if !strings.HasPrefix(result.Detail, "wrong console URL") {
		t.Errorf("console login: %q, want it to start with %q", result.Detail, "wrong console URL")
	}
	if !strings.Contains(result.Detail, "CYBEREASON_URL") {
		t.Errorf("console login: %q does not name CYBEREASON_URL", result.Detail)
	}
}
