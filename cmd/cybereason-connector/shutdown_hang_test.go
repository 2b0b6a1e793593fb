package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// TestRunStopsWithinShutdownTimeoutWhileKafkaHangs leaves one kind of Kafka
// request unanswered, or closes the broker, while the connector moves an
// inventory through its stages, then ends the command's context as SIGTERM
// does. Whatever Kafka leaves hanging, the command must return within
// SHUTDOWN_TIMEOUT plus the logout's second and some slack for a loaded
// host, and TestMain checks that no goroutine outlives it. Then Kafka responds
// again, and a second run of enrich and dedupe only, without the source
// collecting again, must publish an asset for every raw sensor that the first
// run published, so nothing the first run abandoned is lost.
func TestRunStopsWithinShutdownTimeoutWhileKafkaHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("each case waits for a shutdown timeout")
	}
	tests := []hangCase{
		{name: "produce", hang: int16(kmsg.Produce), writesAbandoned: true},
		{name: "offset commit", hang: int16(kmsg.OffsetCommit), groupWaits: true},
		{name: "leave group", hang: int16(kmsg.LeaveGroup), atStop: true, groupWaits: true},
		{name: "fetch", hang: int16(kmsg.Fetch)},
		{name: "metadata", hang: int16(kmsg.Metadata)},
		{name: "heartbeat", hang: int16(kmsg.Heartbeat), groupWaits: true},
		{name: "find coordinator", hang: int16(kmsg.FindCoordinator), atStop: true, groupWaits: true},
		{name: "join group", hang: int16(kmsg.JoinGroup), fromStart: true, groupWaits: true},
		{name: "sync group", hang: int16(kmsg.SyncGroup), fromStart: true, groupWaits: true},
		{name: "metadata from start", hang: int16(kmsg.Metadata), fromStart: true},
		{name: "fetch from start", hang: int16(kmsg.Fetch), fromStart: true},
		{name: "list offsets from start", hang: int16(kmsg.ListOffsets), fromStart: true},
		{name: "broker closed", hang: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stopWhileKafkaHangs(t, tt)
		})
	}
}

// hangCase is one case of TestRunStopsWithinShutdownTimeoutWhileKafkaHangs.
type hangCase struct {
	name string
	// hang is the request key left unanswered; -1 closes the broker.
	hang int16
	// fromStart leaves the requests unanswered before the command
	// starts, instead of after the first assets are published.
	fromStart bool
	// atStop marks a request sent only on the way out, so the stop
	// does not wait for one to be left unanswered.
	atStop bool
	// groupWaits marks a request that kafka-go's consumer group
	// waits for without a context, so that the connector must close
	// its connection when the shutdown timeout ends. Other cases may
	// close one too.
	groupWaits bool
	// writesAbandoned marks a case whose writes are in flight at the stop,
	// so that a stage must abandon its batch and the connector must close
	// the connections of the writes when the shutdown timeout ends.
	writesAbandoned bool
}

