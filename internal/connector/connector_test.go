package connector_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(t *testing.T, consoleURL, password string, partitions int) *config.Config {
	t.Helper()
	cfg := testConfigWithoutBroker(consoleURL, password)
	cfg.Kafka.Brokers = kafkatest.NewBroker(t, testTopicSpecs(cfg.Kafka.Topics, partitions)...)
	return cfg
}

// testTopicSpecs lists every topic of topics, each with its dead-letter topic,
// for an in-process broker to create.
func testTopicSpecs(topics config.Topics, partitions int) []embeddedkafka.Topic {
	var specs []embeddedkafka.Topic
	for _, name := range []string{topics.RawSensors, topics.RawMalops, topics.RawMalware, topics.RawPolicies,
		topics.NormalizedAssets, topics.NormalizedFindings, topics.Assets, topics.Findings} {
		specs = append(specs, embeddedkafka.Topic{Name: name, Partitions: partitions}, embeddedkafka.Topic{Name: name + ".dlq"})
	}
	specs = append(specs, embeddedkafka.Topic{Name: topics.AssetSecurityState, Partitions: partitions})
	return append(specs, embeddedkafka.Topic{Name: topics.State, Compacted: true})
}

// testConfigWithoutBroker returns the configuration of every stage against
// the console at consoleURL, with Kafka.Brokers left empty.
func testConfigWithoutBroker(consoleURL, password string) *config.Config {
	topics := config.Topics{
		RawSensors:         "cybereason.raw.sensors",
		RawMalops:          "cybereason.raw.malops",
		RawMalware:         "cybereason.raw.malware",
		RawPolicies:        "cybereason.raw.policies",
		NormalizedAssets:   "oversoc.normalized.assets",
		NormalizedFindings: "oversoc.normalized.findings",
		Assets:             "oversoc.assets",
		Findings:           "oversoc.findings",
		State:              "cybereason.connector.state",
		AssetSecurityState: "oversoc.asset-security-state",
	}

	return &config.Config{
		Cybereason: config.Cybereason{
			URL:            consoleURL,
			Username:       cybereasontest.DefaultUsername,
			Password:       config.NewSecret(password),
			Tenant:         "acme.cybereason.example",
			PageSize:       50,
			MaxPages:       100,
			RequestTimeout: 10 * time.Second,
		},
		Kafka: config.Kafka{
			Topics:      topics,
			EnrichGroup: "test-enrich",
			DedupeGroup: "test-dedupe",
		},
		Source: config.Source{
			Feeds:            []string{"sensors", "malops", "malware", "policies"},
			MalopDetails:     true,
			SensorsInterval:  time.Hour,
			MalopsInterval:   time.Hour,
			MalopsLookback:   30 * 24 * time.Hour,
			MalopsOverlap:    time.Minute,
			MalwareInterval:  time.Hour,
			MalwareLookback:  30 * 24 * time.Hour,
			MalwareOverlap:   time.Minute,
			PoliciesInterval: time.Hour,
		},
		Stages:          []string{config.StageSource, config.StageEnrich, config.StageDedupe},
		ShutdownTimeout: 10 * time.Second,
	}
}

