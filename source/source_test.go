package source_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	sensorsTopic  = "cybereason.raw.sensors"
	malopsTopic   = "cybereason.raw.malops"
	malwareTopic  = "cybereason.raw.malware"
	policiesTopic = "cybereason.raw.policies"
	stateTopic    = "cybereason.connector.state"
	tenantID      = "acme.cybereason.example"
)

// rig is a source stage wired to a fake console and an in-process broker.
type rig struct {
	tenant  *cybereasontest.Tenant
	console *cybereasontest.Server
	brokers []string
	client  *cybereason.Client
	writer  *sink.Writer
}

func newRig(t *testing.T, sensors, malops int, consoleOpts cybereasontest.Options) *rig {
	t.Helper()
	return newRigWithWriter(t, sensors, malops, consoleOpts, sink.Config{})
}

func newRigWithWriter(t *testing.T, sensors, malops int, consoleOpts cybereasontest.Options, writerCfg sink.Config) *rig {
	t.Helper()
	tenant := cybereasontest.GenerateTenant(7, sensors, malops, time.Now())
	console := cybereasontest.NewServer(tenant, consoleOpts)
	t.Cleanup(console.Close)

	var topics []embeddedkafka.Topic
	for _, name := range []string{sensorsTopic, malopsTopic, malwareTopic, policiesTopic} {
		topics = append(topics, embeddedkafka.Topic{Name: name, Partitions: 3}, embeddedkafka.Topic{Name: name + ".dlq"})
	}
	topics = append(topics, embeddedkafka.Topic{Name: stateTopic, Partitions: 3, Compacted: true})
	brokers := kafkatest.NewBroker(t, topics...)

	client, err := cybereason.NewClient(cybereason.Config{
		BaseURL:  console.URL,
		Username: cybereasontest.DefaultUsername,
		Password: func() (string, error) { return cybereasontest.DefaultPassword, nil },
		PageSize: 100,
		// Short waits keep the retry tests quick; the counts are what they check.
		RetryBackoffMin: 10 * time.Millisecond,
		RetryBackoffMax: 100 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(client.CloseIdleConnections)

	writerCfg.Brokers = brokers
	writerCfg.MissingTopicTimeout = 200 * time.Millisecond
	writer, err := sink.NewWriter(writerCfg, nil)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() {
		if err := writer.Close(); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})

	return &rig{tenant: tenant, console: console, brokers: brokers, client: client, writer: writer}
}

func (r *rig) config() source.Config {
	start := r.tenant.OldestAlertTime().Add(-time.Minute)
	return source.Config{
		ConsoleURL:       r.console.URL,
		Tenant:           tenantID,
		SensorsTopic:     sensorsTopic,
		MalopsTopic:      malopsTopic,
		MalwareTopic:     malwareTopic,
		PoliciesTopic:    policiesTopic,
		SensorsInterval:  time.Hour,
		MalopsInterval:   time.Hour,
		MalwareInterval:  time.Hour,
		PoliciesInterval: time.Hour,
		MalopsWindow:     source.Window{Start: start, Overlap: 10 * time.Minute},
		MalwareWindow:    source.Window{Start: start, Overlap: 10 * time.Minute},
	}
}

func (r *rig) stage(t *testing.T, cfg source.Config, client source.Client) *source.Stage {
	t.Helper()
	if client == nil {
		client = r.client
	}
	stage, err := source.New(cfg, client, r.writer, nil)
	if err != nil {
		t.Fatalf("source.New: %v", err)
	}
	return stage
}

func TestCollectSensorsPublishesEverySensor(t *testing.T) {
	r := newRig(t, 250, 0, cybereasontest.Options{})
	stage := r.stage(t, r.config(), nil)

	report, err := stage.CollectSensors(context.Background())
	if err != nil {
		t.Fatalf("CollectSensors: %v", err)
	}
	if report.Pages != 3 || report.Sensors != 250 {
		t.Errorf("report = %d sensors in %d pages, want 250 in 3", report.Sensors, report.Pages)
	}

	msgs := kafkatest.ReadAll(t, r.brokers, sensorsTopic)
	var keys []string
	for _, msg := range msgs {
		keys = append(keys, string(msg.Key))
		event, err := sink.EventFromHeaders(msg.Headers)
		if err != nil {
			t.Fatalf("message %s: %v", msg.Key, err)
		}
		assertEvent(t, event, source.SensorEventType, string(msg.Key), r.console.URL+"/rest/sensors/query")

		var object map[string]any
		if err := json.Unmarshal(msg.Value, &object); err != nil {
			t.Fatalf("message %s value: %v", msg.Key, err)
		}
		if object["sensorId"] != string(msg.Key) {
			t.Errorf("message key %s, value sensorId %v", msg.Key, object["sensorId"])
		}
	}

	want := r.tenant.SensorIDs()
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("published %d sensors, tenant has %d; published keys differ from the tenant's sensor ids", len(keys), len(want))
	}
}

