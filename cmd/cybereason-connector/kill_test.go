package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sethvargo/go-envconfig"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/sink"
)

// Settings of the hard-stop test. The sensors page size is a fifth of the
// default, so that the inventory takes 15 pages of at least 1s each, and a
// kill after the first page always falls in the middle of it.
const (
	killSensors   = 3000
	killPageSize  = 200
	killPartition = 3
	// killDeadline only guards against a hung test. A build of both
	// binaries, a session timeout and two inventories of at least 15s each
	// take about a minute on a loaded 2-core machine.
	killDeadline = 5 * time.Minute
)

// TestSIGKILLDuringInventoryLosesNothing runs the cybereason-connector and
// cybereason-sim binaries against a broker in the test process, kills the
// connector with SIGKILL once the first sensors page is on the raw topic,
// and starts it again. Every sensor must then reach oversoc.assets, no
// (key, ce_id) pair may appear twice on a final topic, and no dead letter
// may be written. A SIGTERM at the end must stop the connector with exit
// status 0.
func TestSIGKILLDuringInventoryLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and runs two sensor inventories of at least 15s each; skipped with -short")
	}
	bin := buildBinaries(t)
	broker := startKillBroker(t)
	consoleURL := startSim(t, filepath.Join(bin, "cybereason-sim"))
	env := connectorEnv(consoleURL, broker.Addrs())
	connectorPath := filepath.Join(bin, "cybereason-connector")

	first := startConnector(t, connectorPath, env, "first")
	waitUntil(t, "the first sensors page is on cybereason.raw.sensors", func() bool {
		return messageCount(broker, "cybereason.raw.sensors") >= killPageSize
	}, first)
	first.kill(t)
	if published := messageCount(broker, "cybereason.raw.sensors"); published >= killSensors {
		t.Fatalf("the inventory had ended (%d raw sensors) when the connector was killed; the test needs a kill in the middle of it", published)
	}
	t.Logf("connector killed after %d raw sensors", messageCount(broker, "cybereason.raw.sensors"))

	second := startConnector(t, connectorPath, env, "second")
	waitUntil(t, fmt.Sprintf("%d distinct keys on oversoc.assets", killSensors), func() bool {
		return len(distinctKeys(t, broker.Addrs(), "oversoc.assets")) >= killSensors
	}, second)
	second.stop(t)
	t.Logf("after the restart: %d raw sensors, %d normalized assets, %d assets",
		messageCount(broker, "cybereason.raw.sensors"), messageCount(broker, "oversoc.normalized.assets"), messageCount(broker, "oversoc.assets"))

	if got := len(distinctKeys(t, broker.Addrs(), "oversoc.assets")); got != killSensors {
		t.Errorf("oversoc.assets has %d distinct keys, want %d", got, killSensors)
	}
	for _, topic := range []string{"oversoc.assets", "oversoc.findings"} {
		assertNoRepeatedEvent(t, broker.Addrs(), topic)
	}
	for _, topic := range killTopics(t) {
		if !strings.HasSuffix(topic.Name, ".dlq") {
			continue
		}
		if n := messageCount(broker, topic.Name); n != 0 {
			t.Errorf("%s has %d dead letters, want none", topic.Name, n)
		}
	}
}