// stopWhileKafkaHangs runs one case of
// TestRunStopsWithinShutdownTimeoutWhileKafkaHangs.
func stopWhileKafkaHangs(t *testing.T, tt hangCase) {
	t.Helper()
	key, fromStart, atStop := tt.hang, tt.fromStart, tt.atStop
	const (
		shutdownTimeout = 3 * time.Second
		// allowed covers the logout's second and a loaded host.
		allowed = shutdownTimeout + 4*time.Second
		sensors = 1000
	)
	console := cybereasontest.NewServer(cybereasontest.GenerateTenant(5, sensors, 2, time.Now()), cybereasontest.Options{})
	defer console.Close()
	broker := kafkatest.StartBroker(t, connectorTopics(t, 2)...)
	brokers := broker.Addrs()
	env := runEnv(console.URL, brokers, shutdownTimeout)
	// A member that could not leave its group is removed after the session
	// timeout, which the second run then waits for.
	env["KAFKA_GROUP_SESSION_TIMEOUT"] = "6s"

	var (
		unanswered atomic.Int64
		hanging    atomic.Bool
	)
	hanging.Store(true)
	if key >= 0 && fromStart {
		leaveUnanswered(broker, key, &hanging, &unanswered)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuilder
	exited := startRun(ctx, env, &stdout, &stderr)

	switch {
	case key < 0:
		waitForAssets(t, brokers, exited, &stderr)
		broker.Cluster().Close()
	case fromStart:
		kafkatest.WaitFor(t, func() bool { return unanswered.Load() > 0 })
	case atStop:
		waitForAssets(t, brokers, exited, &stderr)
		leaveUnanswered(broker, key, &hanging, &unanswered)
	default:
		waitForAssets(t, brokers, exited, &stderr)
		leaveUnanswered(broker, key, &hanging, &unanswered)
		kafkatest.WaitFor(t, func() bool { return unanswered.Load() > 0 })
	}
	cancel()
	stopped := time.Now()

	select {
	case code := <-exited:
		took := time.Since(stopped)
		t.Logf("run returned %s after the stop, exit code %d, %d requests left unanswered", took.Round(time.Millisecond), code, unanswered.Load())
		if code != 0 {
			t.Errorf("exit code %d after the stop, want 0; stderr:\n%s", code, stderr.String())
		}
		if took > allowed {
			t.Errorf("run returned %s after the stop, more than SHUTDOWN_TIMEOUT %s plus slack (%s); stderr:\n%s", took.Round(time.Millisecond), shutdownTimeout, allowed, stderr.String())
		}
	case <-time.After(kafkatest.Timeout):
		t.Fatalf("run did not return within %s of the stop; stderr:\n%s", kafkatest.Timeout, stderr.String())
	}
	// Without closing them, a join waits up to the rebalance timeout plus 5s,
	// and a commit, heartbeat or leave up to kafka-go's 5s group timeout.
	abandoned := strings.Contains(stderr.String(), "kafka group requests still waiting at the end of the shutdown timeout")
	if tt.groupWaits && !abandoned {
		t.Errorf("the connector did not close the group connections at the end of the shutdown timeout; stderr:\n%s", stderr.String())
	}
	if tt.writesAbandoned {
		checkWritesAbandoned(t, stderr.String())
	}
	if key < 0 {
		return // the closed broker cannot serve a second run
	}
	hanging.Store(false)

	var rawSensors []string
	for key := range distinctKeys(t, brokers, "cybereason.raw.sensors") {
		if !strings.Contains(key, "/sensors/") { // not an inventory end event
			rawSensors = append(rawSensors, key)
		}
	}
	switch {
	case len(rawSensors) == 0 && fromStart:
		return // stopped before the source published anything to lose
	case len(rawSensors) == 0:
		t.Fatal("the first run published no raw sensor")
	}

	tenant := strings.TrimPrefix(console.URL, "http://")
	tenant = tenant[:strings.LastIndex(tenant, ":")]
	unpublished := func() int {
		assets := distinctKeys(t, brokers, "oversoc.assets")
		count := 0
		for _, sensorID := range rawSensors {
			if !assets["cybereason:"+tenant+":"+sensorID] {
				count++
			}
		}
		return count
	}
	missingAfterStop := unpublished()

	env["STAGES"] = "enrich,dedupe"
	restarted, stopRestarted := context.WithCancel(context.Background())
	defer stopRestarted()
	var restartedStderr syncBuilder
	restartedExit := startRun(restarted, env, &stdout, &restartedStderr)
	defer func() {
		stopRestarted()
		<-restartedExit
	}()

	kafkatest.WaitFor(t, func() bool { return unpublished() == 0 })
	t.Logf("the second run published the assets of the %d raw sensors, %d of them missing after the first run", len(rawSensors), missingAfterStop)
}

// waitForAssets waits until the connector published its first assets, and
// fails the test when the command exited before.
func waitForAssets(t *testing.T, brokers []string, exited <-chan int, stderr *syncBuilder) {
	t.Helper()
	kafkatest.WaitFor(t, func() bool {
		select {
		case code := <-exited:
			t.Fatalf("run exited with code %d before the assets were published; stderr:\n%s", code, stderr.String())
		default:
		}
		return len(kafkatest.ReadAll(t, brokers, "oversoc.assets")) > 0
	})
}

// leaveUnanswered makes the broker drop every later request with key while
// hanging is set, and counts them in unanswered.
func leaveUnanswered(broker *embeddedkafka.Broker, key int16, hanging *atomic.Bool, unanswered *atomic.Int64) {
	cluster := broker.Cluster()
	cluster.ControlKey(key, func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !hanging.Load() {
			return nil, nil, false
		}
		unanswered.Add(1)
		return nil, nil, true // no response: the request waits until the client gives up
	})
}

// checkWritesAbandoned checks the log of a stop with writes in flight: a
// stage abandoned its batch, and the connector closed the connections of the
// writes at the end of the shutdown timeout. Without that, the writer's Close
// waits for them until its 10s write timeout.
func checkWritesAbandoned(t *testing.T, logged string) {
	t.Helper()
	if !strings.Contains(logged, "batch abandoned because the runner is stopping") {
		t.Errorf("no stage logged an abandoned batch, so no write was in flight at the stop:\n%s", logged)
	}
	if !strings.Contains(logged, "kafka writes still in flight at the end of the shutdown timeout") {
		t.Errorf("the connector did not close the connections of the writes in flight at the deadline:\n%s", logged)
	}
	if !strings.Contains(logged, `"msg":"connector stopped"`) {
		t.Errorf("log lacks the connector stopped line:\n%s", logged)
	}
}
