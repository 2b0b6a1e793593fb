package connector_test

import (
	"context"
	"strings"
	"testing"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
)

func TestRunRequiresCopartitionedEnrichTopics(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", "unused", 3)
	cfg.Stages = []string{config.StageEnrich}
	cfg.Kafka.Topics.NormalizedAssets = cfg.Kafka.Topics.State // exists, with 1 partition

	stages, err := connector.Build(cfg, connector.Options{}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	err = stages.Run(context.Background(), cfg.ShutdownTimeout)

	want := "partition count of cybereason.connector.state is 1 but that of cybereason.raw.sensors is 3"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run error = %v, want one containing %q", err, want)
	}
}

func TestCheckNamesUncopartitionedEnrichTopics(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", "unused", 3)
	cfg.Stages = []string{config.StageEnrich}
	cfg.Kafka.Topics.NormalizedAssets = cfg.Kafka.Topics.State // exists, with 1 partition

	results := connector.Check(context.Background(), cfg, nil)
	if len(results) != 1 || results[0].OK {
		t.Fatalf("Check results %+v, want one failed kafka probe", results)
	}
	if want := "partition count of cybereason.connector.state is 1"; !strings.Contains(results[0].Detail, want) {
		t.Errorf("kafka probe detail %q, want one containing %q", results[0].Detail, want)
	}
}
