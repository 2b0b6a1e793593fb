// Package connector builds the stages from the configuration and runs them
// together until the process is asked to stop.
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
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

	brokers   []string
	topics    []string // every topic the built stages use
	security  *kafkaconn.Security
	transport *kafka.Transport // the writer's, closed by Close
	conns     *kafkaconn.Conns // the open connections of transport
	// groupDialer is the dialer of the runners and of dedupe's restores,
	// and groupConns its open connections, closed when the shutdown
	// timeout ends with group requests still waiting for the broker.
	groupDialer *kafka.Dialer
	groupConns  *kafkaconn.Conns
	logger      *slog.Logger

	metrics     *instruments
	publisher   countingPublisher // the writer, counting what it publishes
	dedupeState *dedupe.MemoryState
	lagTargets  []lagTarget
}

// lagTarget is a consumer group whose lag the metrics report.
type lagTarget struct {
	stage, group string
	topics       []string
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
	security, err := newSecurity(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Kafka.SASL.Mechanism == kafkaconn.MechanismPlain && security.TLS() == nil {
		logger.Warn("KAFKA_SASL_MECHANISM is PLAIN without TLS, so the Kafka password crosses the network in clear text; set KAFKA_TLS=true or use SCRAM")
	}

	// The source chooses the partition of each raw sensor event and writes
	// an inventory end event to every partition. Enrich and dedupe write
	// each asset record, and dedupe each finding, to the partition with the
	// number of its input partition. Every other message is partitioned by
	// key.
	topics := cfg.Kafka.Topics
	transport := security.Transport()
	conns := kafkaconn.Track(transport)
	groupDialer := security.Dialer()
	groupConns := kafkaconn.TrackDialer(groupDialer)
	writer, err := sink.NewWriter(sink.Config{
		Brokers:   cfg.Kafka.Brokers,
		Transport: transport,
		Balancer:  pipeline.PartitionBalancer(topics.RawSensors, topics.NormalizedAssets, topics.Assets, topics.Findings),
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("create kafka writer: %w", err)
	}
	metrics := newInstruments()
	stages := &Stages{
		Writer:      writer,
		brokers:     cfg.Kafka.Brokers,
		topics:      requiredTopics(cfg),
		security:    security,
		transport:   transport,
		conns:       conns,
		groupDialer: groupDialer,
		groupConns:  groupConns,
		logger:      logger,
		metrics:     metrics,
		publisher:   countingPublisher{writer: writer, metrics: metrics},
	}

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
			return nil, errors.Join(fmt.Errorf("build %s stage: %w", step.stage, err), stages.closeWriter())
		}
	}
	return stages, nil
}

