package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// Settings of the conservation test: an inventory of 6 pages of at least 1s
// each, so that a kill in any round can fall in the middle of it.
const (
	conservationSensors  = 300
	conservationMalops   = 15
	conservationPageSize = 50
	conservationRounds   = 4
)

// TestConservationUnderRepeatedKills runs the connector binary against a
// fake console and a broker in the test process, and kills it with SIGKILL
// at a random point of each round: during the sensor inventory, or while
// enrich and dedupe publish. The console's tenant changes between rounds.
// A last run collects every feed, catches up and is stopped with SIGTERM.
// The final topics must then hold the latest state of every entity, with
// no (key, ce_id) pair twice and no content of a key twice in a row, and
// the dead-letter topics must be empty.
func TestConservationUnderRepeatedKills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the connector and runs several sensor inventories of at least 6s each; skipped with -short")
	}
	bin := buildBinaries(t)
	broker := startKillBroker(t)
	tenant := cybereasontest.GenerateTenant(21, conservationSensors, conservationMalops, time.Now())
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{
		Username:  "reader@acme.example",
		Password:  "sim pass",
		PageDelay: time.Second,
	})
	t.Cleanup(console.Close)
	env := append(connectorEnv(console.URL, broker.Addrs()), fmt.Sprintf("CYBEREASON_PAGE_SIZE=%d", conservationPageSize))
	connectorPath := filepath.Join(bin, "cybereason-connector")

	dead := removeDeadMembers(t, broker.Addrs())
	rng := rand.New(rand.NewPCG(21, 4))
	joining := 0
	for round := range conservationRounds {
		process := startConnector(t, connectorPath, env, fmt.Sprintf("round-%d", round))
		waitForKillPoint(t, broker, rng, round, process)
		process.kill(t)
		t.Logf("round %d: killed with %d raw sensors, %d normalized assets and %d assets on the topics", round,
			messageCount(broker, "cybereason.raw.sensors"), messageCount(broker, "oversoc.normalized.assets"),
			messageCount(broker, "oversoc.assets"))
		if stages := stagesJoining(t, process); len(stages) > 0 {
			joining++
			t.Logf("round %d: killed while %v had no partitions assigned yet", round, stages)
		}
		recordDeadMembers(t, dead)
		tenant.Advance(time.Now())
	}
	t.Logf("%d of %d kills landed while a stage was joining its consumer group", joining, conservationRounds)

	last := startConnector(t, connectorPath, env, "last")
	waitUntil(t, "the last run to collect every feed", func() bool {
		return logContainsAll(t, last.logPath, "sensor inventory complete", "malop poll complete", "malware poll complete", "policy poll complete")
	}, last)
	waitUntil(t, "enrich and dedupe to commit every input", func() bool {
		return groupLag(t, broker.Addrs(), "cybereason-connector-enrich", "cybereason.raw.sensors", "cybereason.raw.malops", "cybereason.raw.malware") == 0 &&
			groupLag(t, broker.Addrs(), "cybereason-connector-dedupe", "oversoc.normalized.assets", "oversoc.normalized.findings") == 0
	}, last)
	last.stop(t)

	removed := checkFinalTopic(t, broker.Addrs(), "oversoc.normalized.assets", "oversoc.assets", schemas.KindAsset)
	if tombstoned := checkFinalTopic(t, broker.Addrs(), "oversoc.normalized.findings", "oversoc.findings", schemas.KindFinding); len(tombstoned) > 0 {
		t.Errorf("oversoc.findings ends in a tombstone for %d keys, want none", len(tombstoned))
	}
	assertEveryEntityPresent(t, broker.Addrs(), tenant, removed)
	assertMalopsUpToDate(t, broker.Addrs(), tenant)
	for _, topic := range killTopics(t) {
		if n := messageCount(broker, topic.Name); strings.HasSuffix(topic.Name, ".dlq") && n != 0 {
			t.Errorf("%s has %d dead letters, want none", topic.Name, n)
		}
	}
}

// waitForKillPoint waits for a random point of the round: a random count
// of sensors pages published in even rounds, and a random count of asset
// observations normalized in odd rounds.
func waitForKillPoint(t *testing.T, broker *embeddedkafka.Broker, rng *rand.Rand, round int, process *connectorProcess) {
	t.Helper()
	topic := "cybereason.raw.sensors"
	if round%2 == 1 {
		topic = "oversoc.normalized.assets"
	}
	pages := int64(1 + rng.IntN(conservationSensors/conservationPageSize-1))
	start := messageCount(broker, topic)
	waitUntil(t, fmt.Sprintf("%d more records on %s", pages*conservationPageSize, topic), func() bool {
		return messageCount(broker, topic)-start >= pages*conservationPageSize
	}, process)
}

