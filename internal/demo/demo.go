// Package demo runs the whole connector on one machine: an in-process
// Kafka-protocol broker, the fake Cybereason console and the real stages,
// talking over loopback, for two collection cycles.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// Options are the demo settings; the zero value is not valid, see Defaults.
type Options struct {
	// TenantDir, when set, loads the console's tenant from a folder instead of
	// generating one.
	TenantDir string
	// Sensors, Malops and Seed size and seed the generated tenant.
	Sensors, Malops int
	Seed            int64
	// RecordsFile, when set, receives every record of the final topics as JSON lines.
	RecordsFile string
	// Partitions is the partition count of every topic.
	Partitions int
	// Timeout bounds the wait for the pipeline to catch up after a cycle.
	Timeout time.Duration
	// Version is recorded in the records as the connector version.
	Version string
}

// Defaults returns the options of a plain `demo`.
func Defaults() Options {
	return Options{Sensors: 200, Malops: 20, Seed: 1, Partitions: 3, Timeout: 2 * time.Minute, Version: "demo"}
}

// demo user of the fake console; the password is generated per run.
const demoUser = "demo@oversoc.example"

// Run runs the demo and writes its report to out. logger receives the
// stages' own logs.
func Run(ctx context.Context, opts Options, out io.Writer, logger *slog.Logger) error {
	if err := opts.Validate(); err != nil {
		return err
	}

	tenant, tenantLabel, err := loadTenant(opts)
	if err != nil {
		return err
	}

	cfg := demoConfig()
	broker, err := embeddedkafka.Start(embeddedkafka.Config{Topics: topics(cfg, opts.Partitions)}, logger)
	if err != nil {
		return fmt.Errorf("start in-process kafka broker: %w", err)
	}
	defer broker.Close()

	password, err := randomPassword()
	if err != nil {
		return err
	}
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{Username: demoUser, Password: password, Logger: logger})
	defer console.Close()

	cfg.Cybereason.URL = console.URL
	cfg.Cybereason.Password = config.NewSecret(password)
	cfg.Kafka.Brokers = broker.Addrs()

	fmt.Fprintf(out, "Cybereason connector demo\n  kafka    %s (in-process broker, %d partitions per topic)\n  console  %s (fake console, %s)\n",
		broker.Addrs()[0], opts.Partitions, console.URL, tenantLabel)

	// Published samples are years old, so the first windows start before the
	// oldest alert rather than a lookback before now.
	var alertsStart time.Time
	if oldest := tenant.OldestAlertTime(); !oldest.IsZero() {
		alertsStart = oldest.Add(-time.Minute)
	}
	stages, err := connector.Build(cfg, connector.Options{AlertsStart: alertsStart, ProductVersion: opts.Version}, logger)
	if err != nil {
		return err
	}
	return runStages(ctx, stages, cfg, tenant, opts, out)
}

