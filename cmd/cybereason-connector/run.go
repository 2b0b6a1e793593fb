package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
)

func runCommand(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) error {
	flags := flag.NewFlagSet("run", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, "Usage: cybereason-connector run\n\nRuns the stages named by STAGES until SIGTERM or SIGINT.\nEvery setting comes from an environment variable; README.md lists them.")
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err: err, printed: true}
	}
	if flags.NArg() > 0 {
		return usageError{err: fmt.Errorf("unexpected argument %q", flags.Arg(0))}
	}

	cfg, err := config.Load(ctx, envconfig.LookuperFunc(lookupEnv))
	if err != nil {
		return usageError{err: err}
	}

	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	logger.Info("connector starting", "version", buildVersion(), "stages", cfg.Stages,
		"console", cfg.Cybereason.URL, "tenant", cfg.Cybereason.Tenant, "brokers", cfg.Kafka.Brokers)

	if strings.HasPrefix(cfg.Cybereason.URL, "http://") && cfg.Runs(config.StageSource) {
		logger.Warn("the console URL uses plain HTTP, so the password travels unencrypted; use https outside tests", "console", cfg.Cybereason.URL)
	}

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: buildVersion()}, logger)
	if err != nil {
		return err
	}
	if err := stages.Run(ctx, cfg.ShutdownTimeout); err != nil {
		return err
	}

	logger.Info("connector stopped")
	return nil
}
