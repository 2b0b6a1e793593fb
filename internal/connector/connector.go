// Package connector builds the stages from the configuration and runs them
// together until the process is asked to stop.
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/pipeline/enrich"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/checkpoint"
	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// Stages are the built stages of one process. A stage that the process does
// not run is nil.
type Stages struct {
	Writer *sink.Writer
	Client *cybereason.Client
	Source *source.Stage
	Enrich *enrich.Stage
	Dedupe *dedupe.Stage

	EnrichRunner *pipeline.Runner
	DedupeRunner *pipeline.Runner

	brokers []string
	topics  []string // every topic the built stages use
	logger  *slog.Logger
}

// Options adjusts how Build wires the stages; the zero value is what `run` uses.
type Options struct {
	// AlertsStart, when set, is the start of the first MalOp and malware windows.
	AlertsStart time.Time
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// ProductVersion is recorded in every OverSOC record.
	ProductVersion string
}

// Build creates every stage that cfg enables, sharing one Kafka writer. A nil
// logger discards logs.
func Build(cfg *config.Config, opts Options, logger *slog.Logger) (*Stages, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The source chooses the partition of each raw sensor event and writes
	// an inventory end event to every partition. Enrich and dedupe write
	// each asset record, and dedupe each finding, to the partition with the
	// number of its input partition. Every other message is partitioned by
	// key.
	topics := cfg.Kafka.Topics
	writer, err := sink.NewWriter(sink.Config{
		Brokers:  cfg.Kafka.Brokers,
		Balancer: pipeline.PartitionBalancer(topics.RawSensors, topics.NormalizedAssets, topics.Assets, topics.Findings),
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("create kafka writer: %w", err)
	}
	stages := &Stages{Writer: writer, brokers: cfg.Kafka.Brokers, topics: requiredTopics(cfg), logger: logger}

	steps := []struct {
		stage string
		build func(*config.Config, Options) error
	}{
		{config.StageSource, stages.buildSource},
		{config.StageEnrich, stages.buildEnrich},
		{config.StageDedupe, stages.buildDedupe},
	}
	for _, step := range steps {
		if !cfg.Runs(step.stage) {
			continue
		}
		if err := step.build(cfg, opts); err != nil {
			return nil, errors.Join(fmt.Errorf("build %s stage: %w", step.stage, err), writer.Close())
		}
	}
	return stages, nil
}

func (s *Stages) buildSource(cfg *config.Config, opts Options) error {
	client, err := NewClient(cfg, s.logger)
	if err != nil {
		return err
	}

	checkpoints, err := checkpoint.New(checkpoint.Config{
		Brokers:   cfg.Kafka.Brokers,
		Topic:     cfg.Kafka.Topics.State,
		Publisher: s.Writer,
	})
	if err != nil {
		return err
	}

	stage, err := source.New(source.Config{
		ConsoleURL:       cfg.Cybereason.URL,
		Tenant:           cfg.Cybereason.Tenant,
		Feeds:            cfg.Source.Feeds,
		SensorsTopic:     cfg.Kafka.Topics.RawSensors,
		MalopsTopic:      cfg.Kafka.Topics.RawMalops,
		MalwareTopic:     cfg.Kafka.Topics.RawMalware,
		PoliciesTopic:    cfg.Kafka.Topics.RawPolicies,
		SensorsInterval:  cfg.Source.SensorsInterval,
		MalopsInterval:   cfg.Source.MalopsInterval,
		MalwareInterval:  cfg.Source.MalwareInterval,
		PoliciesInterval: cfg.Source.PoliciesInterval,
		MalopsWindow: source.Window{
			Lookback: cfg.Source.MalopsLookback,
			Start:    opts.AlertsStart,
			Overlap:  cfg.Source.MalopsOverlap,
		},
		MalwareWindow: source.Window{
			Lookback: cfg.Source.MalwareLookback,
			Start:    opts.AlertsStart,
			Overlap:  cfg.Source.MalwareOverlap,
		},
		MalopDetails: cfg.Source.MalopDetails,
		Checkpoints:  checkpoints,
		Partitions:   s.Writer,
		Now:          opts.Now,
	}, client, s.Writer, s.logger)
	if err != nil {
		return err
	}

	s.Client, s.Source = client, stage
	return nil
}

func (s *Stages) buildEnrich(cfg *config.Config, opts Options) error {
	validator, err := schemas.NewValidator()
	if err != nil {
		return err
	}

	stage, err := enrich.New(enrich.Config{
		SensorsTopic:   cfg.Kafka.Topics.RawSensors,
		MalopsTopic:    cfg.Kafka.Topics.RawMalops,
		MalwareTopic:   cfg.Kafka.Topics.RawMalware,
		AssetsTopic:    cfg.Kafka.Topics.NormalizedAssets,
		FindingsTopic:  cfg.Kafka.Topics.NormalizedFindings,
		Validator:      validator,
		Now:            opts.Now,
		ProductVersion: opts.ProductVersion,
	}, s.logger)
	if err != nil {
		return err
	}

	runner, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name:         config.StageEnrich,
		Brokers:      cfg.Kafka.Brokers,
		GroupID:      cfg.Kafka.EnrichGroup,
		Topics:       []string{cfg.Kafka.Topics.RawSensors, cfg.Kafka.Topics.RawMalops, cfg.Kafka.Topics.RawMalware},
		DrainTimeout: cfg.ShutdownTimeout,
		StartCheck: func(ctx context.Context) error {
			return checkCopartitioned(ctx, cfg.Kafka.Brokers, cfg.Kafka.Topics.RawSensors, cfg.Kafka.Topics.NormalizedAssets)
		},
	}, stage, s.Writer, s.logger)
	if err != nil {
		return err
	}

	s.Enrich, s.EnrichRunner = stage, runner
	return nil
}