func TestCollectSensorsSameContentSameID(t *testing.T) {
	r := newRig(t, 20, 0, cybereasontest.Options{})
	stage := r.stage(t, r.config(), nil)

	for range 2 {
		if _, err := stage.CollectSensors(context.Background()); err != nil {
			t.Fatalf("CollectSensors: %v", err)
		}
	}

	ids := map[string][]string{}
	for _, msg := range kafkatest.ReadAll(t, r.brokers, sensorsTopic) {
		event, err := sink.EventFromHeaders(msg.Headers)
		if err != nil {
			t.Fatal(err)
		}
		ids[string(msg.Key)] = append(ids[string(msg.Key)], event.ID)
	}
	for key, list := range ids {
		if len(list) != 2 || list[0] != list[1] {
			t.Errorf("sensor %s: event ids %v, want the same id twice", key, list)
		}
	}
}

func TestCollectMalopsMovesCursor(t *testing.T) {
	r := newRig(t, 30, 12, cybereasontest.Options{})
	cfg := r.config()
	stage := r.stage(t, cfg, nil)

	first, err := stage.CollectMalops(context.Background())
	if err != nil {
		t.Fatalf("first CollectMalops: %v", err)
	}
	if first.Malops != 12 {
		t.Errorf("first poll published %d MalOps, want 12", first.Malops)
	}
	if !first.From.Equal(cfg.MalopsWindow.Start) {
		t.Errorf("first window starts at %s, want the configured start %s", first.From, cfg.MalopsWindow.Start)
	}
	assertCursorIsNewestUpdate(t, r.tenant.Malops(), first.Cursor)
	if first.API != "/rest/mmng/v2/malops" {
		t.Errorf("first poll read %q, want the MalOp management API", first.API)
	}

	changes := r.tenant.Advance(time.Now())
	second, err := stage.CollectMalops(context.Background())
	if err != nil {
		t.Fatalf("second CollectMalops: %v", err)
	}
	if want := first.Cursor.Add(-cfg.MalopsWindow.Overlap); !second.From.Equal(want) {
		t.Errorf("second window starts at %s, want cursor less overlap %s", second.From, want)
	}
	if second.Malops < 3 {
		t.Errorf("second poll published %d MalOps, want at least the 3 changed ones (%s)", second.Malops, changes)
	}

	for _, msg := range kafkatest.ReadAll(t, r.brokers, malopsTopic) {
		event, err := sink.EventFromHeaders(msg.Headers)
		if err != nil {
			t.Fatal(err)
		}
		assertEvent(t, event, source.MalopV2EventType, string(msg.Key), r.console.URL+"/rest/mmng/v2/malops")
		if want := strconv.FormatInt(event.Time.UnixMilli(), 10); !strings.HasPrefix(event.ID, string(msg.Key)+"#"+want+"#") {
			t.Errorf("MalOp event id %s does not start with guid#lastUpdateTime (%s)", event.ID, want)
		}
		if strings.Contains(string(msg.Value), "iconBase64") {
			t.Errorf("MalOp %s still carries iconBase64", msg.Key)
		}
	}
}

