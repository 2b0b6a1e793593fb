package dedupe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/pipeline/dedupe"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

const (
	testTenant      = "console.example.net"
	securityStateTo = "oversoc.asset-security-state"
)

// inventoryStart returns the start time of the n-th test inventory, one hour
// apart.
func inventoryStart(n int) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour)
}

// assetUID returns the asset_uid of the test sensor id.
func assetUID(id string) string { return "cybereason:" + testTenant + ":" + id }

// sensorState is what a test changes in the example asset record.
type sensorState struct {
	id         string
	offline    bool // sensor_status offline instead of online
	prevention schemas.FeatureState
	isolated   bool
	outdated   bool
	serviceOff bool // service down on an online sensor
	// lifecycle is stale or archived instead of active when set.
	lifecycle schemas.LifecycleState
	// tenant is the sensor's console, testTenant when empty.
	tenant string
}

func (s sensorState) tenantID() string {
	if s.tenant == "" {
		return testTenant
	}
	return s.tenant
}

// key returns the asset_uid of the sensor, which is its record key.
func (s sensorState) key() string { return "cybereason:" + s.tenantID() + ":" + s.id }

// assetValue returns the example asset record of contract version
// schemas.Version for the sensor, as enrich would make it at poll time start.
func assetValue(t testing.TB, s sensorState, start time.Time) []byte {
	t.Helper()
	data, err := os.ReadFile("../../schemas/testdata/" + schemas.Version + "/asset-full.json")
	if err != nil {
		t.Fatal(err)
	}
	var asset schemas.Asset
	if err := json.Unmarshal(data, &asset); err != nil {
		t.Fatal(err)
	}
	asset.AssetUID = s.key()
	asset.Metadata.TenantUID = s.tenantID()
	asset.Device.UID = s.id
	asset.Time = start.UnixMilli()
	asset.Metadata.UID = asset.AssetUID + "#test"
	asset.Metadata.ProcessedTime = start.UnixMilli() + 1
	asset.Device.LastSeenTime = start.UnixMilli() - 1000 // volatile: new at every inventory

	p := &asset.Protection
	if s.offline {
		p.SensorStatus = schemas.SensorOffline
		p.ServiceStatus = schemas.ServiceDown
		p.Raw["status"], p.Raw["serviceStatus"] = "Offline", "Down"
	}
	if s.prevention != "" {
		p.Prevention = s.prevention
	}
	p.IsIsolated = &s.isolated
	p.IsOutdated = &s.outdated
	var states []schemas.SecurityState
	if s.outdated {
		states = append(states, schemas.SecurityState{StateID: 1, State: "Missing or outdated content"})
	}
	if s.isolated {
		states = append(states, schemas.SecurityState{StateID: 3, State: "In network quarantine"})
	}
	if s.serviceOff {
		p.ServiceStatus = schemas.ServiceDown
		p.IsEffective = false
		states = append(states, schemas.SecurityState{StateID: 5, State: "Protection malfunction"})
	}
	switch s.lifecycle {
	case schemas.LifecycleStale:
		p.SensorStatus, p.LifecycleState, p.IsEffective = schemas.SensorStale, schemas.LifecycleStale, false
		states = append(states, schemas.SecurityState{StateID: 99, State: "Sensor stale"})
	case schemas.LifecycleArchived:
		p.SensorStatus, p.LifecycleState, p.IsEffective = schemas.SensorArchived, schemas.LifecycleArchived, false
		managed := false
		asset.Device.IsManaged = &managed
		states = append(states, schemas.SecurityState{StateID: 99, State: "Sensor archived"})
	}
	p.SecurityStates = append([]schemas.SecurityState{}, states...)
	p.SecurityLevelID, p.SecurityLevel = 1, "Secure"
	if len(states) > 0 {
		p.SecurityLevelID, p.SecurityLevel = 2, "At Risk"
	}

	value, err := json.Marshal(asset)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// assetMessage is the asset record of the sensor on partition, as enrich
// forwards it for the inventory that started at start.
func assetMessage(t testing.TB, s sensorState, start time.Time, partition int) kafka.Message {
	t.Helper()
	event := sink.Event{
		ID: s.key() + "#test", Source: "https://" + s.tenantID() + "/rest/sensors/query",
		Type: schemas.EventType(schemas.KindAsset), Subject: s.key(), Tenant: s.tenantID(),
		DataSchema: schemas.SchemaID(schemas.KindAsset), Time: start,
	}
	headers := append(event.Headers(), kafka.Header{Key: inventory.HeaderID, Value: []byte(inventory.ID(s.tenantID(), start))})
	return kafka.Message{Topic: assetsIn, Partition: partition, Key: []byte(s.key()), Value: assetValue(t, s, start), Headers: headers}
}

// endMessages are the end events of the inventory that started at start, as
// enrich forwards them; counts[p] is the number of sensors on partition p.
func endMessages(t testing.TB, start time.Time, total int, counts ...int) []kafka.Message {
	t.Helper()
	return tenantEndMessages(t, testTenant, start, total, counts...)
}

// tenantEndMessages is endMessages for the inventory of another tenant.
func tenantEndMessages(t testing.TB, tenant string, start time.Time, total int, counts ...int) []kafka.Message {
	t.Helper()
	msgs, err := inventory.Messages(assetsIn, "https://"+tenant+"/rest/sensors/query", tenant, start, total, counts)
	if err != nil {
		t.Fatalf("inventory.Messages: %v", err)
	}
	return msgs
}

func assetFingerprint(_ string, msg kafka.Message) (string, error) {
	return schemas.Fingerprint(schemas.KindAsset, msg.Value)
}

func newValidator(t testing.TB) *schemas.Validator {
	t.Helper()
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return validator
}

func newLifecycleStage(t testing.TB, missed int) *dedupe.Stage {
	t.Helper()
	stage, err := dedupe.New(dedupe.Config{
		Routes:      map[string]string{assetsIn: assetsOut},
		Fingerprint: assetFingerprint,
		Assets:      &dedupe.AssetConfig{Topic: assetsIn, MissedInventories: missed, Validator: newValidator(t)},
	}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return stage
}

// runInventory passes the asset records of the sensors, all on partition 0
// of one, to the stage, then the end event unless failed is set, each as its
// own committed batch. It returns every output.
func runInventory(t testing.TB, stage *dedupe.Stage, n int, sensors []sensorState, failed bool) []kafka.Message {
	t.Helper()
	start := inventoryStart(n)
	msgs := make([]kafka.Message, 0, len(sensors)+1)
	for _, s := range sensors {
		msgs = append(msgs, assetMessage(t, s, start, 0))
	}
	if !failed {
		msgs = append(msgs, endMessages(t, start, len(sensors), len(sensors))...)
	}
	return processAll(t, stage, msgs...)
}

func processAll(t testing.TB, stage *dedupe.Stage, msgs ...kafka.Message) []kafka.Message {
	t.Helper()
	var outs []kafka.Message
	for _, msg := range msgs {
		out, err := stage.Process(context.Background(), msg)
		if err != nil {
			t.Fatalf("Process %s: %v", msg.Key, err)
		}
		stage.CommitBatch()
		outs = append(outs, out...)
	}
	return outs
}

func sensors(ids ...string) []sensorState {
	out := make([]sensorState, len(ids))
	for i, id := range ids {
		out[i] = sensorState{id: id}
	}
	return out
}

// removalsOf returns the keys of the removed records in outs, and checks
// that each is valid, carries its schema and is followed by its tombstone.
func removalsOf(t *testing.T, outs []kafka.Message) []string {
	t.Helper()
	validator := newValidator(t)
	var removed []string
	for i, out := range outs {
		if out.Value == nil || out.Topic != assetsOut {
			continue
		}
		var asset schemas.Asset
		if err := json.Unmarshal(out.Value, &asset); err != nil {
			t.Fatal(err)
		}
		if asset.Protection.LifecycleState != schemas.LifecycleRemoved {
			continue
		}
		removed = append(removed, string(out.Key))
		if err := validator.Validate(schemas.KindAsset, out.Value); err != nil {
			t.Errorf("removed record of %s: %v", out.Key, err)
		}
		if got, _ := sink.HeaderValue(out.Headers, sink.HeaderDataSchema); got != schemas.SchemaID(schemas.KindAsset) {
			t.Errorf("removed record of %s: ce_dataschema %q", out.Key, got)
		}
		if i+1 >= len(outs) || outs[i+1].Value != nil || string(outs[i+1].Key) != string(out.Key) {
			t.Errorf("removed record of %s is not followed by its tombstone", out.Key)
			continue
		}
		if _, ok := sink.HeaderValue(outs[i+1].Headers, sink.HeaderDataSchema); ok {
			t.Errorf("tombstone of %s carries ce_dataschema", out.Key)
		}
	}
	return removed
}

// TestLifecycleRemovesOnlyTheInventorysTenant runs the inventories of two
// consoles whose sensors share the topics. A complete inventory may remove
// only assets of its own tenant, and one tenant's later inventory must not
// make the other tenant's end events look replayed.
func TestLifecycleRemovesOnlyTheInventorysTenant(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	const other = "other.example.net"
	own := sensors("a1", "a2")
	others := []sensorState{{id: "b1", tenant: other}, {id: "b2", tenant: other}}

	collect := func(tenant string, n int, sensors []sensorState) []kafka.Message {
		t.Helper()
		start := inventoryStart(n)
		var msgs []kafka.Message
		for _, s := range sensors {
			msgs = append(msgs, assetMessage(t, s, start, 0))
		}
		msgs = append(msgs, tenantEndMessages(t, tenant, start, len(sensors), len(sensors))...)
		return processAll(t, stage, msgs...)
	}

	// The other tenant's inventories start hours after this tenant's.
	collect(testTenant, 0, own)
	if got := removalsOf(t, collect(other, 5, others)); len(got) != 0 {
		t.Errorf("the other tenant's first inventory removed %v, want nothing", got)
	}
	if got := removalsOf(t, collect(testTenant, 1, own[:1])); !slices.Equal(got, []string{own[1].key()}) {
		t.Errorf("this tenant's second inventory removed %v, want [%s]", got, own[1].key())
	}
	if got := removalsOf(t, collect(other, 6, others[:1])); !slices.Equal(got, []string{others[1].key()}) {
		t.Errorf("the other tenant's second inventory removed %v, want [%s]", got, others[1].key())
	}
}

func TestLifecycleRemovesAfterMissedInventories(t *testing.T) {
	tests := []struct {
		missed    int
		removedAt int // the inventory whose end event removes "c"
	}{
		{missed: 1, removedAt: 2},
		{missed: 2, removedAt: 3},
		{missed: 3, removedAt: 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("after %d", tt.missed), func(t *testing.T) {
			stage := newLifecycleStage(t, tt.missed)
			runInventory(t, stage, 1, sensors("a", "b", "c"), false)

			for n := 2; n <= 5; n++ {
				removed := removalsOf(t, runInventory(t, stage, n, sensors("a", "b"), false))
				var want []string
				if n == tt.removedAt {
					want = []string{assetUID("c")}
				}
				if !slices.Equal(removed, want) {
					t.Errorf("inventory %d removed %v, want %v", n, removed, want)
				}
			}
			if stats := stage.Stats(); stats.Removed != 1 || stats.InventoryEnds != 5 {
				t.Errorf("Removed = %d and InventoryEnds = %d, want 1 and 5", stats.Removed, stats.InventoryEnds)
			}
		})
	}
}

func TestLifecycleFailedInventoryRemovesNothing(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	runInventory(t, stage, 1, sensors("a", "b", "c"), false)

	// The second inventory fails after "a": no end event.
	if outs := runInventory(t, stage, 2, sensors("a"), true); len(removalsOf(t, outs)) != 0 {
		t.Errorf("failed inventory removed assets: %v", removalsOf(t, outs))
	}
	// The third lists every sensor again.
	if removed := removalsOf(t, runInventory(t, stage, 3, sensors("a", "b", "c"), false)); len(removed) != 0 {
		t.Errorf("complete inventory after a failed one removed %v", removed)
	}
}

func TestLifecycleIncompleteInventoryRemovesNothing(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	runInventory(t, stage, 1, sensors("a", "b", "c"), false)

	// Enrich dead-lettered "c": its end event counts three sensors on the
	// partition, and the stage saw two.
	start := inventoryStart(2)
	outs := processAll(t, stage, assetMessage(t, sensorState{id: "a"}, start, 0), assetMessage(t, sensorState{id: "b"}, start, 0))
	outs = append(outs, processAll(t, stage, endMessages(t, start, 3, 3)...)...)
	if removed := removalsOf(t, outs); len(removed) != 0 {
		t.Errorf("incomplete inventory removed %v", removed)
	}
	if got := stage.Stats().IncompleteInventories; got != 1 {
		t.Errorf("IncompleteInventories = %d, want 1", got)
	}

	// An empty inventory is not trusted either.
	outs = processAll(t, stage, endMessages(t, inventoryStart(3), 0, 0)...)
	if removed := removalsOf(t, outs); len(removed) != 0 {
		t.Errorf("empty inventory removed %v", removed)
	}
}

func TestLifecycleReplayedEndEventIgnored(t *testing.T) {
	stage := newLifecycleStage(t, 2)
	runInventory(t, stage, 1, sensors("a", "b", "c"), false)
	runInventory(t, stage, 2, sensors("a", "b"), false)

	// A replay of both end events must not count "c" missing twice more.
	outs := processAll(t, stage, endMessages(t, inventoryStart(1), 3, 3)...)
	outs = append(outs, processAll(t, stage, endMessages(t, inventoryStart(2), 2, 2)...)...)
	if removed := removalsOf(t, outs); len(removed) != 0 {
		t.Errorf("replayed end events removed %v", removed)
	}
	if got := stage.Stats().ReplayedInventoryEnds; got != 2 {
		t.Errorf("ReplayedInventoryEnds = %d, want 2", got)
	}
}

func TestLifecycleAssetComesBackActive(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	runInventory(t, stage, 1, sensors("a", "b"), false)
	if removed := removalsOf(t, runInventory(t, stage, 2, sensors("a"), false)); !slices.Equal(removed, []string{assetUID("b")}) {
		t.Fatalf("second inventory removed %v, want b", removed)
	}

	outs := runInventory(t, stage, 3, sensors("a", "b"), false)
	if len(outs) != 1 || string(outs[0].Key) != assetUID("b") || outs[0].Topic != assetsOut {
		t.Fatalf("third inventory published %d records, want only b's asset record", len(outs))
	}
	var asset schemas.Asset
	if err := json.Unmarshal(outs[0].Value, &asset); err != nil {
		t.Fatal(err)
	}
	if asset.Protection.LifecycleState != schemas.LifecycleActive {
		t.Errorf("returning asset has lifecycle %q, want active", asset.Protection.LifecycleState)
	}
}

func TestLifecycleKeepsArchivedAndStale(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	runInventory(t, stage, 1, sensors("a", "b", "c"), false)

	// "b" goes stale and "c" is archived: both are still listed.
	changed := []sensorState{{id: "a"}, {id: "b", lifecycle: schemas.LifecycleStale}, {id: "c", lifecycle: schemas.LifecycleArchived}}
	outs := runInventory(t, stage, 2, changed, false)
	lifecycles := map[string]schemas.LifecycleState{}
	states := 0
	for _, out := range outs {
		switch out.Topic {
		case assetsOut:
			var asset schemas.Asset
			if err := json.Unmarshal(out.Value, &asset); err != nil {
				t.Fatal(err)
			}
			lifecycles[string(out.Key)] = asset.Protection.LifecycleState
		case securityStateTo:
			states++
		}
	}
	want := map[string]schemas.LifecycleState{assetUID("b"): schemas.LifecycleStale, assetUID("c"): schemas.LifecycleArchived}
	if fmt.Sprint(lifecycles) != fmt.Sprint(want) {
		t.Errorf("published lifecycles %v, want %v", lifecycles, want)
	}
	if states != 2 {
		t.Errorf("%d security-state records, want one for each lifecycle change", states)
	}

	// Listed again unchanged, they publish nothing and are not removed.
	if outs := runInventory(t, stage, 3, changed, false); len(outs) != 0 {
		t.Errorf("unchanged stale and archived sensors published %d records, want none", len(outs))
	}
	// An archived sensor that the console purges is removed like any other.
	if removed := removalsOf(t, runInventory(t, stage, 4, changed[:2], false)); !slices.Equal(removed, []string{assetUID("c")}) {
		t.Errorf("inventory without the archived sensor removed %v, want c", removed)
	}
}

func TestLifecycleFlappingPublishesNothing(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	runInventory(t, stage, 1, []sensorState{{id: "a"}}, false)

	for n := 2; n <= 5; n++ {
		flapped := sensorState{id: "a", offline: n%2 == 0}
		if outs := runInventory(t, stage, n, []sensorState{flapped}, false); len(outs) != 0 {
			t.Errorf("inventory %d (offline %t) published %d records, want none", n, flapped.offline, len(outs))
		}
	}
	if got := stage.Stats().SecurityStates; got != 0 {
		t.Errorf("SecurityStates = %d, want 0", got)
	}
}

func TestSecurityStateOnPostureChange(t *testing.T) {
	tests := []struct {
		name    string
		next    sensorState
		changed []string
		level   int
	}{
		{"prevention off", sensorState{id: "a", prevention: schemas.FeatureDisabled}, []string{"prevention"}, 1},
		{"isolated", sensorState{id: "a", isolated: true}, []string{"is_isolated", "security_level_id", "security_states"}, 2},
		{"outdated", sensorState{id: "a", outdated: true}, []string{"is_outdated", "security_level_id", "security_states"}, 2},
		{"service down", sensorState{id: "a", serviceOff: true}, []string{"is_effective", "security_level_id", "security_states"}, 2},
	}
	validator := newValidator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newLifecycleStage(t, 1)
			runInventory(t, stage, 1, sensors("a"), false)

			outs := runInventory(t, stage, 2, []sensorState{tt.next}, false)
			if len(outs) != 2 || outs[0].Topic != assetsOut || outs[1].Topic != securityStateTo {
				t.Fatalf("published %d records, want the asset record and a security-state record", len(outs))
			}
			state := outs[1]
			if err := validator.Validate(schemas.KindAssetSecurityState, state.Value); err != nil {
				t.Errorf("security-state record: %v", err)
			}
			if got, _ := sink.HeaderValue(state.Headers, sink.HeaderDataSchema); got != schemas.SchemaID(schemas.KindAssetSecurityState) {
				t.Errorf("ce_dataschema = %q", got)
			}
			var record schemas.AssetSecurityState
			if err := json.Unmarshal(state.Value, &record); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(record.ChangedFields, tt.changed) {
				t.Errorf("changed_fields = %v, want %v", record.ChangedFields, tt.changed)
			}
			if record.SecurityLevelID != tt.level || record.PrevSecurityLevelID != 1 {
				t.Errorf("security level %d (previous %d), want %d (previous 1)", record.SecurityLevelID, record.PrevSecurityLevelID, tt.level)
			}
			if string(state.Key) != assetUID("a") || record.AssetUID != assetUID("a") {
				t.Errorf("record key %s, asset_uid %s, want %s", state.Key, record.AssetUID, assetUID("a"))
			}
		})
	}
}

