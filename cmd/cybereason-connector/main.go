// Command cybereason-connector collects the machine inventory and MalOps of a
// Cybereason console and publishes them to Kafka as OverSOC records.
//
//	cybereason-connector run       all configured stages, settings from the environment
//	cybereason-connector check     probe Kafka, the console and each feed with the run settings
//	cybereason-connector demo      the whole pipeline on an in-process broker and fake console
//	cybereason-connector version   the build version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitFailure = 1
	exitUsage   = 2
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go stopOnSignals(signals, cancel, os.Stderr)

	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	signal.Stop(signals)
	os.Exit(code)
}

// stopOnSignals cancels the command at the first signal, so that it drains
// and stops within SHUTDOWN_TIMEOUT, and exits with status 1 at the second,
// for an operator who does not want to wait for the drain.
func stopOnSignals(signals <-chan os.Signal, cancel context.CancelFunc, stderr io.Writer) {
	<-signals
	cancel()
	sig := <-signals
	fmt.Fprintf(stderr, "cybereason-connector: second %s received; exiting without finishing the shutdown\n", sig)
	os.Exit(exitFailure)
}

// usageError marks errors caused by the command line or the configuration,
// which exit with status 2. printed is set when the flag package already
// wrote the error to standard error.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}

	var err error
	switch args[0] {
	case "run":
		err = runCommand(ctx, args[1:], lookupEnv, stderr)
	case "demo":
		err = demoCommand(ctx, args[1:], stdout, stderr)
	case "check":
		err = checkCommand(ctx, args[1:], lookupEnv, stdout, stderr)
	case "version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "cybereason-connector version: unexpected argument %q\n", args[1])
			return exitUsage
		}
		fmt.Fprintln(stdout, buildVersion())
		return 0
	case "help", "-h", "--help":
		printUsage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "cybereason-connector: unknown command %q\n", args[0])
		printUsage(stderr)
		return exitUsage
	}

	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		if !usage.printed {
			fmt.Fprintf(stderr, "cybereason-connector %s: %v\n", args[0], err)
		}
		return exitUsage
	default:
		fmt.Fprintf(stderr, "cybereason-connector %s: %v\n", args[0], err)
		return exitFailure
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: cybereason-connector <command> [flags]

Commands:
  run      run the configured stages; settings come from environment variables (see README.md)
  check    with the run settings, probe Kafka, the console login and each feed once
  demo     run every stage against an in-process Kafka broker and a fake Cybereason console
  version  print the build version

Run "cybereason-connector <command> -h" for the flags of a command.
`)
}