func TestCollectMalopsFallsBackToInbox(t *testing.T) {
	tests := []struct {
		name   string
		status int
	}{
		{"400", 400},
		{"404", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, 10, 5, cybereasontest.Options{})
			r.console.DropV2(tt.status)
			stage := r.stage(t, r.config(), nil)

			for range 2 {
				report, err := stage.CollectMalops(context.Background())
				if err != nil {
					t.Fatalf("CollectMalops: %v", err)
				}
				if report.API != "/rest/detection/inbox" {
					t.Errorf("poll read %q, want the detection inbox", report.API)
				}
			}

			if got := r.console.Stats().Requests["POST /rest/mmng/v2/malops"]; got != 1 {
				t.Errorf("MalOp management API asked %d times, want once", got)
			}
			for _, msg := range kafkatest.ReadAll(t, r.brokers, malopsTopic) {
				event, err := sink.EventFromHeaders(msg.Headers)
				if err != nil {
					t.Fatal(err)
				}
				assertEvent(t, event, source.MalopEventType, string(msg.Key), r.console.URL+"/rest/detection/inbox")
			}
		})
	}
}

func TestCollectMalopsWithDetails(t *testing.T) {
	r := newRig(t, 20, 8, cybereasontest.Options{})
	cfg := r.config()
	cfg.MalopDetails = true
	stage := r.stage(t, cfg, nil)

	if _, err := stage.CollectMalops(context.Background()); err != nil {
		t.Fatalf("CollectMalops: %v", err)
	}

	endpoints := map[string]int{}
	for _, msg := range kafkatest.ReadAll(t, r.brokers, malopsTopic) {
		event, err := sink.EventFromHeaders(msg.Headers)
		if err != nil {
			t.Fatal(err)
		}
		assertEvent(t, event, source.DetailedMalopEventType, string(msg.Key), r.console.URL+"/rest/mmng/v2/malops")

		var detailed source.DetailedMalop
		if err := json.Unmarshal(msg.Value, &detailed); err != nil {
			t.Fatalf("MalOp %s: %v", msg.Key, err)
		}
		if detailed.MalopType != source.MalopV2EventType || len(detailed.Malop) == 0 || len(detailed.Details) == 0 {
			t.Errorf("MalOp %s: malopType %q, %d bytes of MalOp, %d bytes of details", msg.Key, detailed.MalopType, len(detailed.Malop), len(detailed.Details))
		}
		endpoints[detailed.DetailsEndpoint]++
	}
	if endpoints[source.EDRDetailsEndpoint] == 0 || endpoints[source.EPPDetailsEndpoint] == 0 {
		t.Errorf("details endpoints used %v, want both EDR and EPP", endpoints)
	}
	if got := stage.Stats().MalopDetailErrors; got != 0 {
		t.Errorf("%d detail errors, want 0", got)
	}
}

func TestCollectMalopsWithoutDetailsWhenFetchFails(t *testing.T) {
	r := newRig(t, 20, 4, cybereasontest.Options{})
	cfg := r.config()
	cfg.MalopDetails = true
	// Every details request fails with a status the client does not retry.
	probe := &failingDetails{Client: r.client}
	stage := r.stage(t, cfg, probe)

	report, err := stage.CollectMalops(context.Background())
	if err != nil {
		t.Fatalf("CollectMalops: %v", err)
	}
	if report.Malops != 4 {
		t.Errorf("published %d MalOps, want 4", report.Malops)
	}
	if got := stage.Stats().MalopDetailErrors; got != 4 {
		t.Errorf("%d detail errors, want 4", got)
	}
	for _, msg := range kafkatest.ReadAll(t, r.brokers, malopsTopic) {
		if eventType, _ := sink.HeaderValue(msg.Headers, "ce_type"); eventType != source.MalopV2EventType {
			t.Errorf("MalOp %s has type %q, want the plain MalOp type", msg.Key, eventType)
		}
	}
}

// failingDetails is the real client, except that no MalOp has details.
type failingDetails struct{ source.Client }

func (failingDetails) EDRMalopDetails(context.Context, string) (json.RawMessage, error) {
	return nil, cybereason.ErrMalopNotFound
}

func (failingDetails) EPPMalopDetails(context.Context, string) (json.RawMessage, error) {
	return nil, cybereason.ErrMalopNotFound
}

