package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeMetrics(t *testing.T) {
	registry := prometheus.NewRegistry()
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "cybereason_connector_test_total", Help: "Test counter."})
	counter.Add(3)
	registry.MustRegister(counter)

	addr, stop, err := serveMetrics("127.0.0.1:0", registry, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("serveMetrics: %v", err)
	}
	response, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	body, err := io.ReadAll(response.Body)
	response.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}

	if !strings.Contains(string(body), "cybereason_connector_test_total 3") {
		t.Errorf("scrape lacks the counter:\n%s", body)
	}
	if _, _, err := serveMetrics("not an address", registry, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("serveMetrics on an invalid address succeeded")
	}
}
