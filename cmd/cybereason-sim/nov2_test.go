package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
)

func TestRunNoV2AnswersNotSupported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := newLineWriter()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--user", "sim@example.com", "--password", "sim-pass",
			"--sensors", "10", "--malops", "3", "--no-v2"}, stdout, io.Discard)
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
		t.Fatalf("first line %q has no URL", line)
	}

	client, err := cybereason.NewClient(cybereason.Config{
		BaseURL:  match[3],
		Username: "sim@example.com",
		Password: func() (string, error) { return "sim-pass", nil },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.MalopsV2(ctx, time.Now().Add(-time.Hour), time.Now())
	if !errors.Is(err, cybereason.ErrNotSupported) {
		t.Errorf("MalopsV2 error %v, want ErrNotSupported", err)
	}
	if _, err := client.MalopsInbox(ctx, time.Now().Add(-time.Hour), time.Now()); err != nil {
		t.Errorf("MalopsInbox: %v", err)
	}
	client.CloseIdleConnections()

	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}
