package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeMetrics(t *testing.T) {
	registry := prometheus.NewRegistry()
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "cybereason_connector_test_total", Help: "Test counter."})
	counter.Add(3)
	registry.MustRegister(counter)

	var ready atomic.Bool
	readiness := func() (bool, []string) {
		if ready.Load() {
			return true, nil
		}
		return false, []string{"dedupe has not restored its state"}
	}
	addr, stop, err := serveMetrics("127.0.0.1:0", registry, readiness, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("serveMetrics: %v", err)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	if status, body := get(t, addr, "/metrics"); status != http.StatusOK || !strings.Contains(body, "cybereason_connector_test_total 3") {
		t.Errorf("/metrics: %d, scrape lacks the counter:\n%s", status, body)
	}
	if status, _ := get(t, addr, "/healthz"); status != http.StatusOK {
		t.Errorf("/healthz: %d, want 200", status)
	}
	if status, body := get(t, addr, "/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, "dedupe has not restored") {
		t.Errorf("/readyz before ready: %d %q, want 503 with the reason", status, body)
	}
	ready.Store(true)
	if status, _ := get(t, addr, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz when ready: %d, want 200", status)
	}
	if _, _, err := serveMetrics("not an address", registry, readiness, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("serveMetrics on an invalid address succeeded")
	}
}

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	response, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response.StatusCode, string(body)
}