func runStages(ctx context.Context, stages *connector.Stages, cfg *config.Config, tenant *cybereasontest.Tenant, opts Options, out io.Writer) (err error) {
	pipelineCtx, stopPipeline := context.WithCancel(ctx)
	pipelineDone := make(chan error, 1)
	go func() { pipelineDone <- stages.RunPipeline(pipelineCtx) }()
	defer func() {
		stopPipeline()
		err = errors.Join(err, ignoreCanceled(<-pipelineDone), stages.Close())
	}()

	if err := stages.Client.Login(ctx); err != nil {
		return err
	}

	for cycle := 1; cycle <= 2; cycle++ {
		if cycle == 2 {
			summary := tenant.Advance(time.Now())
			fmt.Fprintf(out, "\nTenant advanced: %s\n", summary)
		}
		if err := runCycle(ctx, cycle, stages, cfg, opts, out); err != nil {
			return err
		}
	}

	return report(ctx, cfg, opts, out)
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// runCycle collects both feeds once and waits until enrich and dedupe have
// committed everything the cycle published.
func runCycle(ctx context.Context, cycle int, stages *connector.Stages, cfg *config.Config, opts Options, out io.Writer) error {
	before := snapshot(stages)

	inventory, err := stages.Source.CollectSensors(ctx)
	if err != nil {
		return err
	}
	malops, err := stages.Source.CollectMalops(ctx)
	if err != nil {
		return err
	}
	malware, err := stages.Source.CollectMalware(ctx)
	if err != nil {
		return err
	}
	policies, err := stages.Source.CollectPolicies(ctx)
	if err != nil {
		return err
	}

	waitCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	brokers := cfg.Kafka.Brokers
	topics := cfg.Kafka.Topics
	if err := waitForGroup(waitCtx, brokers, cfg.Kafka.EnrichGroup, topics.RawSensors, topics.RawMalops, topics.RawMalware); err != nil {
		return fmt.Errorf("cycle %d: wait for enrich: %w", cycle, err)
	}
	if err := waitForGroup(waitCtx, brokers, cfg.Kafka.DedupeGroup, topics.NormalizedAssets, topics.NormalizedFindings); err != nil {
		return fmt.Errorf("cycle %d: wait for dedupe: %w", cycle, err)
	}

	after := snapshot(stages)
	fmt.Fprintf(out, "\nCycle %d\n", cycle)
	fmt.Fprintf(out, "  source  published %s (%s) and %s, %s from %s (window %s to %s), %s and %s\n",
		plural(inventory.Sensors, "sensor"), plural(inventory.Pages, "page"), plural(inventory.EndEvents, "inventory end event"),
		plural(malops.Malops, "MalOp"), malops.API,
		malops.From.UTC().Format(time.RFC3339), malops.To.UTC().Format(time.RFC3339),
		plural(malware.Alerts, "malware alert"), plural(policies, "policy"))
	after.printDelta(out, before)
	return nil
}

// waitForGroup polls until the consumer group has committed every message of
// topics, or ctx ends.
func waitForGroup(ctx context.Context, brokers []string, group string, topics ...string) error {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()

	for {
		lag, err := pipeline.GroupLag(ctx, brokers, group, topics)
		if err == nil && lag == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("group %s: %w (last lag check: %w)", group, ctx.Err(), err)
			}
			return fmt.Errorf("group %s still has %d uncommitted messages: %w", group, lag, ctx.Err())
		case <-ticker.C:
		}
	}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case o.TenantDir == "" && (o.Sensors < 1 || o.Malops < 0):
		return fmt.Errorf("invalid demo options: sensors must be positive and malops not negative, got %d and %d", o.Sensors, o.Malops)
	case o.Partitions < 1:
		return fmt.Errorf("invalid demo options: partitions must be positive, got %d", o.Partitions)
	case o.Timeout <= 0:
		return fmt.Errorf("invalid demo options: timeout must be positive, got %s", o.Timeout)
	}
	return checkRecordsFile(o.RecordsFile)
}

// checkRecordsFile rejects a records file that already exists, a directory,
// and a path whose parent is missing or not a directory, so that a bad path
// fails before the cycles run. The demo only creates files: the process may run as
// root, which ignores read-only bits, and a mistyped path must not destroy
// someone's data.
func checkRecordsFile(path string) error {
	if path == "" {
		return nil
	}

	info, err := os.Lstat(path)
	switch {
	case err == nil && info.IsDir():
		return fmt.Errorf("invalid demo options: records file %s is a directory; give the path of a new file", path)
	case err == nil:
		return fmt.Errorf("invalid demo options: records file %s already exists; remove it or choose another path", path)
	}

	// The parent is checked before the Lstat error is reported, because a parent
	// that is a file makes Lstat fail with ENOTDIR.
	parent := filepath.Dir(path)
	parentInfo, parentErr := os.Stat(parent)
	switch {
	case errors.Is(parentErr, fs.ErrNotExist):
		return fmt.Errorf("invalid demo options: records file %s: directory %s does not exist; create it or choose another path", path, parent)
	case parentErr != nil:
		return fmt.Errorf("invalid demo options: records file %s: %w", path, parentErr)
	case !parentInfo.IsDir():
		return fmt.Errorf("invalid demo options: records file %s: %s is not a directory", path, parent)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("invalid demo options: records file: %w", err)
	}
	return nil
}

func plural(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "y"):
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	default:
		return fmt.Sprintf("%d %ss", n, noun)
	}
}
