package source

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// Restore loads the saved cursor of each enabled alert feed from
// Config.Checkpoints, and does nothing without a store. Run calls it before
// it schedules anything. A Collect call on a feed not restored yet restores that
// feed first, so calling Restore is needed only to fail early. A feed is
// restored once, and a call after an error tries again.
func (s *Stage) Restore(ctx context.Context) error {
	feeds := []struct {
		name   string
		mu     *sync.Mutex
		cursor *cursor
	}{
		{FeedMalops, &s.malopsMu, &s.malopsCursor},
		{FeedMalware, &s.malwareMu, &s.malwareCursor},
	}
	for _, feed := range feeds {
		if !s.cfg.collects(feed.name) {
			continue
		}
		feed.mu.Lock()
		err := feed.cursor.restore(ctx)
		feed.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Run restores the alert feeds' cursors, then collects the enabled feeds on
// their schedules until ctx ends. A failed restore is returned before any
// collection starts, unless ctx ended during it. Each feed runs once at start
// and then every interval. A run still going when its next start comes is not
// overlapped, because that start is skipped. A failed run is logged and
// counted, and the schedule goes on. Run returns after the running
// collections have seen ctx end and returned, or after stopTimeout.
func (s *Stage) Run(ctx context.Context, stopTimeout time.Duration) error {
	if err := s.Restore(ctx); err != nil {
		if ctx.Err() != nil {
			s.logger.Info("source stopped before its cursors were restored", "error", err)
			return nil
		}
		return err
	}

	scheduler, err := gocron.NewScheduler(
		gocron.WithLogger(s.logger.With("component", "scheduler")),
		gocron.WithStopTimeout(stopTimeout),
	)
	if err != nil {
		return fmt.Errorf("create scheduler: %w", err)
	}

	jobs := []struct {
		feed     string
		interval time.Duration
		collect  func(context.Context) error
	}{
		{FeedSensors, s.cfg.SensorsInterval, func(ctx context.Context) error { _, err := s.CollectSensors(ctx); return err }},
		{FeedMalops, s.cfg.MalopsInterval, func(ctx context.Context) error { _, err := s.CollectMalops(ctx); return err }},
		{FeedMalware, s.cfg.MalwareInterval, func(ctx context.Context) error { _, err := s.CollectMalware(ctx); return err }},
		{FeedPolicies, s.cfg.PoliciesInterval, func(ctx context.Context) error { _, err := s.CollectPolicies(ctx); return err }},
	}
	for _, job := range jobs {
		if !s.cfg.collects(job.feed) {
			continue
		}
		_, err := scheduler.NewJob(
			gocron.DurationJob(job.interval),
			gocron.NewTask(s.runJob, job.feed, job.collect),
			gocron.WithName(job.feed),
			gocron.WithContext(ctx),
			gocron.WithSingletonMode(gocron.LimitModeReschedule),
			gocron.WithStartAt(gocron.WithStartImmediately()),
		)
		if err != nil {
			return fmt.Errorf("schedule %s job: %w", job.feed, err)
		}
	}

	s.logger.Info("source started", "feeds", s.cfg.Feeds, "sensors_interval", s.cfg.SensorsInterval.String(),
		"malops_interval", s.cfg.MalopsInterval.String(), "malware_interval", s.cfg.MalwareInterval.String(),
		"policies_interval", s.cfg.PoliciesInterval.String())
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
	start := time.Now()
	err := collect(ctx)
	if s.cfg.ObserveRun != nil {
		s.cfg.ObserveRun(name, time.Since(start), err)
	}
	if err != nil {
		s.count(func(st *Stats) { st.FailedRuns++ })
		if ctx.Err() != nil {
			s.logger.Info("collection stopped by shutdown", "feed", name, "error", err)
			return
		}
		s.logger.Error("collection failed", "feed", name, "error", err)
	}
}
