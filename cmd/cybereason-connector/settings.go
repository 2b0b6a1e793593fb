package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/oversoc/cybereason-connector/internal/config"
)

// loadSettings parses the flags of a command that takes none, loads the run
// settings from the environment and builds the logger they ask for. usage
// is the command's help text.
func loadSettings(ctx context.Context, command, usage string, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*config.Config, *slog.Logger, error) {
	flags := flag.NewFlagSet(command, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprintln(stderr, usage) }
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, usageError{err: err, printed: true}
	}
	if flags.NArg() > 0 {
		return nil, nil, usageError{err: fmt.Errorf("unexpected argument %q", flags.Arg(0))}
	}

	cfg, err := config.Load(ctx, envconfig.LookuperFunc(lookupEnv))
	if err != nil {
		return nil, nil, usageError{err: err}
	}

	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if strings.HasPrefix(cfg.Cybereason.URL, "http://") && cfg.Runs(config.StageSource) {
		logger.Warn("the console URL uses plain HTTP, so the password travels unencrypted; use https outside tests", "console", cfg.Cybereason.URL)
	}
	return cfg, logger, nil
}
