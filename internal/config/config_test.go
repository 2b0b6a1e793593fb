package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
)

func validEnv() map[string]string {
	return map[string]string{
		"CYBEREASON_URL":      "https://acme.cybereason.net:8443",
		"CYBEREASON_USERNAME": "api@acme.example",
		"CYBEREASON_PASSWORD": "pa$$ word, with $HOME and commas",
		"KAFKA_BROKERS":       "kafka-0:9092,kafka-1:9092",
	}
}

func load(t *testing.T, env map[string]string) (*Config, error) {
	t.Helper()
	return Load(context.Background(), envconfig.MapLookuper(env))
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := load(t, validEnv())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	checks := []struct {
		name      string
		got, want any
	}{
		{"tenant", cfg.Cybereason.Tenant, "acme.cybereason.net"},
		{"page size", cfg.Cybereason.PageSize, 1000},
		{"page concurrency", cfg.Cybereason.PageConcurrency, 3},
		{"max pages", cfg.Cybereason.MaxPages, 10000},
		{"request timeout", cfg.Cybereason.RequestTimeout, 60 * time.Second},
		{"brokers", strings.Join(cfg.Kafka.Brokers, ","), "kafka-0:9092,kafka-1:9092"},
		{"raw sensors topic", cfg.Kafka.Topics.RawSensors, "cybereason.raw.sensors"},
		{"raw malops topic", cfg.Kafka.Topics.RawMalops, "cybereason.raw.malops"},
		{"assets topic", cfg.Kafka.Topics.Assets, "oversoc.assets"},
		{"findings topic", cfg.Kafka.Topics.Findings, "oversoc.findings"},
		{"sensors interval", cfg.Source.SensorsInterval, time.Hour},
		{"malops interval", cfg.Source.MalopsInterval, 5 * time.Minute},
		{"malops lookback", cfg.Source.MalopsLookback, 24 * time.Hour},
		{"malops overlap", cfg.Source.MalopsOverlap, 10 * time.Minute},
		{"malware interval", cfg.Source.MalwareInterval, 5 * time.Minute},
		{"malware lookback", cfg.Source.MalwareLookback, 24 * time.Hour},
		{"malware overlap", cfg.Source.MalwareOverlap, 10 * time.Minute},
		{"policies interval", cfg.Source.PoliciesInterval, time.Hour},
		{"feeds", strings.Join(cfg.Source.Feeds, ","), "sensors,malops,malware,policies"},
		{"malop details", cfg.Source.MalopDetails, true},
		{"raw malware topic", cfg.Kafka.Topics.RawMalware, "cybereason.raw.malware"},
		{"raw policies topic", cfg.Kafka.Topics.RawPolicies, "cybereason.raw.policies"},
		{"state topic", cfg.Kafka.Topics.State, "cybereason.connector.state"},
		{"totp secret", cfg.Cybereason.TOTPSecret.IsSet(), false},
		{"dedupe resync interval", cfg.Kafka.DedupeResyncInterval, 24 * time.Hour},
		{"group session timeout", cfg.Kafka.GroupSessionTimeout, 30 * time.Second},
		{"group rebalance timeout", cfg.Kafka.GroupRebalanceTimeout, 30 * time.Second},
		{"stages", strings.Join(cfg.Stages, ","), "source,enrich,dedupe"},
		{"log level", cfg.LogLevel, slog.LevelInfo},
		{"log format", cfg.LogFormat, "auto"},
	}
	for _, check := range checks {
		if check.got != check.want {
			t.Errorf("%s = %v, want %v", check.name, check.got, check.want)
		}
	}
}

func TestLoadPasswordKeptVerbatim(t *testing.T) {
	cfg, err := load(t, validEnv())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	got, err := cfg.Cybereason.Password.Value()
	if err != nil {
		t.Fatalf("Password.Value: %v", err)
	}
	if want := "pa$$ word, with $HOME and commas"; got != want {
		t.Errorf("password = %q, want %q", got, want)
	}
}

func TestLoadPasswordFileReadAtUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "password")
	writeFile(t, path, "first$,secret\n")

	env := validEnv()
	delete(env, "CYBEREASON_PASSWORD")
	env["CYBEREASON_PASSWORD_FILE"] = path
	cfg, err := load(t, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	assertPassword(t, cfg.Cybereason.Password, "first$,secret")
	writeFile(t, path, "rotated secret")
	assertPassword(t, cfg.Cybereason.Password, "rotated secret")
}

