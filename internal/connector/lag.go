package connector

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/pipeline"
)

// Lag is read from the brokers at most once per lagCacheTime, so frequent
// scrapes do not load them, and each read is bounded by lagTimeout.
const (
	lagCacheTime = 10 * time.Second
	lagTimeout   = 5 * time.Second
)

// lagCollector reports the lag of the enrich and dedupe consumer groups on
// each of their input topics: the messages not yet committed.
type lagCollector struct {
	stages *Stages
	desc   *prometheus.Desc

	mu   sync.Mutex
	read time.Time
	lags map[string]map[string]int64 // by stage, then topic
}

func newLagCollector(stages *Stages) *lagCollector {
	return &lagCollector{
		stages: stages,
		desc: prometheus.NewDesc(metricsPrefix+"consumer_lag_messages",
			"Messages of each input topic that the stage's consumer group has not committed yet; absent while the brokers cannot be read.",
			[]string{"stage", "topic"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	for stage, lags := range c.current() {
		for topic, lag := range lags {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(lag), stage, topic)
		}
	}
}

// current returns the lags by stage and topic, read again from the brokers
// when the last read is older than lagCacheTime. A group whose lag cannot be
// read is left out.
func (c *lagCollector) current() map[string]map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.read) < lagCacheTime {
		return c.lags
	}

	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	transport := c.stages.security.Transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.stages.brokers...), Transport: transport}

	c.read, c.lags = time.Now(), make(map[string]map[string]int64)
	for _, target := range c.stages.lagTargets {
		lags, err := pipeline.TopicLags(ctx, client, target.group, target.topics)
		if err != nil {
			c.stages.logger.Debug("read consumer lag for the metrics failed", "group", target.group, "error", c.stages.security.Explain(err))
			continue
		}
		c.lags[target.stage] = lags
	}
	return c.lags
}
