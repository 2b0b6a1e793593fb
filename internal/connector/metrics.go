package connector

import (
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// metricsPrefix starts every metric name of the connector.
const metricsPrefix = "cybereason_connector_"

// statsCollector exports the stages' counters when Prometheus scrapes, so the
// stages keep plain counters and need no metrics library.
type statsCollector struct {
	stages *Stages

	sourceEvents      *prometheus.Desc
	sourceRuns        *prometheus.Desc
	sourceFailedRuns  *prometheus.Desc
	sourceIncomplete  *prometheus.Desc
	malopDetailErrors *prometheus.Desc
	consumed          *prometheus.Desc
	produced          *prometheus.Desc
	deadLettered      *prometheus.Desc
	unknownValues     *prometheus.Desc
	enrichDetails     *prometheus.Desc
	dedupeUnchanged   *prometheus.Desc
	dedupeStateKeys   *prometheus.Desc
	writeRetries      *prometheus.Desc
	writeRejected     *prometheus.Desc
	kafkaAuthFailing  *prometheus.Desc
	enrichInventories *prometheus.Desc
	dedupeInventories *prometheus.Desc
	dedupeRemoved     *prometheus.Desc
	dedupeStates      *prometheus.Desc
}

func newStatsCollector(stages *Stages) *statsCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metricsPrefix+name, help, labels, nil)
	}
	return &statsCollector{
		stages:            stages,
		sourceEvents:      desc("source_events_total", "Raw events the source published, by feed (dead-lettered ones included).", "feed"),
		sourceRuns:        desc("source_runs_total", "Complete collections, by feed.", "feed"),
		sourceFailedRuns:  desc("source_failed_runs_total", "Scheduled collections that failed."),
		sourceIncomplete:  desc("source_inventories_incomplete_total", "Sensor inventories that may have skipped a sensor because the fleet changed during paging, so they wrote no inventory end event, by reason: seam_gap or ended_early.", "reason"),
		malopDetailErrors: desc("source_malop_detail_errors_total", "MalOps published without their details because fetching them failed."),
		consumed:          desc("stage_messages_consumed_total", "Messages consumed, by stage.", "stage"),
		produced:          desc("stage_messages_produced_total", "Messages produced and acknowledged, dead letters excluded, by stage.", "stage"),
		deadLettered:      desc("stage_messages_dead_lettered_total", "Input messages sent to a dead-letter topic, by stage.", "stage"),
		unknownValues:     desc("enrich_unknown_vendor_values_total", "Vendor values no mapping recognized, mapped to unknown and kept raw, by field.", "field"),
		enrichDetails:     desc("enrich_malop_details_failed_total", "Detailed MalOps whose details were unusable; their finding was built from the MalOp alone."),
		dedupeUnchanged:   desc("dedupe_unchanged_total", "Records dedupe dropped because their content had not changed."),
		dedupeStateKeys:   desc("dedupe_state_keys", "Keys in dedupe's state, over the partitions assigned to this process."),
		writeRetries:      desc("kafka_write_retries_total", "Kafka write attempts repeated after a transient failure."),
		writeRejected:     desc("kafka_write_rejected_total", "Messages the brokers rejected for good, such as too large ones; each goes to a dead-letter topic."),
		kafkaAuthFailing:  desc("kafka_authentication_failing", "1 while SASL exchanges with the brokers keep failing, as with a wrong password; 0 otherwise."),
		enrichInventories: desc("enrich_inventory_end_events_total", "Sensor inventory end events enrich read, by outcome: forwarded, or invalid and dead-lettered.", "outcome"),
		dedupeInventories: desc("dedupe_inventory_end_events_total", "Sensor inventory end events dedupe read, by outcome: complete (applied), incomplete (not seen whole on the partition, nothing removed), replayed (ignored) or invalid (dead-lettered).", "outcome"),
		dedupeRemoved:     desc("dedupe_removed_assets_total", "Assets published as removed, each followed by a tombstone."),
		dedupeStates:      desc("dedupe_security_state_records_total", "Asset security-state records, by outcome: published, or failed (logged, not published).", "outcome"),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sourceEvents, c.sourceRuns, c.sourceFailedRuns, c.sourceIncomplete, c.malopDetailErrors,
		c.consumed, c.produced, c.deadLettered, c.unknownValues, c.enrichDetails, c.dedupeUnchanged,
		c.dedupeStateKeys, c.writeRetries, c.writeRejected, c.kafkaAuthFailing,
		c.enrichInventories, c.dedupeInventories, c.dedupeRemoved, c.dedupeStates} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, value float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, value, labels...)
	}

	if stage := c.stages.Source; stage != nil {
		stats := stage.Stats()
		for feed, events := range map[string]int{"sensors": stats.SensorsPublished, "malops": stats.MalopsPublished,
			"malware": stats.MalwarePublished, "policies": stats.PoliciesPublished} {
			counter(c.sourceEvents, float64(events), feed)
		}
		for feed, runs := range map[string]int{"sensors": stats.Inventories, "malops": stats.MalopPolls,
			"malware": stats.MalwarePolls, "policies": stats.PolicyPolls} {
			counter(c.sourceRuns, float64(runs), feed)
		}
		counter(c.sourceFailedRuns, float64(stats.FailedRuns))
		counter(c.sourceIncomplete, float64(stats.IncompleteInventories.SeamGap), cybereason.GapSeam)
		counter(c.sourceIncomplete, float64(stats.IncompleteInventories.EndedEarly), cybereason.GapEndedEarly)
		counter(c.malopDetailErrors, float64(stats.MalopDetailErrors))
	}

	for stage, runner := range map[string]*pipeline.Runner{"enrich": c.stages.EnrichRunner, "dedupe": c.stages.DedupeRunner} {
		if runner == nil {
			continue
		}
		stats := runner.Stats()
		counter(c.consumed, float64(stats.Consumed), stage)
		counter(c.produced, float64(stats.Produced), stage)
		counter(c.deadLettered, float64(stats.DeadLettered), stage)
	}

	if stage := c.stages.Enrich; stage != nil {
		stats := stage.Stats()
		for field, count := range stats.UnknownValues {
			counter(c.unknownValues, float64(count), field)
		}
		counter(c.enrichDetails, float64(stats.DetailsFailed))
		counter(c.enrichInventories, float64(stats.InventoryEnds), "forwarded")
		counter(c.enrichInventories, float64(stats.InvalidInventoryEnds), "invalid")
	}
	if stage := c.stages.Dedupe; stage != nil {
		stats := stage.Stats()
		counter(c.dedupeUnchanged, float64(stats.Unchanged))
		counter(c.dedupeInventories, float64(stats.InventoryEnds), "complete")
		counter(c.dedupeInventories, float64(stats.IncompleteInventories), "incomplete")
		counter(c.dedupeInventories, float64(stats.ReplayedInventoryEnds), "replayed")
		counter(c.dedupeInventories, float64(stats.InvalidInventoryEnds), "invalid")
		counter(c.dedupeRemoved, float64(stats.Removed))
		counter(c.dedupeStates, float64(stats.SecurityStates), "published")
		counter(c.dedupeStates, float64(stats.SecurityStateErrors), "failed")
	}
	if state := c.stages.dedupeState; state != nil {
		ch <- prometheus.MustNewConstMetric(c.dedupeStateKeys, prometheus.GaugeValue, float64(state.Len()))
	}
	if writer := c.stages.Writer; writer != nil {
		stats := writer.Stats()
		counter(c.writeRetries, float64(stats.Retries))
		counter(c.writeRejected, float64(stats.Rejected))
		failing, _ := c.stages.security.AuthFailing(time.Now())
		ch <- prometheus.MustNewConstMetric(c.kafkaAuthFailing, prometheus.GaugeValue, boolValue(failing))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a registry with the stages' counters, the build
// version and the Go runtime and process metrics.
func (s *Stages) NewRegistry(version string) *prometheus.Registry {
	registry := prometheus.NewRegistry()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        metricsPrefix + "build_info",
		Help:        "Always 1; the labels are the connector's build version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)

	registry.MustRegister(
		newStatsCollector(s),
		buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if s.metrics != nil {
		registry.MustRegister(s.metrics.collectors()...)
	}
	if len(s.lagTargets) > 0 {
		registry.MustRegister(newLagCollector(s))
	}
	return registry
}

// Ready reports whether the built stages can do their work, and if not, why:
// every runner has joined its group and restored its state, and no Kafka
// write is being retried after a failure.
func (s *Stages) Ready() (bool, []string) {
	var reasons []string
	if !s.Writer.Healthy() {
		reasons = append(reasons, "kafka writes are failing and being retried")
	}
	if failing, reason := s.security.AuthFailing(time.Now()); failing {
		reasons = append(reasons, reason)
	}
	for name, runner := range map[string]*pipeline.Runner{"enrich": s.EnrichRunner, "dedupe": s.DedupeRunner} {
		if runner != nil && !runner.Ready() {
			reasons = append(reasons, name+" has not joined its group or restored its state")
		}
	}
	slices.Sort(reasons)
	return len(reasons) == 0, reasons
}