func TestLoadReportsEveryProblem(t *testing.T) {
	env := map[string]string{
		"CYBEREASON_URL":              "ftp://console",
		"CYBEREASON_PAGE_SIZE":        "5000",
		"CYBEREASON_PAGE_CONCURRENCY": "0",
		"CYBEREASON_REQUEST_TIMEOUT":  "soon",
		"KAFKA_BROKERS":               "kafka-0",
		"SOURCE_MALOPS_INTERVAL":      "0s",
		"STAGES":                      "source,transform",
		"LOG_LEVEL":                   "loud",
		"LOG_FORMAT":                  "xml",
	}

	_, err := load(t, env)
	var configErr *Error
	if !errors.As(err, &configErr) {
		t.Fatalf("Load error = %v, want *config.Error", err)
	}

	for _, variable := range []string{
		"CYBEREASON_URL",
		"CYBEREASON_USERNAME",
		"CYBEREASON_PASSWORD or CYBEREASON_PASSWORD_FILE",
		"CYBEREASON_PAGE_SIZE",
		"CYBEREASON_PAGE_CONCURRENCY",
		"CYBEREASON_REQUEST_TIMEOUT",
		"KAFKA_BROKERS",
		"SOURCE_MALOPS_INTERVAL",
		"STAGES",
		"LOG_LEVEL",
		"LOG_FORMAT",
	} {
		if !strings.Contains(err.Error(), variable+":") {
			t.Errorf("error does not name %s: %v", variable, err)
		}
	}
}

func TestLoadRejectsBothPasswordSources(t *testing.T) {
	env := validEnv()
	env["CYBEREASON_PASSWORD_FILE"] = "/run/secrets/password"

	_, err := load(t, env)
	if err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("Load error = %v, want one about both password settings", err)
	}
}

