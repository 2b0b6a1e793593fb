package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
)

func TestRunAppliesFaultFlags(t *testing.T) {
	const secret = "JBSWY3DPEHPK3PXP"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := newLineWriter()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--user", "sim@example.com", "--password", "sim-pass",
			"--sensors", "10", "--malops", "0", "--totp-secret", secret, "--throttle", "1", "--fail", "1", "--fail-status", "503"}, stdout, io.Discard)
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
	if match == nil {
		t.Fatalf("first line %q, want the URL", line)
	}

	config := cybereason.Config{
		BaseURL:         match[3],
		Username:        "sim@example.com",
		Password:        func() (string, error) { return "sim-pass", nil },
		RetryBackoffMin: time.Millisecond,
		RetryBackoffMax: 10 * time.Millisecond,
	}
	withoutSecret, err := cybereason.NewClient(config, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer withoutSecret.CloseIdleConnections()
	if err := withoutSecret.Login(ctx); !errors.Is(err, cybereason.ErrTOTPRequired) {
		t.Errorf("Login without a TOTP secret: %v, want ErrTOTPRequired", err)
	}

	config.TOTPSecret = func() (string, error) { return secret, nil }
	client, err := cybereason.NewClient(config, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	sensors := 0
	err = client.QuerySensors(ctx, func(page cybereason.SensorPage) error {
		sensors += len(page.Sensors)
		return nil
	})
	if err != nil || sensors != 10 {
		t.Errorf("QuerySensors through a 429 and a 503 read %d sensors (error %v), want 10", sensors, err)
	}
	client.CloseIdleConnections()
	withoutSecret.CloseIdleConnections()

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}