// TestRunDeliversToFinalTopics runs every stage as `run` does, scheduler
// included, from the fake console to the final topics, and validates every
// record that arrives there.
func TestRunDeliversToFinalTopics(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(3, 120, 10, time.Now())
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
	defer console.Close()
	cfg := testConfig(t, console.URL, cybereasontest.DefaultPassword, 3)

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stages.Run(ctx, cfg.ShutdownTimeout) }()

	// Findings are the 10 MalOps and one per distinct malware alert guid.
	wantFindings := 10 + distinctGUIDs(t, tenant.Malware())
	kafkatest.WaitFor(t, func() bool {
		return len(kafkatest.ReadAll(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.Assets)) >= 120 &&
			len(kafkatest.ReadAll(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.Findings)) >= wantFindings &&
			len(kafkatest.ReadAll(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.State)) >= 2
	})
	kafkatest.WaitFor(t, func() bool { ready, _ := stages.Ready(); return ready })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ready, _ := stages.Ready(); ready {
		t.Error("stages still ready after Run returned")
	}

	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	finals := map[string]schemas.Kind{cfg.Kafka.Topics.Assets: schemas.KindAsset, cfg.Kafka.Topics.Findings: schemas.KindFinding}
	for topic, kind := range finals {
		keys := map[string]bool{}
		for _, msg := range kafkatest.ReadAll(t, cfg.Kafka.Brokers, topic) {
			keys[string(msg.Key)] = true
			if err := validator.Validate(kind, msg.Value); err != nil {
				t.Errorf("%s %s: %v", topic, msg.Key, err)
			}
		}
		want := map[schemas.Kind]int{schemas.KindAsset: 120, schemas.KindFinding: wantFindings}[kind]
		if len(keys) != want {
			t.Errorf("%s has %d distinct keys, want %d", topic, len(keys), want)
		}
	}
	checkpoints := map[string]bool{}
	for _, msg := range kafkatest.ReadAll(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.State) {
		checkpoints[string(msg.Key)] = true
	}
	for _, key := range []string{"acme.cybereason.example/malops", "acme.cybereason.example/malware"} {
		if !checkpoints[key] {
			t.Errorf("state topic has no checkpoint %s; it has %v", key, checkpoints)
		}
	}
	for _, topic := range []string{cfg.Kafka.Topics.RawSensors + ".dlq", cfg.Kafka.Topics.NormalizedAssets + ".dlq"} {
		if msgs := kafkatest.ReadAll(t, cfg.Kafka.Brokers, topic); len(msgs) != 0 {
			t.Errorf("%s has %d dead letters, want none", topic, len(msgs))
		}
	}
	if stats := console.Stats(); stats.Logouts != 1 {
		t.Errorf("console saw %d logouts, want 1 at shutdown", stats.Logouts)
	}

	registry := stages.NewRegistry("test")
	problems, err := testutil.GatherAndLint(registry)
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, problem := range problems {
		t.Errorf("metric %s: %s", problem.Metric, problem.Text)
	}
	assertFamilies(t, registry)
	assertMetric(t, registry, "cybereason_connector_source_events_total", map[string]string{"feed": "sensors"}, 120)
	assertMetric(t, registry, "cybereason_connector_source_polls_total", map[string]string{"feed": "sensors", "result": "success"}, 1)
	assertMetric(t, registry, "cybereason_connector_source_logins_total", map[string]string{"result": "success"}, 1)
	assertMetric(t, registry, "cybereason_connector_source_inventories_incomplete_total", map[string]string{"reason": "seam_gap"}, 0)
	// 120 sensor events and an inventory end event on each of the 3 partitions.
	assertMetric(t, registry, "cybereason_connector_kafka_messages_published_total", map[string]string{"topic": cfg.Kafka.Topics.RawSensors}, 123)
	assertMetric(t, registry, "cybereason_connector_stage_messages_dead_lettered_total", map[string]string{"stage": "enrich"}, 0)
}

// assertFamilies checks that every metric family operators alert on is
// exported after a run.
func assertFamilies(t *testing.T, registry *prometheus.Registry) {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, family := range families {
		exported[family.GetName()] = true
	}

	for _, name := range []string{
		"source_polls_total",                  // polls per feed, by result
		"source_poll_duration_seconds",        // their duration per feed
		"source_logins_total",                 // logins by result
		"source_inventories_incomplete_total", // inventories without end events
		"source_events_total",                 // raw events per feed
		"kafka_messages_published_total",      // events per topic
		"dead_letters_total",                  // dead letters by stage and reason
		"dedupe_unchanged_total",              // duplicates dropped
		"kafka_write_retries_total",           // write retries
		"kafka_write_rejected_total",          // writes rejected for good
		"kafka_authentication_failing",        // SASL exchanges failing
		"consumer_lag_messages",               // consumer lag per stage and topic
		"dedupe_state_keys",                   // dedupe state size
		"dedupe_restore_duration_seconds",     // dedupe restore time
		"dedupe_restore_failures_total",       // dedupe restores failed
		"stage_messages_consumed_total",       // pipeline throughput
		"stage_messages_dead_lettered_total",  // dead letters per stage
		"build_info",                          // build version
	} {
		if !exported["cybereason_connector_"+name] {
			t.Errorf("metric family cybereason_connector_%s is missing", name)
		}
	}
}

