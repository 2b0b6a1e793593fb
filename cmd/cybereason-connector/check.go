package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/oversoc/cybereason-connector/internal/connector"
)

// errCheckFailed is returned when a probe failed. The table already names it.
var errCheckFailed = errors.New("at least one check failed")

func checkCommand(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	cfg, logger, err := loadSettings(ctx, "check", "Usage: cybereason-connector check\n\nUses the run settings to reach Kafka, log in to the console and probe each\nenabled feed once, then prints a line per probe. Exits 0 only when all work.",
		args, lookupEnv, stderr)
	if err != nil {
		return err
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