// conservationGroups are the consumer groups of the connector's stages.
var conservationGroups = []string{"cybereason-connector-enrich", "cybereason-connector-dedupe"}

// deadMemberGrace is how long after a kill DeadMembers waits before it
// removes a member of the killed process. Kafka removes such a member at
// the latest one session timeout (6s in connectorEnv) after the join it
// waits in completes. That join completes at the latest when an earlier
// killed member's session timeout or the rebalance timeout (10s) ends, so
// Kafka needs at most 22s, and the grace adds 8s for a loaded machine.
const deadMemberGrace = 30 * time.Second

// removeDeadMembers starts a goroutine that removes, every second, members
// of killed processes that the broker still keeps deadMemberGrace after the
// kill. It stops when the test ends.
func removeDeadMembers(t *testing.T, brokers []string) *kafkatest.DeadMembers {
	t.Helper()
	dead := kafkatest.NewDeadMembers(t, brokers)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			removed, err := dead.Remove(ctx)
			if err != nil && ctx.Err() == nil {
				t.Logf("remove dead group members: %v", err)
			}
			if len(removed) > 0 {
				t.Logf("removed group members %v of killed processes that the broker kept %s after the kill", removed, deadMemberGrace)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return dead
}

// recordDeadMembers records every member of the connector's groups as
// dead. It runs while no connector process runs, and looks twice, one
// second apart, so that a JoinGroup that the killed process wrote just
// before it died and that the broker reads late is recorded too.
func recordDeadMembers(t *testing.T, dead *kafkatest.DeadMembers) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	deadline := time.Now().Add(deadMemberGrace)
	for look := range 2 {
		if look > 0 {
			time.Sleep(time.Second)
		}
		for _, group := range conservationGroups {
			members, err := dead.Members(ctx, group)
			if err != nil {
				t.Fatalf("record the members of killed processes: %v", err)
			}
			dead.Record(group, deadline, members...)
		}
	}
}

// stagesJoining returns the stages of process that had not logged
// "partitions assigned" yet.
func stagesJoining(t *testing.T, process *connectorProcess) []string {
	t.Helper()
	var joining []string
	for _, stage := range []string{"enrich", "dedupe"} {
		if !logContainsAll(t, process.logPath, `"msg":"partitions assigned","stage":"`+stage+`"`) {
			joining = append(joining, stage)
		}
	}
	return joining
}

// checkFinalTopic checks every key of the final topic against the
// observations that dedupe read. The last record of a key must have the
// content of the key's last observation, unless it is a tombstone: dedupe
// writes one after it publishes an asset as removed, and checkFinalTopic
// returns the keys whose last record is one. No (key, ce_id) pair may
// appear twice, and no key may have the same content twice in a row.
func checkFinalTopic(t *testing.T, brokers []string, normalizedTopic, finalTopic string, kind schemas.Kind) (tombstoned map[string]bool) {
	t.Helper()
	latest := lastContents(t, brokers, normalizedTopic, kind)

	const tombstone = "tombstone"
	ids := map[[2]string]bool{}
	contents := map[string]string{} // key -> content of its last record so far
	for _, msg := range readTopic(t, brokers, finalTopic) {
		key := string(msg.Key)
		if msg.Value == nil {
			contents[key] = tombstone
			continue
		}
		id, _ := sink.HeaderValue(msg.Headers, sink.HeaderID)
		if ids[[2]string{key, id}] {
			t.Errorf("%s: key %s with %s %s appears twice", finalTopic, key, sink.HeaderID, id)
		}
		ids[[2]string{key, id}] = true

		content := fingerprint(t, kind, msg)
		if previous, ok := contents[key]; ok && previous == content {
			t.Errorf("%s: key %s has content %s twice in a row (offset %d)", finalTopic, key, content, msg.Offset)
		}
		contents[key] = content
	}

	tombstoned = map[string]bool{}
	for key, want := range latest {
		got, ok := contents[key]
		switch {
		case !ok:
			t.Errorf("%s has no record of key %s", finalTopic, key)
		case got == tombstone:
			tombstoned[key] = true
		case got != want:
			t.Errorf("%s: last content of key %s is %s, want %s as last observed on %s", finalTopic, key, got, want, normalizedTopic)
		}
	}
	return tombstoned
}

