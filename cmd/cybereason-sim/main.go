// Command cybereason-sim serves a fake Cybereason console on a local port, for manual and
// black-box tests of the connector. It serves a tenant generated from a seed, or one loaded from
// a folder of console objects, until it receives SIGINT or SIGTERM.
//
//	cybereason-sim --user analyst@example.com --password secret --sensors 2000 --malops 20
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()

	var usage *usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "cybereason-sim:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "cybereason-sim:", err)
		os.Exit(1)
	}
}

// usageError is an invalid command line, for which main exits with status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// options are the parsed command-line flags.
type options struct {
	addr         string
	user         string
	password     string
	tenantDir    string
	sensors      int
	malops       int
	seed         int64
	pageDelay    time.Duration
	advanceEvery time.Duration
	noV2         bool
	logLevel     slog.Level
	faults       faultOptions
}

// run serves the fake console until ctx ends. It writes the URL it serves, and any tenant
// changes, to stdout, and logs to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opts.logLevel}))

	tenant, err := loadTenant(opts)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.addr, err)
	}

	console := cybereasontest.NewHandler(tenant, cybereasontest.Options{
		Username:        opts.user,
		Password:        opts.password,
		PageDelay:       opts.pageDelay,
		SessionLifetime: opts.faults.sessionLifetime,
		Logger:          logger,
		DisableV2:       opts.noV2,
	})
	if err := opts.faults.apply(console); err != nil {
		return &usageError{err}
	}
	server := &http.Server{Handler: console, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "cybereason-sim: serving %d sensors and %d MalOps at http://%s\n",
		tenant.SensorCount(), tenant.MalopCount(), listener.Addr())

	var wg sync.WaitGroup
	advanceCtx, stopAdvancing := context.WithCancel(ctx)
	defer func() {
		stopAdvancing()
		wg.Wait()
	}()
	if opts.advanceEvery > 0 {
		wg.Go(func() { advanceTenant(advanceCtx, tenant, opts.advanceEvery, stdout) })
	}

	return serve(ctx, server, listener, logger)
}

// serve runs server on listener until ctx ends, then shuts it down gracefully.
func serve(ctx context.Context, server *http.Server, listener net.Listener, logger *slog.Logger) error {
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var opts options
	flags := flag.NewFlagSet("cybereason-sim", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.StringVar(&opts.addr, "addr", "127.0.0.1:8443", "address to listen on, host:port (port 0 picks a free port)")
	flags.StringVar(&opts.user, "user", "", "user name the console accepts (required)")
	flags.StringVar(&opts.password, "password", "", "password the console accepts (required)")
	flags.StringVar(&opts.tenantDir, "tenant", "", "folder with sensors.json and malops-inbox.json (and optionally malops-v2.json, malware.json, policies.json, crimes-unified-MalopProcess.json, crimes-unified-MalopLogonSession.json, crimes/<guid>.json and details/<guid>.json) to serve, instead of a generated tenant")
	flags.IntVar(&opts.sensors, "sensors", 2000, "number of sensors of the generated tenant")
	flags.IntVar(&opts.malops, "malops", 20, "number of MalOps of the generated tenant")
	flags.Int64Var(&opts.seed, "seed", 1, "seed of the generated tenant; the same seed gives the same tenant")
	flags.DurationVar(&opts.pageDelay, "page-delay", 0, "delay added to each sensors page and inbox answer, e.g. 200ms")
	flags.DurationVar(&opts.advanceEvery, "advance-every", 0, "interval between tenant changes (sensors and MalOps), e.g. 1m; 0 never changes the tenant")
	flags.BoolVar(&opts.noV2, "no-v2", false, "respond with 400 to POST /rest/mmng/v2/malops, like a console without the MalOp management API")
	flags.TextVar(&opts.logLevel, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	opts.faults.register(flags)

	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return options{}, err
		}
		return options{}, &usageError{err}
	}
	if err := opts.validate(flags); err != nil {
		flags.Usage()
		return options{}, &usageError{err}
	}
	return opts, nil
}

// validate names every invalid flag.
func (opts options) validate(flags *flag.FlagSet) error {
	var errs []error
	if flags.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", flags.Args()))
	}
	if opts.user == "" {
		errs = append(errs, errors.New("--user is required"))
	}
	if opts.password == "" {
		errs = append(errs, errors.New("--password is required"))
	}
	if opts.sensors < 0 {
		errs = append(errs, fmt.Errorf("--sensors %d is negative", opts.sensors))
	}
	if opts.malops < 0 {
		errs = append(errs, fmt.Errorf("--malops %d is negative", opts.malops))
	}
	if opts.pageDelay < 0 {
		errs = append(errs, fmt.Errorf("--page-delay %s is negative", opts.pageDelay))
	}
	if opts.advanceEvery < 0 {
		errs = append(errs, fmt.Errorf("--advance-every %s is negative", opts.advanceEvery))
	}
	errs = append(errs, opts.faults.validate()...)
	if opts.tenantDir != "" {
		flags.Visit(func(f *flag.Flag) {
			if f.Name == "sensors" || f.Name == "malops" || f.Name == "seed" {
				errs = append(errs, fmt.Errorf("--%s sizes a generated tenant and cannot be used with --tenant", f.Name))
			}
		})
	}
	return errors.Join(errs...)
}

func loadTenant(opts options) (*cybereasontest.Tenant, error) {
	if opts.tenantDir != "" {
		return cybereasontest.LoadTenant(opts.tenantDir)
	}
	return cybereasontest.GenerateTenant(opts.seed, opts.sensors, opts.malops, time.Now()), nil
}

// advanceTenant changes the tenant at every interval and prints what changed, until ctx ends.
func advanceTenant(ctx context.Context, tenant *cybereasontest.Tenant, interval time.Duration, stdout io.Writer) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			fmt.Fprintf(stdout, "cybereason-sim: tenant changed: %s\n", tenant.Advance(now))
		}
	}
}