func TestSecurityStateNotOnFirstSightOrResync(t *testing.T) {
	clock := &testClock{now: inventoryStart(0)}
	stage, err := dedupe.New(dedupe.Config{
		Routes:         map[string]string{assetsIn: assetsOut},
		Fingerprint:    assetFingerprint,
		ResyncInterval: time.Hour,
		Now:            clock.Now,
		Assets:         &dedupe.AssetConfig{Topic: assetsIn, Validator: newValidator(t)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}

	outs := runInventory(t, stage, 1, []sensorState{{id: "a", isolated: true}}, false)
	clock.Advance(2 * time.Hour)
	outs = append(outs, runInventory(t, stage, 2, []sensorState{{id: "a", isolated: true}}, false)...)
	for _, out := range outs {
		if out.Topic == securityStateTo {
			t.Errorf("security-state record published for a first sight or a resync: %s", out.Value)
		}
	}
	if len(outs) != 2 {
		t.Errorf("published %d records, want the first sight and the resync", len(outs))
	}
}

func TestLifecycleRollbackUndoesRemoval(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	runInventory(t, stage, 1, sensors("a", "b"), false)

	start := inventoryStart(2)
	processAll(t, stage, assetMessage(t, sensorState{id: "a"}, start, 0))
	end := endMessages(t, start, 1, 1)[0]
	out, err := stage.Process(context.Background(), end)
	if err != nil {
		t.Fatal(err)
	}
	if removed := removalsOf(t, out); !slices.Equal(removed, []string{assetUID("b")}) {
		t.Fatalf("end event removed %v, want b", removed)
	}
	stage.RollbackBatch()

	// The batch is consumed again: the removal must happen again.
	out, err = stage.Process(context.Background(), end)
	if err != nil {
		t.Fatal(err)
	}
	stage.CommitBatch()
	if removed := removalsOf(t, out); !slices.Equal(removed, []string{assetUID("b")}) {
		t.Errorf("end event after the rollback removed %v, want b", removed)
	}
}

func TestLifecycleRejectsMalformedEndEvent(t *testing.T) {
	stage := newLifecycleStage(t, 1)
	end := endMessages(t, inventoryStart(1), 1, 1)[0]
	end.Value = []byte(`{"inventory_id":"x","start_time":1,"count":1,"partition_count":1,"partition":0,"partitions":1,"extra":true}`)

	_, err := stage.Process(context.Background(), end)
	if err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("Process error = %v, want an unknown field error", err)
	}
	moved := endMessages(t, inventoryStart(1), 2, 1, 1)[1]
	moved.Partition = 0
	if _, err := stage.Process(context.Background(), moved); err == nil || !strings.Contains(err.Error(), "read from partition 0") {
		t.Errorf("Process error = %v, want a partition mismatch", err)
	}
	if got := stage.Stats().InvalidInventoryEnds; got != 2 {
		t.Errorf("InvalidInventoryEnds = %d, want 2", got)
	}
}

func TestNewNamesBadAssetSettings(t *testing.T) {
	_, err := dedupe.New(dedupe.Config{
		Routes:      map[string]string{assetsIn: assetsOut},
		Fingerprint: assetFingerprint,
		Assets:      &dedupe.AssetConfig{Topic: "other", SecurityStateTopic: assetsOut, MissedInventories: -1},
	}, nil)
	if err == nil {
		t.Fatal("New accepted bad asset settings")
	}
	for _, want := range []string{`topic "other" has no route`, "is also a route topic", "at least 1, got -1", "validator is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestEndEventWithoutAssetConfigRejected(t *testing.T) {
	stage := newStage(t)
	end := endMessages(t, inventoryStart(1), 1, 1)[0]

	out, err := stage.Process(context.Background(), end)
	if err == nil || !strings.Contains(err.Error(), "not the asset topic") {
		t.Errorf("Process error = %v, want one naming the asset topic", err)
	}
	if len(out) != 0 {
		t.Errorf("Process forwarded %d messages, want none", len(out))
	}
}