func TestCollectMalwarePublishesEveryAlert(t *testing.T) {
	r := newRig(t, 20, 2, cybereasontest.Options{})
	stage := r.stage(t, r.config(), nil)

	report, err := stage.CollectMalware(context.Background())
	if err != nil {
		t.Fatalf("CollectMalware: %v", err)
	}
	alerts := r.tenant.Malware()
	if report.Alerts != len(alerts) || len(alerts) == 0 {
		t.Errorf("published %d alerts, tenant has %d", report.Alerts, len(alerts))
	}

	var newest int64
	for _, raw := range alerts {
		var alert struct {
			Timestamp int64 `json:"timestamp"`
		}
		if err := json.Unmarshal(raw, &alert); err != nil {
			t.Fatal(err)
		}
		newest = max(newest, alert.Timestamp)
	}
	if report.Cursor.UnixMilli() != newest {
		t.Errorf("cursor %d, want the newest alert timestamp %d", report.Cursor.UnixMilli(), newest)
	}

	for _, msg := range kafkatest.ReadAll(t, r.brokers, malwareTopic) {
		event, err := sink.EventFromHeaders(msg.Headers)
		if err != nil {
			t.Fatal(err)
		}
		assertEvent(t, event, source.MalwareEventType, string(msg.Key), r.console.URL+"/rest/malware/query")
	}
}

func TestCollectPoliciesPublishesEveryPolicy(t *testing.T) {
	r := newRig(t, 40, 0, cybereasontest.Options{})
	stage := r.stage(t, r.config(), nil)

	count, err := stage.CollectPolicies(context.Background())
	if err != nil {
		t.Fatalf("CollectPolicies: %v", err)
	}
	if want := len(r.tenant.Policies()); count != want || count == 0 {
		t.Errorf("published %d policies, tenant has %d", count, want)
	}
	for _, msg := range kafkatest.ReadAll(t, r.brokers, policiesTopic) {
		event, err := sink.EventFromHeaders(msg.Headers)
		if err != nil {
			t.Fatal(err)
		}
		assertEvent(t, event, source.PolicyEventType, string(msg.Key), r.console.URL+"/rest/policies")
	}
}

