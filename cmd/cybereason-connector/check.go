package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sethvargo/go-envconfig"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
)

// errCheckFailed is returned when a probe failed. The table already names it.
var errCheckFailed = errors.New("at least one check failed")

func checkCommand(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("check", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, "Usage: cybereason-connector check\n\nUses the run settings to reach Kafka, log in to the console and probe each\nenabled feed once, then prints a line per probe. Exits 0 only when all work.")
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
	if strings.HasPrefix(cfg.Cybereason.URL, "http://") && cfg.Runs(config.StageSource) {
		logger.Warn("the console URL uses plain HTTP, so the password travels unencrypted; use https outside tests", "console", cfg.Cybereason.URL)
	}
	results := connector.Check(ctx, cfg, logger)

	table := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	failed := false
	for _, result := range results {
		status := "ok"
		switch {
		case !result.OK:
			status, failed = "FAILED", true
		case result.Skipped:
			status = "skipped"
		}
		fmt.Fprintf(table, "%s\t%s\t%s\n", result.Name, status, result.Detail)
	}
	if err := table.Flush(); err != nil {
		return fmt.Errorf("write results: %w", err)
	}

	if failed {
		return errCheckFailed
	}
	return nil
}
