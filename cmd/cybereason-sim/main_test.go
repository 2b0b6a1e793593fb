package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/source/cybereason"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lineWriter collects output and signals each completed line.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func newLineWriter() *lineWriter {
	return &lineWriter{lines: make(chan string, 100)}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line) // keep the unfinished line for the next write
			return len(p), nil
		}
		select {
		case w.lines <- strings.TrimSuffix(line, "\n"):
		default: // the test reads only the first lines, so drop the rest
		}
	}
}

var servingLine = regexp.MustCompile(`^cybereason-sim: serving (\d+) sensors and (\d+) MalOps at (http://127\.0\.0\.1:\d+)$`)

func TestRunServesConsole(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := newLineWriter()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--user", "sim@example.com", "--password", "sim-pass",
			"--sensors", "120", "--malops", "7", "--seed", "9"}, stdout, io.Discard)
	}()

	var line string
	select {
	case line = <-stdout.lines:
	case err := <-done:
		t.Fatalf("run returned before serving: %v", err)
	case <-time.After(time.Minute): // a guard against a hang, not a timing assertion
		t.Fatal("run printed no URL")
	}
	match := servingLine.FindStringSubmatch(line)
	if match == nil || match[1] != "120" || match[2] != "7" {
		t.Fatalf("first line %q, want the sensor and MalOp counts and the URL", line)
	}

	client, err := cybereason.NewClient(cybereason.Config{
		BaseURL:  match[3],
		Username: "sim@example.com",
		Password: func() (string, error) { return "sim-pass", nil },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	if err := client.Login(ctx); err != nil {
		t.Fatalf("Login: %v", err)
	}
	sensors := 0
	err = client.QuerySensors(ctx, func(page cybereason.SensorPage) error {
		sensors += len(page.Sensors)
		return nil
	})
	if err != nil || sensors != 120 {
		t.Errorf("QuerySensors read %d sensors (error %v), want 120", sensors, err)
	}
	client.CloseIdleConnections()

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}

func TestRunRejectsInvalidFlags(t *testing.T) {
	required := []string{"--user", "u", "--password", "p"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", append([]string{"--colour", "blue"}, required...), "flag provided but not defined"},
		{"missing credentials", []string{"--sensors", "5"}, "--user is required"},
		{"negative sensors", append([]string{"--sensors", "-3"}, required...), "--sensors -3 is negative"},
		{"bad duration", append([]string{"--page-delay", "fast"}, required...), "invalid value"},
		{"tenant with generator flags", append([]string{"--tenant", "dir", "--malops", "3"}, required...), "cannot be used with --tenant"},
		{"positional argument", append([]string{"extra"}, required...), "unexpected arguments"},
		{"negative throttle", append([]string{"--throttle", "-1"}, required...), "--throttle -1 is negative"},
		{"fail status not an error", append([]string{"--fail", "1", "--fail-status", "200"}, required...), "--fail-status 200"},
		{"TOTP secret not base32", append([]string{"--totp-secret", "not-base32!"}, required...), "--totp-secret"},
		{"unknown envelope status", append([]string{"--envelope-status", "BOGUS"}, required...), `--envelope-status "BOGUS" is not a status the console sends; use FAILURE, PARTIAL_SUCCESS`},
		{"empty envelope status", append([]string{"--envelope-status", ""}, required...), "--envelope-status"},
		{"lowercase envelope status", append([]string{"--envelope-status", "failure"}, required...), "is not a status the console sends"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), test.args, io.Discard, &stderr)

			var usage *usageError
			if !errors.As(err, &usage) {
				t.Fatalf("run error %v, want a usage error (exit status 2)", err)
			}
			if !strings.Contains(err.Error(), test.want) {
				t.Errorf("error %q does not contain %q", err, test.want)
			}
			if !strings.Contains(stderr.String(), "-sensors int") {
				t.Errorf("stderr lacks the usage text:\n%s", stderr.String())
			}
		})
	}
}

func TestRunReportsMissingTenant(t *testing.T) {
	err := run(context.Background(), []string{"--user", "u", "--password", "p", "--tenant", t.TempDir()}, io.Discard, io.Discard)

	var usage *usageError
	if err == nil || errors.As(err, &usage) || !strings.Contains(err.Error(), "sensors.json") {
		t.Errorf("run error %v, want a load error naming sensors.json", err)
	}
}
