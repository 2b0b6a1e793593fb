package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/oversoc/cybereason-connector/internal/connector"
)

func runCommand(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	cfg, logger, err := loadSettings(ctx, "run", "Usage: cybereason-connector run\n\nRuns the stages named by STAGES until SIGTERM or SIGINT.\nEvery setting comes from an environment variable; README.md lists them.",
		args, lookupEnv, stderr)
	if err != nil {
		return err
	}

	logger.Info("connector starting", "version", buildVersion(), "stages", cfg.Stages,
		"console", cfg.Cybereason.URL, "tenant", cfg.Cybereason.Tenant, "brokers", cfg.Kafka.Brokers)

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: buildVersion()}, logger)
	if err != nil {
		return err
	}

	stopMetrics := func() error { return nil }
	if cfg.MetricsAddr != "off" {
		if _, stopMetrics, err = serveMetrics(cfg.MetricsAddr, stages.NewRegistry(buildVersion()), stages.Ready, logger); err != nil {
			return errors.Join(err, stages.Close())
		}
	}

	err = stages.Run(ctx, cfg.ShutdownTimeout)
	if err := errors.Join(err, stopMetrics()); err != nil {
		return err
	}
	logger.Info("connector stopped")
	return nil
}

// serveMetrics serves /metrics, /healthz and /readyz on addr until the
// returned function stops it, and returns the address it listens on. It
// listens before returning, so a port already in use fails the start.
// /healthz returns 200 while the process serves HTTP; /readyz returns 200
// when ready reports true, and 503 with the reasons otherwise.
func serveMetrics(addr string, registry *prometheus.Registry, ready func() (bool, []string), logger *slog.Logger) (listening string, stop func() error, err error) {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen for metrics: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, reasons := ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(reasons, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	logger.Info("serving metrics", "addr", listener.Addr().String(), "path", "/metrics")

	return listener.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownErr := server.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return errors.Join(fmt.Errorf("serve metrics: %w", err), shutdownErr)
		}
		return shutdownErr
	}, nil
}