// buildBinaries builds cybereason-connector and cybereason-sim, without the
// race detector, into a temporary directory and returns that directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go command is not in PATH, so the binaries cannot be built: %v", err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), killDeadline)
	defer cancel()
	build := exec.CommandContext(ctx, goTool, "build", "-o", dir+string(filepath.Separator),
		"github.com/oversoc/cybereason-connector/cmd/cybereason-connector",
		"github.com/oversoc/cybereason-connector/cmd/cybereason-sim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// killTopics lists the topics of the hard-stop tests: connectorTopics
// with killPartition partitions.
func killTopics(t *testing.T) []embeddedkafka.Topic {
	t.Helper()
	return connectorTopics(t, killPartition)
}

// connectorTopics lists every topic `run` checks at start with the defaults
// of connectorEnv, as an operator would create them: the state topic
// compacted, dead-letter topics with one partition, and the others with
// the given count of partitions.
func connectorTopics(t *testing.T, partitions int) []embeddedkafka.Topic {
	t.Helper()
	env := make(map[string]string)
	for _, setting := range connectorEnv("http://127.0.0.1:1", []string{"127.0.0.1:1"}) {
		name, value, _ := strings.Cut(setting, "=")
		env[name] = value
	}
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
	if err != nil {
		t.Fatalf("load the connector settings of the test: %v", err)
	}

	var topics []embeddedkafka.Topic
	for _, name := range connector.RequiredTopics(cfg) {
		switch {
		case name == cfg.Kafka.Topics.State:
			topics = append(topics, embeddedkafka.Topic{Name: name, Compacted: true})
		case strings.HasSuffix(name, ".dlq"):
			topics = append(topics, embeddedkafka.Topic{Name: name})
		default:
			topics = append(topics, embeddedkafka.Topic{Name: name, Partitions: partitions})
		}
	}
	return topics
}

// startKillBroker starts a broker in the test process. For the connector
// processes it is an external broker, which outlives them.
func startKillBroker(t *testing.T) *embeddedkafka.Broker {
	t.Helper()
	broker, err := embeddedkafka.Start(embeddedkafka.Config{Topics: killTopics(t)}, nil)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(broker.Close)
	return broker
}

// servingLine is the line cybereason-sim prints once it listens.
var servingLine = regexp.MustCompile(`serving .* at (http://\S+)`)

// startSim starts cybereason-sim on a free loopback port and returns its URL.
func startSim(t *testing.T, path string) string {
	t.Helper()
	sim := exec.Command(path, "--addr", "127.0.0.1:0", "--user", "reader@acme.example", "--password", "sim pass",
		"--sensors", fmt.Sprint(killSensors), "--page-delay", "1s")
	sim.Stderr = logFile(t, "cybereason-sim.log")
	sim.SysProcAttr = killWithParent()
	stdout, err := sim.StdoutPipe()
	if err != nil {
		t.Fatalf("cybereason-sim stdout: %v", err)
	}
	if err := sim.Start(); err != nil {
		t.Fatalf("start cybereason-sim: %v", err)
	}
	t.Cleanup(func() {
		_ = sim.Process.Kill()
		_ = sim.Wait()
	})

	urls := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if match := servingLine.FindStringSubmatch(scanner.Text()); match != nil {
				urls <- match[1]
				break
			}
		}
		close(urls)
		_, _ = io.Copy(io.Discard, stdout) // until the process exits
	}()
	select {
	case url, ok := <-urls:
		if !ok {
			t.Fatal("cybereason-sim exited without printing the URL it serves")
		}
		return url
	case <-time.After(killDeadline):
		t.Fatalf("cybereason-sim printed no URL within %s", killDeadline)
		return ""
	}
}

// connectorEnv is the whole environment of the connector: nothing is
// inherited from the test's environment. The session timeout is the
// smallest a Kafka broker accepts by default, so that the restarted
// connector waits at most 6s for its killed group members to be removed.
func connectorEnv(consoleURL string, brokers []string) []string {
	return []string{
		"CYBEREASON_URL=" + consoleURL,
		"CYBEREASON_USERNAME=reader@acme.example",
		"CYBEREASON_PASSWORD=sim pass",
		"CYBEREASON_TENANT=sim.example",
		fmt.Sprintf("CYBEREASON_PAGE_SIZE=%d", killPageSize),
		"KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"KAFKA_GROUP_SESSION_TIMEOUT=6s",
		"KAFKA_GROUP_REBALANCE_TIMEOUT=10s",
		"SOURCE_MALOPS_LOOKBACK=2160h",
		"SOURCE_MALWARE_LOOKBACK=2160h",
		"SHUTDOWN_TIMEOUT=10s",
		"METRICS_ADDR=off",
		"LOG_FORMAT=json",
	}
}

