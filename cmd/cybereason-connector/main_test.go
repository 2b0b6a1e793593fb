package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	lookupEnv := func(key string) (string, bool) {
		value, ok := env[key]
		return value, ok
	}
	var stdout, stderr strings.Builder
	code := run(context.Background(), args, lookupEnv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCommandExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no command", nil, exitUsage, "", "Usage"},
		{"unknown command", []string{"fly"}, exitUsage, "", `unknown command "fly"`},
		{"version", []string{"version"}, 0, "devel", ""},
		{"help", []string{"help"}, 0, "Commands:", ""},
		{"run help", []string{"run", "-h"}, 0, "", "Usage: cybereason-connector run"},
		{"run extra argument", []string{"run", "now"}, exitUsage, "", `unexpected argument "now"`},
		{"demo bad flag", []string{"demo", "--sensors", "many"}, exitUsage, "", "invalid value"},
		{"demo help", []string{"demo", "-h"}, 0, "", "-records"},
		{"demo no sensors", []string{"demo", "--sensors", "0"}, exitUsage, "", "sensors must be positive"},
		{"demo tenant and sensors", []string{"demo", "--tenant", ".", "--sensors", "5"}, exitUsage, "", "--sensors cannot apply"},
		{"version extra argument", []string{"version", "extra"}, exitUsage, "", `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestDemoRejectsBadRecordsPath(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.jsonl")
	if err := os.WriteFile(existing, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		path       string
		wantStderr string
	}{
		{"existing file", existing, "already exists"},
		{"directory", dir, "is a directory"},
		{"missing directory", filepath.Join(dir, "absent", "records.jsonl"), "does not exist"},
		{"parent is a file", filepath.Join(existing, "records.jsonl"), "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, "demo", "--records", tt.path)

			if code != exitUsage {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunNamesEveryMissingSetting(t *testing.T) {
	code, _, stderr := runCLI(t, map[string]string{"SOURCE_MALOPS_INTERVAL": "often"}, "run")

	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	for _, variable := range []string{"CYBEREASON_URL", "CYBEREASON_USERNAME", "CYBEREASON_PASSWORD", "KAFKA_BROKERS", "SOURCE_MALOPS_INTERVAL"} {
		if !strings.Contains(stderr, variable) {
			t.Errorf("stderr does not name %s: %s", variable, stderr)
		}
	}
}

func TestRunNeverPrintsThePassword(t *testing.T) {
	const password = "s3cret, with $pace"
	env := map[string]string{
		"CYBEREASON_URL":      "not a url",
		"CYBEREASON_USERNAME": "api@acme.example",
		"CYBEREASON_PASSWORD": password,
		"KAFKA_BROKERS":       "127.0.0.1:9092",
	}

	code, stdout, stderr := runCLI(t, env, "run")
	if code != exitUsage {
		t.Errorf("exit code %d, want %d (stderr: %s)", code, exitUsage, stderr)
	}
	if strings.Contains(stdout+stderr, password) {
		t.Errorf("output contains the password: %s%s", stdout, stderr)
	}
}

func TestDemoCommand(t *testing.T) {
	code, stdout, stderr := runCLI(t, nil, "demo", "--sensors", "15", "--malops", "3", "--partitions", "1")

	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"Cycle 1", "Cycle 2", "oversoc.assets", "oversoc.findings"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}
