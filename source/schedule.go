package source

import (
	"context"
	"fmt"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// Run collects on the configured schedule until ctx ends. Each feed runs once
// at start and then every interval; a run that is still going when its next
// start comes is not overlapped (that start is skipped). A failed run is
// logged and counted, and the schedule goes on. Run returns after the running
// collections have seen ctx end and returned, or after stopTimeout.
func (s *Stage) Run(ctx context.Context, stopTimeout time.Duration) error {
	scheduler, err := gocron.NewScheduler(
		gocron.WithLogger(s.logger.With("component", "scheduler")),
		gocron.WithStopTimeout(stopTimeout),
	)
	if err != nil {
		return fmt.Errorf("create scheduler: %w", err)
	}

	jobs := []struct {
		name     string
		interval time.Duration
		collect  func(context.Context) error
	}{
		{"sensors", s.cfg.SensorsInterval, func(ctx context.Context) error { _, err := s.CollectSensors(ctx); return err }},
		{"malops", s.cfg.MalopsInterval, func(ctx context.Context) error { _, err := s.CollectMalops(ctx); return err }},
	}
	for _, job := range jobs {
		_, err := scheduler.NewJob(
			gocron.DurationJob(job.interval),
			gocron.NewTask(s.runJob, job.name, job.collect),
			gocron.WithName(job.name),
			gocron.WithContext(ctx),
			gocron.WithSingletonMode(gocron.LimitModeReschedule),
			gocron.WithStartAt(gocron.WithStartImmediately()),
		)
		if err != nil {
			return fmt.Errorf("schedule %s job: %w", job.name, err)
		}
	}

	s.logger.Info("source started", "sensors_interval", s.cfg.SensorsInterval.String(), "malops_interval", s.cfg.MalopsInterval.String())
	scheduler.Start()
	<-ctx.Done()

	if err := scheduler.Shutdown(); err != nil {
		return fmt.Errorf("stop scheduler: %w", err)
	}
	s.logger.Info("source stopped")
	return nil
}

// runJob is the gocron task: gocron passes the job context as the first
// argument, and it ends when the scheduler shuts down.
func (s *Stage) runJob(ctx context.Context, name string, collect func(context.Context) error) {
	if err := collect(ctx); err != nil {
		s.count(func(st *Stats) { st.FailedRuns++ })
		if ctx.Err() != nil {
			s.logger.Info("collection stopped by shutdown", "feed", name, "error", err)
			return
		}
		s.logger.Error("collection failed", "feed", name, "error", err)
	}
}