// connectorProcess is a running cybereason-connector.
type connectorProcess struct {
	cmd     *exec.Cmd
	name    string
	logPath string // standard output and error
	exited  chan struct{}
	err     error // set when exited is closed
}

// startConnector starts `cybereason-connector run`, logging to a file named
// after name, and kills it when the test ends unless it exited before.
func startConnector(t *testing.T, path string, env []string, name string) *connectorProcess {
	t.Helper()
	cmd := exec.Command(path, "run")
	cmd.Env = env
	cmd.SysProcAttr = killWithParent()
	log := logFile(t, "connector-"+name+".log")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s connector: %v", name, err)
	}

	p := &connectorProcess{cmd: cmd, name: name, logPath: log.Name(), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// kill sends SIGKILL and waits for the process to end.
func (p *connectorProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s connector: %v", p.name, err)
	}
	p.wait(t)
}

// stop sends SIGTERM and fails the test unless the process exits with
// status 0.
func (p *connectorProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM to %s connector: %v", p.name, err)
	}
	p.wait(t)
	if p.err != nil {
		t.Fatalf("%s connector after SIGTERM: %v, want exit status 0 (see its log in the test's temporary directory)", p.name, p.err)
	}
}

func (p *connectorProcess) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(killDeadline):
		t.Fatalf("%s connector did not exit within %s", p.name, killDeadline)
	}
}

// logFile creates a file for a subprocess's output. When the test fails, the
// file's last lines are written to the test log.
func logFile(t *testing.T, name string) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	file, err := os.Create(path)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	t.Cleanup(func() {
		_ = file.Close()
		if t.Failed() {
			logTail(t, path)
		}
	})
	return file
}

// logTail writes the last 40 lines of the file at path to the test log.
func logTail(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Logf("read %s: %v", path, err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	t.Logf("last lines of %s:\n%s", filepath.Base(path), strings.Join(lines[max(0, len(lines)-40):], "\n"))
}

// waitUntil polls cond every 250ms until it returns true. It fails the test
// when that takes longer than killDeadline, or at once when one of the
// running connectors exits, because cond may then never become true.
func waitUntil(t *testing.T, what string, cond func() bool, running ...*connectorProcess) {
	t.Helper()
	deadline := time.Now().Add(killDeadline)
	for !cond() {
		for _, p := range running {
			select {
			case <-p.exited:
				t.Fatalf("%s connector exited (%v) while the test waited for %s", p.name, p.err, what)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", killDeadline, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// messageCount returns the count of offsets of topic: the sum of its
// partitions' high watermarks minus their log start offsets.
func messageCount(broker *embeddedkafka.Broker, topic string) int64 {
	var n int64
	for _, p := range broker.Cluster().PartitionInfos(topic) {
		n += p.HighWatermark - p.LogStartOffset
	}
	return n
}

// readTopic returns every message of topic up to its high watermark.
func readTopic(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, err := embeddedkafka.ReadAll(ctx, brokers, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return msgs
}

func distinctKeys(t *testing.T, brokers []string, topic string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	for _, msg := range readTopic(t, brokers, topic) {
		keys[string(msg.Key)] = true
	}
	return keys
}

// assertNoRepeatedEvent fails the test for every (key, ce_id) pair that
// appears more than once on topic, and for every record without a ce_id.
func assertNoRepeatedEvent(t *testing.T, brokers []string, topic string) {
	t.Helper()
	seen := map[[2]string]int64{}
	for _, msg := range readTopic(t, brokers, topic) {
		id, ok := sink.HeaderValue(msg.Headers, sink.HeaderID)
		if !ok {
			t.Errorf("%s: record %s at offset %d has no %s header", topic, msg.Key, msg.Offset, sink.HeaderID)
			continue
		}
		pair := [2]string{string(msg.Key), id}
		if offset, repeated := seen[pair]; repeated {
			t.Errorf("%s: key %s with %s %s at offsets %d and %d", topic, msg.Key, sink.HeaderID, id, offset, msg.Offset)
		}
		seen[pair] = msg.Offset
	}
}