func (s *Stages) buildSource(cfg *config.Config, opts Options) error {
	client, err := newClient(cfg, s.logger, s.metrics.observeLogin)
	if err != nil {
		return err
	}

	checkpoints, err := checkpoint.New(checkpoint.Config{
		Brokers:   cfg.Kafka.Brokers,
		Dialer:    s.security.Dialer(),
		Topic:     cfg.Kafka.Topics.State,
		Publisher: s.publisher,
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
		ObserveRun:   s.metrics.observeRun,
	}, client, s.publisher, s.logger)
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
		Name:             config.StageEnrich,
		Brokers:          cfg.Kafka.Brokers,
		Dialer:           s.groupDialer,
		GroupID:          cfg.Kafka.EnrichGroup,
		SessionTimeout:   cfg.Kafka.GroupSessionTimeout,
		RebalanceTimeout: cfg.Kafka.GroupRebalanceTimeout,
		Topics:           []string{cfg.Kafka.Topics.RawSensors, cfg.Kafka.Topics.RawMalops, cfg.Kafka.Topics.RawMalware},
		DrainTimeout:     cfg.ShutdownTimeout,
		// The ConsumerGroup mode reads each assigned partition with its own
		// reader. kafka-go's group Reader once stopped fetching for minutes
		// after its members were killed, on a loaded host; this mode went on.
		TrackAssignments: true,
		StartCheck: func(ctx context.Context) error {
			return checkCopartitioned(ctx, s.security, cfg.Kafka.Brokers, cfg.Kafka.Topics.RawSensors, cfg.Kafka.Topics.NormalizedAssets)
		},
	}, stage, s.publisher, s.logger)
	if err != nil {
		return err
	}
	s.lagTargets = append(s.lagTargets, lagTarget{stage: config.StageEnrich, group: cfg.Kafka.EnrichGroup,
		topics: []string{cfg.Kafka.Topics.RawSensors, cfg.Kafka.Topics.RawMalops, cfg.Kafka.Topics.RawMalware}})

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
	s.dedupeState = dedupe.NewMemoryState()
	stage, err := dedupe.New(dedupe.Config{
		State: s.dedupeState,
		Routes: map[string]string{
			cfg.Kafka.Topics.NormalizedAssets:   cfg.Kafka.Topics.Assets,
			cfg.Kafka.Topics.NormalizedFindings: cfg.Kafka.Topics.Findings,
		},
		Fingerprint:    fingerprintByTopic(kinds),
		ResyncInterval: cfg.Kafka.DedupeResyncInterval,
		Brokers:        cfg.Kafka.Brokers,
		Dialer:         s.groupDialer,
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
		Dialer:           s.groupDialer,
		GroupID:          cfg.Kafka.DedupeGroup,
		SessionTimeout:   cfg.Kafka.GroupSessionTimeout,
		RebalanceTimeout: cfg.Kafka.GroupRebalanceTimeout,
		Topics:           []string{cfg.Kafka.Topics.NormalizedAssets, cfg.Kafka.Topics.NormalizedFindings},
		TrackAssignments: true,
		StartCheck:       stage.CheckPartitions,
		DrainTimeout:     cfg.ShutdownTimeout,
	}, timedRestore{Stage: stage, metrics: s.metrics}, s.publisher, s.logger)
	if err != nil {
		return err
	}
	for _, topic := range []string{cfg.Kafka.Topics.NormalizedAssets, cfg.Kafka.Topics.NormalizedFindings} {
		s.metrics.restoreFailures.WithLabelValues(topic)
	}
	s.lagTargets = append(s.lagTargets, lagTarget{stage: config.StageDedupe, group: cfg.Kafka.DedupeGroup,
		topics: []string{cfg.Kafka.Topics.NormalizedAssets, cfg.Kafka.Topics.NormalizedFindings}})

	s.Dedupe, s.DedupeRunner = stage, runner
	return nil
}

// NewClient returns the console client that cfg describes.
func NewClient(cfg *config.Config, logger *slog.Logger) (*cybereason.Client, error) {
	return newClient(cfg, logger, nil)
}