// lastContents returns the content of the last record of each key of
// topic, skipping the inventory end events that enrich forwards.
func lastContents(t *testing.T, brokers []string, topic string, kind schemas.Kind) map[string]string {
	t.Helper()
	latest := map[string]string{}
	for _, msg := range readTopic(t, brokers, topic) {
		if inventory.IsEnd(msg) {
			continue
		}
		latest[string(msg.Key)] = fingerprint(t, kind, msg)
	}
	return latest
}

func fingerprint(t *testing.T, kind schemas.Kind, msg kafka.Message) string {
	t.Helper()
	content, err := schemas.Fingerprint(kind, msg.Value)
	if err != nil {
		t.Fatalf("%s offset %d: %v", msg.Topic, msg.Offset, err)
	}
	return content
}

// assertEveryEntityPresent checks that every sensor and MalOp of the
// tenant has a record on its final topic, and that no asset in removed (keys
// whose last record is a tombstone) is still a sensor of the tenant. A
// sensor that the tenant removed may keep its last record, because dedupe
// counts missed inventories again after each restart.
func assertEveryEntityPresent(t *testing.T, brokers []string, tenant *cybereasontest.Tenant, removed map[string]bool) {
	t.Helper()
	assets := distinctKeys(t, brokers, "oversoc.assets")
	for _, id := range tenant.SensorIDs() {
		key := "cybereason:sim.example:" + id
		if !assets[key] {
			t.Errorf("oversoc.assets has no record of sensor %s", id)
		}
		if removed[key] {
			t.Errorf("oversoc.assets ends in a tombstone for sensor %s, which the tenant still has", id)
		}
	}
	findings := distinctKeys(t, brokers, "oversoc.findings")
	for _, malop := range malopTimes(t, tenant) {
		if !findings["cybereason:sim.example:malop:"+malop.GUID] {
			t.Errorf("oversoc.findings has no record of MalOp %s", malop.GUID)
		}
	}
}

// assertMalopsUpToDate checks that the last finding of each MalOp on
// oversoc.findings carries the MalOp's last lastUpdateTime.
func assertMalopsUpToDate(t *testing.T, brokers []string, tenant *cybereasontest.Tenant) {
	t.Helper()
	modified := map[string]int64{}
	for _, msg := range readTopic(t, brokers, "oversoc.findings") {
		var finding struct {
			FindingInfo struct {
				ModifiedTime int64 `json:"modified_time"`
			} `json:"finding_info"`
		}
		if err := json.Unmarshal(msg.Value, &finding); err != nil {
			t.Fatalf("oversoc.findings offset %d: %v", msg.Offset, err)
		}
		modified[string(msg.Key)] = finding.FindingInfo.ModifiedTime
	}
	for _, malop := range malopTimes(t, tenant) {
		key := "cybereason:sim.example:malop:" + malop.GUID
		if got, ok := modified[key]; ok && got != malop.LastUpdateTime {
			t.Errorf("last finding of MalOp %s has modified_time %d, want its lastUpdateTime %d", malop.GUID, got, malop.LastUpdateTime)
		}
	}
}

type malopTime struct {
	GUID           string
	LastUpdateTime int64 // epoch ms
}

// malopTimes returns the guid and lastUpdateTime of each MalOp of tenant.
func malopTimes(t *testing.T, tenant *cybereasontest.Tenant) []malopTime {
	t.Helper()
	var malops []malopTime
	for _, raw := range tenant.Malops() {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		var malop malopTime
		if err := json.Unmarshal(fields["guid"], &malop.GUID); err != nil {
			t.Fatalf("MalOp without guid: %s", raw)
		}
		updated := strings.Trim(string(fields["lastUpdateTime"]), `"`)
		if _, err := fmt.Sscan(updated, &malop.LastUpdateTime); err != nil {
			t.Fatalf("MalOp %s lastUpdateTime %s: %v", malop.GUID, fields["lastUpdateTime"], err)
		}
		malops = append(malops, malop)
	}
	return malops
}

// groupLag returns the count of messages of topics that groupID has not
// committed, or -1 when it cannot be read yet.
func groupLag(t *testing.T, brokers []string, groupID string, topics ...string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lag, err := pipeline.GroupLag(ctx, brokers, groupID, topics)
	if err != nil {
		return -1
	}
	return lag
}

// logContainsAll reports whether the file at path contains every one of
// the messages.
func logContainsAll(t *testing.T, path string, messages ...string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	for _, message := range messages {
		if !strings.Contains(string(data), message) {
			return false
		}
	}
	return true
}