// buildDedupe builds dedupe with its state kept in its output topics. Each
// output goes to the partition with the number of its input partition, and
// the runner restores a partition's state from that output partition when
// the partition is assigned. The runner checks at start that inputs and
// outputs have the same partition counts.
func (s *Stages) buildDedupe(cfg *config.Config, _ Options) error {
	validator, err := schemas.NewValidator()
	if err != nil {
		return err
	}
	kinds := map[string]schemas.Kind{
		cfg.Kafka.Topics.NormalizedAssets:   schemas.KindAsset,
		cfg.Kafka.Topics.NormalizedFindings: schemas.KindFinding,
	}
	stage, err := dedupe.New(dedupe.Config{
		Routes: map[string]string{
			cfg.Kafka.Topics.NormalizedAssets:   cfg.Kafka.Topics.Assets,
			cfg.Kafka.Topics.NormalizedFindings: cfg.Kafka.Topics.Findings,
		},
		Fingerprint:    fingerprintByTopic(kinds),
		ResyncInterval: cfg.Kafka.DedupeResyncInterval,
		Brokers:        cfg.Kafka.Brokers,
		Assets: &dedupe.AssetConfig{
			Topic:              cfg.Kafka.Topics.NormalizedAssets,
			SecurityStateTopic: cfg.Kafka.Topics.AssetSecurityState,
			MissedInventories:  cfg.Kafka.DedupeMissedInventories,
			Validator:          validator,
		},
	}, s.logger)
	if err != nil {
		return err
	}

	runner, err := pipeline.NewRunner(pipeline.RunnerConfig{
		Name:             config.StageDedupe,
		Brokers:          cfg.Kafka.Brokers,
		GroupID:          cfg.Kafka.DedupeGroup,
		Topics:           []string{cfg.Kafka.Topics.NormalizedAssets, cfg.Kafka.Topics.NormalizedFindings},
		TrackAssignments: true,
		StartCheck:       stage.CheckPartitions,
		DrainTimeout:     cfg.ShutdownTimeout,
	}, stage, s.Writer, s.logger)
	if err != nil {
		return err
	}

	s.Dedupe, s.DedupeRunner = stage, runner
	return nil
}

// NewClient returns the console client that cfg describes.
func NewClient(cfg *config.Config, logger *slog.Logger) (*cybereason.Client, error) {
	var totp func() (string, error)
	if cfg.Cybereason.TOTPSecret.IsSet() {
		totp = cfg.Cybereason.TOTPSecret.Value
	}
	return cybereason.NewClient(cybereason.Config{
		BaseURL:    cfg.Cybereason.URL,
		Username:   cfg.Cybereason.Username,
		Password:   cfg.Cybereason.Password.Value,
		TOTPSecret: totp,
		CAFile:     cfg.Cybereason.CAFile,
		Timeout:    cfg.Cybereason.RequestTimeout,
		PageSize:   cfg.Cybereason.PageSize,
		MaxPages:   cfg.Cybereason.MaxPages,
	}, logger)
}

// RunPipeline runs the enrich and dedupe runners that were built until ctx
// ends or one of them fails.
func (s *Stages) RunPipeline(ctx context.Context) error {
	group, ctx := errgroup.WithContext(ctx)
	for _, runner := range []*pipeline.Runner{s.EnrichRunner, s.DedupeRunner} {
		if runner != nil {
			group.Go(func() error { return runner.Run(ctx) })
		}
	}
	return group.Wait()
}

// Run checks that Kafka is reachable and every topic exists, then runs every
// built stage until ctx ends. On the way out the source stops scheduling and
// the runners stop fetching. Each runner finishes its batch in flight within
// the shutdown timeout, and a batch not done by then is consumed again at the
// next start. Then the console session is closed and the writer flushes. A credential
// refusal at start-up is returned at once, because retrying would only lock
// the account.
func (s *Stages) Run(ctx context.Context, shutdownTimeout time.Duration) error {
	if err := checkTopics(ctx, s.brokers, s.topics); err != nil {
		return errors.Join(err, s.Close())
	}
	if s.Client != nil {
		if err := s.Client.Login(ctx); err != nil {
			if errors.Is(err, cybereason.ErrCredentialsRejected) {
				return errors.Join(err, s.Writer.Close())
			}
			s.logger.Error("first login failed; the scheduled collections will try again", "error", err)
		}
	}

	group, groupCtx := errgroup.WithContext(ctx)
	if s.Source != nil {
		group.Go(func() error { return s.Source.Run(groupCtx, shutdownTimeout) })
	}
	group.Go(func() error { return s.RunPipeline(groupCtx) })
	err := group.Wait()

	return errors.Join(err, s.Close())
}

// Close logs out of the console and flushes the writer.
func (s *Stages) Close() error {
	var errs []error
	if s.Client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Client.Logout(ctx); err != nil {
			errs = append(errs, fmt.Errorf("log out of the console: %w", err))
		}
		cancel()
	}
	if err := s.Writer.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close kafka writer: %w", err))
	}
	return errors.Join(errs...)
}