func TestLoadRejectsBadConsoleSettings(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		want     string
		mustHide string
	}{
		{"credentials in URL", map[string]string{"CYBEREASON_URL": "https://api:hunter2@acme.cybereason.net"}, "CYBEREASON_URL: must not contain a user or password", "hunter2"},
		{"IPv6 host without tenant", map[string]string{"CYBEREASON_URL": "https://[::1]:8443"}, "CYBEREASON_TENANT: missing", ""},
		{"tenant with colon", map[string]string{"CYBEREASON_TENANT": "acme:prod"}, "CYBEREASON_TENANT: invalid value", ""},
		{"scheme", map[string]string{"CYBEREASON_URL": "ftp://acme.cybereason.net"}, "CYBEREASON_URL: invalid value", ""},
		{"query", map[string]string{"CYBEREASON_URL": "https://acme.cybereason.net/?x=1"}, "without a query or fragment", ""},
		{"log level", map[string]string{"LOG_LEVEL": "verbose"}, `LOG_LEVEL: invalid value "verbose"`, ""},
		{"interval too short", map[string]string{"SOURCE_SENSORS_INTERVAL": "1ms"}, "SOURCE_SENSORS_INTERVAL: must be at least 10s", ""},
		{"unknown feed", map[string]string{"SOURCE_FEEDS": "sensors,alerts"}, `SOURCE_FEEDS: unknown feed "alerts"`, ""},
		{"both totp settings", map[string]string{"CYBEREASON_TOTP_SECRET": "JBSWY3DPEHPK3PXP", "CYBEREASON_TOTP_SECRET_FILE": "/run/totp"}, "CYBEREASON_TOTP_SECRET and CYBEREASON_TOTP_SECRET_FILE: both set", "JBSWY3DPEHPK3PXP"},
		{"missing CA file", map[string]string{"CYBEREASON_CA_FILE": "/nonexistent/ca.pem"}, "CYBEREASON_CA_FILE:", ""},
		{"CA file not PEM", map[string]string{"CYBEREASON_CA_FILE": "config_test.go"}, "CYBEREASON_CA_FILE: config_test.go contains no PEM certificate", ""},
		{"TOTP secret not base32", map[string]string{"CYBEREASON_TOTP_SECRET": "not base32!!"}, "CYBEREASON_TOTP_SECRET: the secret is not base32", "not base32!!"},
		{"feed listed twice", map[string]string{"SOURCE_FEEDS": "sensors,sensors"}, "SOURCE_FEEDS: a feed is listed twice", ""},
		{"session timeout too short", map[string]string{"KAFKA_GROUP_SESSION_TIMEOUT": "500ms"}, "KAFKA_GROUP_SESSION_TIMEOUT: must be at least 1s, got 500ms", ""},
		{"rebalance timeout zero", map[string]string{"KAFKA_GROUP_REBALANCE_TIMEOUT": "0s"}, "KAFKA_GROUP_REBALANCE_TIMEOUT: must be at least 1s, got 0s", ""},
		{"details not a boolean", map[string]string{"SOURCE_MALOP_DETAILS": "maybe"}, `SOURCE_MALOP_DETAILS: invalid value "maybe"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := validEnv()
			for key, value := range tt.env {
				env[key] = value
			}

			_, err := load(t, env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want one containing %q", err, tt.want)
			}
			if tt.mustHide != "" && strings.Contains(err.Error(), tt.mustHide) {
				t.Errorf("error reveals %q: %v", tt.mustHide, err)
			}
		})
	}
}

func TestLoadPasswordFileCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")

	tests := map[string]string{
		"missing file": filepath.Join(dir, "absent"),
		"empty file":   empty,
		"folder":       dir,
	}
	for name, path := range tests {
		t.Run(name, func(t *testing.T) {
			env := validEnv()
			delete(env, "CYBEREASON_PASSWORD")
			env["CYBEREASON_PASSWORD_FILE"] = path

			_, err := load(t, env)
			if err == nil || !strings.Contains(err.Error(), "CYBEREASON_PASSWORD_FILE:") {
				t.Errorf("Load error = %v, want one naming CYBEREASON_PASSWORD_FILE", err)
			}
		})
	}
}

func TestLoadAcceptsTOTPSecretAsAppsShowIt(t *testing.T) {
	env := validEnv()
	env["CYBEREASON_TOTP_SECRET"] = "jbsw y3dp ehpk 3pxp"

	if _, err := load(t, env); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func TestLoadPipelineStagesNeedNoConsole(t *testing.T) {
	env := map[string]string{"STAGES": "enrich,dedupe", "KAFKA_BROKERS": "kafka-0:9092"}

	cfg, err := load(t, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Runs(StageSource) {
		t.Error("Runs(source) = true, want false")
	}
}

func TestLoadIPv6ConsoleWithTenant(t *testing.T) {
	env := validEnv()
	env["CYBEREASON_URL"] = "https://[fd00::10]:8443"
	env["CYBEREASON_TENANT"] = "acme-onprem"

	cfg, err := load(t, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Cybereason.Tenant != "acme-onprem" {
		t.Errorf("tenant = %q, want acme-onprem", cfg.Cybereason.Tenant)
	}
}

func TestLoadExplicitTenant(t *testing.T) {
	env := validEnv()
	env["CYBEREASON_TENANT"] = "acme-prod"

	cfg, err := load(t, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Cybereason.Tenant != "acme-prod" {
		t.Errorf("tenant = %q, want acme-prod", cfg.Cybereason.Tenant)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	cfg, err := load(t, validEnv())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	var logged strings.Builder
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Info("config", "password", cfg.Cybereason.Password, "config", cfg)
	encoded, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}

	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"slog": logged.String(),
		"json": string(encoded),
	}
	for name, output := range outputs {
		if strings.Contains(output, "pa$$ word") {
			t.Errorf("%s output contains the password: %s", name, output)
		}
	}
}

func assertPassword(t *testing.T, secret Secret, want string) {
	t.Helper()
	got, err := secret.Value()
	if err != nil {
		t.Fatalf("Value: %v", err)
	}
	if got != want {
		t.Errorf("password = %q, want %q", got, want)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadAssetLifecycleSettings(t *testing.T) {
	cfg, err := load(t, validEnv())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := cfg.Kafka.DedupeMissedInventories; got != 1 {
		t.Errorf("missed inventories default = %d, want 1", got)
	}
	if got := cfg.Kafka.Topics.AssetSecurityState; got != "oversoc.asset-security-state" {
		t.Errorf("security-state topic default = %q, want oversoc.asset-security-state", got)
	}

	tests := []struct {
		value, want string
	}{
		{"0", "KAFKA_DEDUPE_MISSED_INVENTORIES: must be at least 1, got 0"},
		{"-2", "KAFKA_DEDUPE_MISSED_INVENTORIES: must be at least 1, got -2"},
		{"two", `KAFKA_DEDUPE_MISSED_INVENTORIES: invalid value "two"`},
	}
	for _, tt := range tests {
		env := validEnv()
		env["KAFKA_DEDUPE_MISSED_INVENTORIES"] = tt.value
		if _, err := load(t, env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("KAFKA_DEDUPE_MISSED_INVENTORIES=%s: error %v, want one containing %q", tt.value, err, tt.want)
		}
	}

	env := validEnv()
	env["KAFKA_DEDUPE_MISSED_INVENTORIES"] = "3"
	env["KAFKA_TOPIC_ASSET_SECURITY_STATE"] = "soc.posture"
	cfg, err = load(t, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Kafka.DedupeMissedInventories != 3 || cfg.Kafka.Topics.AssetSecurityState != "soc.posture" {
		t.Errorf("settings = %d and %q, want 3 and soc.posture", cfg.Kafka.DedupeMissedInventories, cfg.Kafka.Topics.AssetSecurityState)
	}
}