// TestCollectAlertsConsoleFaults shows the outcome of each console fault on
// the alert feeds: retried, logged in again, or an error with nothing
// published from the failed response.
func TestCollectAlertsConsoleFaults(t *testing.T) {
	tests := []struct {
		name      string
		inject    func(*cybereasontest.Server)
		wantError string // empty: the poll succeeds
	}{
		{"throttled then served", func(s *cybereasontest.Server) { s.Throttle(1, 0) }, ""},
		{"server error then served", func(s *cybereasontest.Server) { s.FailRequests(1, 503) }, ""},
		{"login page instead of JSON", func(s *cybereasontest.Server) { s.HTMLInsteadOfJSON(1) }, ""},
		{"session expired", func(s *cybereasontest.Server) { s.ExpireSessions() }, ""},
		{"query failed", func(s *cybereasontest.Server) { s.FailEnvelopes(1, cybereason.StatusFailure) }, "FAILURE"},
		{"partial success", func(s *cybereasontest.Server) { s.FailEnvelopes(1, cybereason.StatusPartialSuccess) }, "PARTIAL_SUCCESS"},
		{"truncated JSON", func(s *cybereasontest.Server) { s.TruncateResponses(1) }, "decode"},
		{"role missing", func(s *cybereasontest.Server) { s.FailRequests(1, 403) }, "role"},
	}
	feeds := []struct {
		name    string
		topic   string
		collect func(*source.Stage) error
	}{
		{"malops", malopsTopic, func(s *source.Stage) error { _, err := s.CollectMalops(context.Background()); return err }},
		{"malware", malwareTopic, func(s *source.Stage) error { _, err := s.CollectMalware(context.Background()); return err }},
	}
	for _, feed := range feeds {
		for _, tt := range tests {
			t.Run(feed.name+"/"+tt.name, func(t *testing.T) {
				r := newRig(t, 10, 4, cybereasontest.Options{})
				stage := r.stage(t, r.config(), nil)
				if err := r.client.Login(context.Background()); err != nil {
					t.Fatal(err)
				}
				tt.inject(r.console)

				err := feed.collect(stage)
				published := len(kafkatest.ReadAll(t, r.brokers, feed.topic))

				if tt.wantError == "" {
					if err != nil {
						t.Fatalf("collect: %v", err)
					}
					if published == 0 {
						t.Error("nothing published after the fault was absorbed")
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Errorf("collect error = %v, want one containing %q", err, tt.wantError)
				}
				if published != 0 {
					t.Errorf("%d messages published from a failed answer, want none", published)
				}
			})
		}
	}
}

func TestCollectMalopsKeepsCursorWhenPublishFails(t *testing.T) {
	r := newRig(t, 10, 5, cybereasontest.Options{})
	cfg := r.config()
	cfg.MalopsTopic = "topic.that.does.not.exist"
	stage := r.stage(t, cfg, nil)

	first, err := stage.CollectMalops(context.Background())
	if err == nil {
		t.Fatal("CollectMalops to a missing topic succeeded, want an error")
	}
	second, err := stage.CollectMalops(context.Background())
	if err == nil {
		t.Fatal("second CollectMalops to a missing topic succeeded, want an error")
	}
	if !second.From.Equal(first.From) {
		t.Errorf("window start moved from %s to %s after a failed publish", first.From, second.From)
	}
	if got := stage.Stats().MalopPolls; got != 0 {
		t.Errorf("complete MalOp polls = %d, want 0", got)
	}
}

func TestCollectMalopsDeadLettersOversizedMalops(t *testing.T) {
	// Every generated MalOp is larger than 1 KiB, so the writer rejects each.
	r := newRigWithWriter(t, 10, 4, cybereasontest.Options{}, sink.Config{BatchBytes: 1024})
	stage := r.stage(t, r.config(), nil)

	report, err := stage.CollectMalops(context.Background())
	if err != nil {
		t.Fatalf("CollectMalops: %v", err)
	}
	assertCursorIsNewestUpdate(t, r.tenant.Malops(), report.Cursor)
	if got := stage.Stats().DeadLettered; got != 4 {
		t.Errorf("dead-lettered %d MalOps, want 4", got)
	}

	letters := kafkatest.ReadAll(t, r.brokers, malopsTopic+".dlq")
	if len(letters) != 4 {
		t.Fatalf("dead-letter topic has %d messages, want 4", len(letters))
	}
	for _, letter := range letters {
		if letter.Value != nil {
			t.Errorf("dead letter %s kept its %d-byte value, want none", letter.Key, len(letter.Value))
		}
		reason, _ := sink.HeaderValue(letter.Headers, "dlq_error")
		if !strings.Contains(reason, "Message Size Too Large") {
			t.Errorf("dead letter %s reason %q does not say the message is too large", letter.Key, reason)
		}
		if topic, _ := sink.HeaderValue(letter.Headers, "dlq_topic"); topic != malopsTopic {
			t.Errorf("dead letter %s dlq_topic %q, want %q", letter.Key, topic, malopsTopic)
		}
		if _, err := sink.EventFromHeaders(letter.Headers); err != nil {
			t.Errorf("dead letter %s lost its CloudEvents headers: %v", letter.Key, err)
		}
	}
}

func TestCollectMalopsConsoleClockAhead(t *testing.T) {
	r := newRig(t, 10, 4, cybereasontest.Options{})
	cfg := r.config()
	// This host's clock runs two hours behind the console's.
	cfg.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	stage := r.stage(t, cfg, nil)

	if _, err := stage.CollectMalops(context.Background()); err != nil {
		t.Fatalf("first CollectMalops: %v", err)
	}
	r.tenant.Advance(time.Now())

	report, err := stage.CollectMalops(context.Background())
	if err != nil {
		t.Fatalf("CollectMalops with the cursor past this host's clock: %v", err)
	}
	if !report.From.Before(report.To) {
		t.Errorf("window %s to %s ends before it starts", report.From, report.To)
	}
}

func TestRunCollectsBothFeedsAtStart(t *testing.T) {
	r := newRig(t, 40, 4, cybereasontest.Options{})
	stage := r.stage(t, r.config(), nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage.Run(ctx, 10*time.Second) }()

	kafkatest.WaitFor(t, func() bool {
		stats := stage.Stats()
		return stats.Inventories == 1 && stats.MalopPolls == 1 && stats.MalwarePolls == 1 && stats.PolicyPolls == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	stats := stage.Stats()
	if stats.SensorsPublished != 40 || stats.MalopsPublished != 4 {
		t.Errorf("published %d sensors and %d MalOps, want 40 and 4", stats.SensorsPublished, stats.MalopsPublished)
	}
}

// overlapProbe counts how many sensor inventories run at the same time.
type overlapProbe struct {
	source.Client
	active, max atomic.Int32
}

func (p *overlapProbe) ReadSensorInventory(ctx context.Context, fn func(cybereason.SensorPage) error) (cybereason.InventoryCheck, error) {
	n := p.active.Add(1)
	defer p.active.Add(-1)
	for {
		current := p.max.Load()
		if n <= current || p.max.CompareAndSwap(current, n) {
			break
		}
	}
	return p.Client.ReadSensorInventory(ctx, fn)
}

func TestRunNeverOverlapsAnInventory(t *testing.T) {
	// Three pages of 50 ms each make one inventory last far longer than the
	// 5 ms interval, so every start while one runs must be skipped.
	r := newRig(t, 300, 0, cybereasontest.Options{PageDelay: 50 * time.Millisecond})
	cfg := r.config()
	cfg.SensorsInterval = 5 * time.Millisecond
	probe := &overlapProbe{Client: r.client}
	stage := r.stage(t, cfg, probe)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage.Run(ctx, 10*time.Second) }()

	kafkatest.WaitFor(t, func() bool { return stage.Stats().Inventories >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	if got := probe.max.Load(); got != 1 {
		t.Errorf("at most %d inventories ran at once, want 1", got)
	}
}

func TestNewNamesEveryBadSetting(t *testing.T) {
	r := newRig(t, 1, 0, cybereasontest.Options{})
	cfg := source.Config{MalopsWindow: source.Window{Overlap: -time.Second}}

	_, err := source.New(cfg, r.client, r.writer, nil)
	if err == nil {
		t.Fatal("New with an empty config succeeded")
	}
	for _, name := range []string{"ConsoleURL", "Tenant", "sensors topic", "malops topic", "malware topic", "policies topic",
		"sensors interval", "malops interval", "malware interval", "policies interval", "malops window: Lookback", "malops window: Overlap", "malware window: Lookback"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func assertEvent(t *testing.T, event sink.Event, eventType, key, eventSource string) {
	t.Helper()
	if event.Type != eventType {
		t.Errorf("event type %q, want %q", event.Type, eventType)
	}
	if event.Subject != key {
		t.Errorf("event subject %q, want the key %q", event.Subject, key)
	}
	if event.Tenant != tenantID {
		t.Errorf("event tenant %q, want %q", event.Tenant, tenantID)
	}
	if event.Source != eventSource {
		t.Errorf("event source %q, want %q", event.Source, eventSource)
	}
	if !strings.HasPrefix(event.ID, key+"#") {
		t.Errorf("event id %q does not start with the key", event.ID)
	}
}

func assertCursorIsNewestUpdate(t *testing.T, malops []json.RawMessage, cursor time.Time) {
	t.Helper()
	var newest int64
	for _, raw := range malops {
		var malop struct {
			LastUpdateTime int64 `json:"lastUpdateTime"`
		}
		if err := json.Unmarshal(raw, &malop); err != nil {
			t.Fatal(err)
		}
		newest = max(newest, malop.LastUpdateTime)
	}
	if cursor.UnixMilli() != newest {
		t.Errorf("cursor %d, want the newest lastUpdateTime %d", cursor.UnixMilli(), newest)
	}
}

// oneInvalidMalop is the real client, except that the inbox and the MalOp
// management API add a MalOp the client could not read.
type oneInvalidMalop struct{ source.Client }

func (c oneInvalidMalop) MalopsV2(ctx context.Context, from, to time.Time) ([]cybereason.Malop, error) {
	malops, err := c.Client.MalopsV2(ctx, from, to)
	bad := cybereason.Malop{Raw: []byte(`{"guid":"broken","lastUpdateTime":"soon"}`), Invalid: errors.New("MalOp broken: lastUpdateTime is not a number")}
	return append(malops, bad), err
}

func TestCollectMalopsDeadLettersUnreadableMalop(t *testing.T) {
	r := newRig(t, 10, 3, cybereasontest.Options{})
	stage := r.stage(t, r.config(), oneInvalidMalop{Client: r.client})

	report, err := stage.CollectMalops(context.Background())
	if err != nil {
		t.Fatalf("CollectMalops: %v", err)
	}
	assertCursorIsNewestUpdate(t, r.tenant.Malops(), report.Cursor)

	if got := len(kafkatest.ReadAll(t, r.brokers, malopsTopic)); got != 3 {
		t.Errorf("%d MalOps published, want the 3 readable ones", got)
	}
	letters := kafkatest.ReadAll(t, r.brokers, malopsTopic+".dlq")
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	if reason, _ := sink.HeaderValue(letters[0].Headers, "dlq_error"); !strings.Contains(reason, "lastUpdateTime is not a number") {
		t.Errorf("dead letter reason %q does not say what was wrong", reason)
	}
	if string(letters[0].Value) != `{"guid":"broken","lastUpdateTime":"soon"}` {
		t.Errorf("dead letter value %s, want the object as returned", letters[0].Value)
	}
}

// oneLargeInvalidMalop is the real client, except that the MalOp management
// API adds a MalOp the client could not read, and that is larger than the
// broker accepts.
type oneLargeInvalidMalop struct{ source.Client }

func (c oneLargeInvalidMalop) MalopsV2(ctx context.Context, from, to time.Time) ([]cybereason.Malop, error) {
	malops, err := c.Client.MalopsV2(ctx, from, to)
	raw := `{"guid":"broken","lastUpdateTime":"soon","description":"` + strings.Repeat("x", sink.DefaultBatchBytes) + `"}`
	bad := cybereason.Malop{Raw: []byte(raw), Invalid: errors.New("MalOp broken: lastUpdateTime is not a number")}
	return append(malops, bad), err
}

func TestCollectMalopsDeadLettersLargeUnreadableMalop(t *testing.T) {
	r := newRig(t, 10, 3, cybereasontest.Options{})
	stage := r.stage(t, r.config(), oneLargeInvalidMalop{Client: r.client})

	report, err := stage.CollectMalops(context.Background())
	if err != nil {
		t.Fatalf("CollectMalops: %v", err)
	}
	assertCursorIsNewestUpdate(t, r.tenant.Malops(), report.Cursor)

	if got := len(kafkatest.ReadAll(t, r.brokers, malopsTopic)); got != 3 {
		t.Errorf("%d MalOps published, want the 3 readable ones", got)
	}
	letters := kafkatest.ReadAll(t, r.brokers, malopsTopic+".dlq")
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	if len(letters[0].Value) != 0 {
		t.Errorf("dead letter has a %d-byte value, want none", len(letters[0].Value))
	}
	reason, _ := sink.HeaderValue(letters[0].Headers, "dlq_error")
	if !strings.Contains(reason, "lastUpdateTime is not a number") {
		t.Errorf("dead letter reason %q does not say what was wrong with the object", reason)
	}
	if !strings.Contains(reason, "value omitted") || !strings.Contains(reason, "limit") {
		t.Errorf("dead letter reason %q does not say why the value is missing", reason)
	}
	if topic, _ := sink.HeaderValue(letters[0].Headers, "dlq_topic"); topic != malopsTopic {
		t.Errorf("dead letter dlq_topic %q, want %q", topic, malopsTopic)
	}
}

func TestRunStopsInventoryWhenStopped(t *testing.T) {
	// Ten pages of 200ms each: the stop comes after the first page.
	r := newRig(t, 1000, 0, cybereasontest.Options{PageDelay: 200 * time.Millisecond})
	cfg := r.config()
	cfg.Feeds = []string{source.FeedSensors}
	stage := r.stage(t, cfg, nil)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stage.Run(ctx, 10*time.Second) }()
	kafkatest.WaitFor(t, func() bool { return len(r.console.Stats().SensorPages) >= 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after the stop: %v, want nil", err)
		}
	case <-time.After(kafkatest.Timeout):
		t.Fatal("Run did not return after the stop")
	}

	if pages := len(r.console.Stats().SensorPages); pages >= 10 {
		t.Errorf("console served %d sensors pages, want the inventory stopped before its 10th", pages)
	}
	if stats := stage.Stats(); stats.Inventories != 0 {
		t.Errorf("%d inventories complete after a stop in the first one, want 0", stats.Inventories)
	}
}