// assertMetric checks the value of the sample of name whose labels include labels.
func assertMetric(t *testing.T, registry *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, metric := range family.GetMetric() {
			matched := 0
			for _, pair := range metric.GetLabel() {
				if labels[pair.GetName()] == pair.GetValue() {
					matched++
				}
			}
			if matched == len(labels) {
				if got := metric.GetCounter().GetValue(); got != want {
					t.Errorf("%s%v = %v, want %v", name, labels, got, want)
				}
				return
			}
		}
	}
	t.Errorf("no sample %s%v", name, labels)
}

func distinctGUIDs(t *testing.T, objects []json.RawMessage) int {
	t.Helper()
	guids := map[string]bool{}
	for _, raw := range objects {
		var object struct {
			GUID string `json:"guid"`
		}
		if err := json.Unmarshal(raw, &object); err != nil {
			t.Fatal(err)
		}
		guids[object.GUID] = true
	}
	return len(guids)
}

func TestRunStopsOnRejectedCredentials(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(3, 5, 1, time.Now())
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
	defer console.Close()
	const wrongPassword = "not the password"
	cfg := testConfig(t, console.URL, wrongPassword, 1)

	stages, err := connector.Build(cfg, connector.Options{}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	err = stages.Run(context.Background(), cfg.ShutdownTimeout)

	if !errors.Is(err, cybereason.ErrCredentialsRejected) {
		t.Fatalf("Run error = %v, want ErrCredentialsRejected", err)
	}
	if strings.Contains(err.Error(), wrongPassword) {
		t.Errorf("error reveals the password: %v", err)
	}
}

func TestBuildOnlyRequestedStages(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", "unused", 1)
	cfg.Stages = []string{config.StageDedupe}

	stages, err := connector.Build(cfg, connector.Options{}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer func() {
		if err := stages.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	if stages.Source != nil || stages.EnrichRunner != nil {
		t.Errorf("built source %v and enrich %v, want only dedupe", stages.Source != nil, stages.EnrichRunner != nil)
	}
	if stages.DedupeRunner == nil {
		t.Error("dedupe runner not built")
	}
}

func TestRunRequiresEveryTopic(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", "unused", 1)
	cfg.Stages = []string{config.StageDedupe}
	cfg.Kafka.Topics.Findings = "oversoc.findings.absent"

	stages, err := connector.Build(cfg, connector.Options{}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	err = stages.Run(context.Background(), cfg.ShutdownTimeout)

	if err == nil || !strings.Contains(err.Error(), "missing Kafka topics: oversoc.findings.absent;") {
		t.Fatalf("Run error = %v, want one naming the missing topic", err)
	}
}

func TestRunRequiresCopartitionedDedupeTopics(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1", "unused", 3)
	cfg.Stages = []string{config.StageDedupe}
	cfg.Kafka.Topics.Findings = cfg.Kafka.Topics.State // exists, with 1 partition

	stages, err := connector.Build(cfg, connector.Options{}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	err = stages.Run(context.Background(), cfg.ShutdownTimeout)

	want := "partition count of output topic cybereason.connector.state is 1 but that of its input oversoc.normalized.findings is 3"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Run error = %v, want one containing %q", err, want)
	}
}