// newClient is NewClient that calls observeLogin, when set, after every login.
func newClient(cfg *config.Config, logger *slog.Logger, observeLogin func(string)) (*cybereason.Client, error) {
	var totp func() (string, error)
	if cfg.Cybereason.TOTPSecret.IsSet() {
		totp = cfg.Cybereason.TOTPSecret.Value
	}
	return cybereason.NewClient(cybereason.Config{
		BaseURL:         cfg.Cybereason.URL,
		Username:        cfg.Cybereason.Username,
		Password:        cfg.Cybereason.Password.Value,
		TOTPSecret:      totp,
		CAFile:          cfg.Cybereason.CAFile,
		Timeout:         cfg.Cybereason.RequestTimeout,
		PageSize:        cfg.Cybereason.PageSize,
		MaxPages:        cfg.Cybereason.MaxPages,
		PageConcurrency: cfg.Cybereason.PageConcurrency,
		ObserveLogin:    observeLogin,
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
// next start. When the shutdown timeout ends, consumer group requests that
// Kafka has not responded to are abandoned and their connections closed.
// Then the console session is closed and the writer flushes, both within
// what is left of the shutdown timeout since ctx ended or a stage failed.
// When ctx ends during the start-up check, Run returns nil, as after a clean
// stop. A credential refusal at start-up is returned at once, because
// retrying would only lock the account, and so is a login redirected away
// from the console URL, because only a change of CYBEREASON_URL fixes it.
func (s *Stages) Run(ctx context.Context, shutdownTimeout time.Duration) error {
	if err := checkTopics(ctx, s.security, s.brokers, s.topics); err != nil {
		if ctx.Err() != nil {
			return s.Close() // stopped before the start-up check ended: a clean stop
		}
		return errors.Join(err, s.Close())
	}
	if s.Client != nil {
		if err := s.Client.Login(ctx); err != nil {
			if errors.Is(err, cybereason.ErrCredentialsRejected) || errors.Is(err, cybereason.ErrLoginRedirectedAway) {
				return errors.Join(err, s.closeWriter())
			}
			s.logger.Error("first login failed; the scheduled collections will try again", "error", err)
		}
	}

	// The shutdown starts when ctx ends or a stage fails, which both end
	// groupCtx.
	group, groupCtx := errgroup.WithContext(ctx)
	var deadline atomic.Pointer[time.Time]
	stopWatching := context.AfterFunc(groupCtx, func() {
		end := time.Now().Add(shutdownTimeout)
		deadline.Store(&end)
	})
	defer stopWatching()

	if s.Source != nil {
		group.Go(func() error { return s.Source.Run(groupCtx, shutdownTimeout) })
	}
	group.Go(func() error { return s.RunPipeline(groupCtx) })
	stopAbandoning := s.abandonGroupRequestsAfter(groupCtx, shutdownTimeout)
	err := group.Wait()
	stopAbandoning()

	end := time.Now().Add(shutdownTimeout) // the deadline's AfterFunc has not run yet
	if started := deadline.Load(); started != nil {
		end = *started
	}
	return errors.Join(err, s.closeBy(end))
}

// abandonGroupRequestsAfter closes the connections of the runners' consumer
// groups and readers when shutdownTimeout has passed since ctx ended (a stop
// or a failed stage). It closes them again every 100 ms until the returned
// function is called, which waits for its goroutine. No context ends a
// kafka-go v0.4.51 consumer group request.
// A join waits up to the rebalance timeout plus 5 s, a sync up to the session
// timeout plus 5 s, and a heartbeat, offset commit or leave up to 5 s. A
// batch whose commit fails that way is consumed again at the next start, and
// the broker removes a member that could not leave after the session timeout.
func (s *Stages) abandonGroupRequestsAfter(ctx context.Context, shutdownTimeout time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		timer := time.NewTimer(shutdownTimeout)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-done:
			return
		}
		s.logger.Warn("kafka group requests still waiting at the end of the shutdown timeout; closing their connections, and their batches will be consumed again at the next start",
			"connections", s.groupConns.CloseAll())
		s.groupConns.KeepClosing(done) // the consumer groups dial again to leave, and may hang again
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// The console logout when the stages close takes at most logoutTimeout, and
// is given logoutMinimum even when the shutdown timeout is already spent, so
// that the session does not stay open on the console.
const (
	logoutTimeout = 10 * time.Second
	logoutMinimum = time.Second
)

// Close logs out of the console and flushes the writer, waiting for the
// writes in flight up to the writer's timeout.
func (s *Stages) Close() error {
	return s.closeBy(time.Time{})
}

// closeBy logs out of the console and flushes the writer by deadline, or
// without a deadline when it is zero. The logout may take logoutMinimum past
// the deadline. Writes still waiting for the broker at the deadline fail
// when their connections are closed. Their batches are not committed, so
// they are consumed or collected again at the next start.
func (s *Stages) closeBy(deadline time.Time) error {
	var errs []error
	if s.Client != nil {
		logoutBy := time.Now().Add(logoutTimeout)
		if !deadline.IsZero() {
			logoutBy = time.Now().Add(min(logoutTimeout, max(time.Until(deadline), logoutMinimum)))
		}
		ctx, cancel := context.WithDeadline(context.Background(), logoutBy)
		if err := s.Client.Logout(ctx); err != nil {
			errs = append(errs, fmt.Errorf("log out of the console: %w", err))
		}
		cancel()
	}
	if err := s.closeWriterBy(deadline); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// closeWriterBy closes the writer. When writes are still in flight at
// deadline, it closes the writer's connections so that they fail at once.
func (s *Stages) closeWriterBy(deadline time.Time) error {
	if deadline.IsZero() || s.conns == nil {
		return s.closeWriter()
	}
	var err error
	closed := make(chan struct{})
	go func() {
		err = s.closeWriter()
		close(closed)
	}()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-closed:
		return err
	case <-timer.C:
	}
	s.logger.Warn("kafka writes still in flight at the end of the shutdown timeout; closing their connections, and their batches will be processed again at the next start",
		"connections", s.conns.CloseAll())

	// Close sends the writer's pending batches on new connections, which may
	// hang as well, so the connections are closed again until it returns.
	s.conns.KeepClosing(closed)
	return err
}

// closeWriter flushes the writer and closes its connections.
func (s *Stages) closeWriter() error {
	err := s.Writer.Close()
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("close kafka writer: %w", err)
	}
	return nil
}
