package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/oversoc/cybereason-connector/internal/demo"
)

func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := demo.Defaults()
	var verbose bool

	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&opts.TenantDir, "tenant", "", "load the fake console's tenant from this folder instead of generating one: sensors.json and malops-inbox.json, and optionally malops-v2.json, malware.json, policies.json, crimes-unified-MalopProcess.json, crimes-unified-MalopLogonSession.json, crimes/<guid>.json and details/<guid>.json")
	flags.IntVar(&opts.Sensors, "sensors", opts.Sensors, "number of sensors in the generated tenant")
	flags.IntVar(&opts.Malops, "malops", opts.Malops, "number of MalOps in the generated tenant")
	flags.Int64Var(&opts.Seed, "seed", opts.Seed, "seed of the generated tenant")
	flags.StringVar(&opts.RecordsFile, "records", "", "write every record of the final topics to this file as JSON lines")
	flags.IntVar(&opts.Partitions, "partitions", opts.Partitions, "partitions per topic on the in-process broker")
	flags.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "maximum wait for the pipeline to catch up after each cycle")
	flags.BoolVar(&verbose, "v", false, "also print the stages' logs (to standard error)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "Usage: cybereason-connector demo [flags]\n\nRuns two collection cycles through every stage, on an in-process Kafka broker\nand a fake Cybereason console, and prints what each stage did.\n\nFlags:")
		flags.PrintDefaults()
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
	if opts.TenantDir != "" {
		var generatorFlags []string
		flags.Visit(func(f *flag.Flag) {
			if f.Name == "sensors" || f.Name == "malops" || f.Name == "seed" {
				generatorFlags = append(generatorFlags, "--"+f.Name)
			}
		})
		if len(generatorFlags) > 0 {
			return usageError{err: fmt.Errorf("--tenant loads a tenant, so %s cannot apply; use one or the other", strings.Join(generatorFlags, ", "))}
		}
	}
	if err := opts.Validate(); err != nil {
		return usageError{err: err}
	}

	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	opts.Version = buildVersion()
	err := demo.Run(ctx, opts, stdout, newLogger(stderr, level, "auto"))
	if err != nil && ctx.Err() != nil {
		return errors.New("interrupted before the demo finished")
	}
	return err
}
