package cybereasontest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// tenantState is a tenant's objects, decoded and indexed, with the raw bytes of each.
type tenantState struct {
	sensors    map[string]map[string]any
	malops     map[string]map[string]any
	sensorRaws map[string]json.RawMessage
}

func stateOf(t *testing.T, tenant *cybereasontest.Tenant) tenantState {
	t.Helper()
	raws := tenant.Sensors()
	state := tenantState{
		sensors:    byKey(t, decodeObjects(t, raws), "sensorId"),
		malops:     byKey(t, decodeObjects(t, tenant.Malops()), "guid"),
		sensorRaws: make(map[string]json.RawMessage),
	}
	for id, i := range indexOf(tenant.SensorIDs()) {
		state.sensorRaws[id] = raws[i]
	}
	return state
}

func indexOf(ids []string) map[string]int {
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	return index
}

// withoutMembers returns a copy of object without the named members.
func withoutMembers(object map[string]any, names ...string) map[string]any {
	copied := maps.Clone(object)
	for _, name := range names {
		delete(copied, name)
	}
	return copied
}

func TestAdvanceChangesTenant(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(3, 300, 15, testNow)
	before := stateOf(t, tenant)
	later := testNow.Add(time.Hour)

	changes := tenant.Advance(later)
	after := stateOf(t, tenant)

	t.Run("protection", func(t *testing.T) {
		if len(changes.ProtectionChanges) != 3 {
			t.Fatalf("got %d protection changes, want 3", len(changes.ProtectionChanges))
		}
		for _, change := range changes.ProtectionChanges {
			old, now := before.sensors[change.SensorID], after.sensors[change.SensorID]
			if old[change.Field] != change.From || now[change.Field] != change.To || change.From == change.To {
				t.Errorf("%s %s: recorded %q -> %q, tenant has %v -> %v", change.SensorID, change.Field, change.From, change.To, old[change.Field], now[change.Field])
			}
			if !reflect.DeepEqual(withoutMembers(old, change.Field), withoutMembers(now, change.Field)) {
				t.Errorf("%s: members other than %s changed", change.SensorID, change.Field)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		if len(changes.StatusChanges) != 3 {
			t.Fatalf("got %d status changes, want 3", len(changes.StatusChanges))
		}
		for _, change := range changes.StatusChanges {
			old, now := before.sensors[change.SensorID]["status"], after.sensors[change.SensorID]["status"]
			flipped := (old == "Online" && now == "Offline") || (old == "Offline" && now == "Online")
			if !flipped || old != change.From || now != change.To {
				t.Errorf("%s: status %v -> %v, recorded %s -> %s", change.SensorID, old, now, change.From, change.To)
			}
		}
	})

	t.Run("removed sensor", func(t *testing.T) {
		if len(after.sensors) != len(before.sensors)-1 {
			t.Fatalf("tenant has %d sensors after Advance, want %d", len(after.sensors), len(before.sensors)-1)
		}
		if _, ok := after.sensors[changes.RemovedSensor]; ok || before.sensors[changes.RemovedSensor] == nil {
			t.Errorf("sensor %q was not removed", changes.RemovedSensor)
		}
	})

	t.Run("unchanged sensors", func(t *testing.T) {
		changed := map[string]bool{}
		for _, change := range slices.Concat(changes.ProtectionChanges, changes.StatusChanges) {
			changed[change.SensorID] = true
		}
		for id, raw := range after.sensorRaws {
			if !changed[id] && !bytes.Equal(raw, before.sensorRaws[id]) {
				t.Errorf("sensor %s changed but is not listed in the changes", id)
			}
		}
	})

	t.Run("malops", func(t *testing.T) {
		wantMs := later.UnixMilli()

		updated := after.malops[changes.UpdatedMalop.GUID]
		if updated == nil || millis(t, updated["lastUpdateTime"]) != wantMs || changes.UpdatedMalop.Change == "" {
			t.Errorf("updated MalOp %+v: lastUpdateTime is not %d", changes.UpdatedMalop, wantMs)
		}

		closed := after.malops[changes.ClosedMalop]
		if closed == nil {
			t.Fatalf("closed MalOp %q not found", changes.ClosedMalop)
		}
		if closed["closed"] != true || closed["status"] != "Closed" || millis(t, closed["malopCloseTime"]) != wantMs || millis(t, closed["lastUpdateTime"]) != wantMs {
			t.Errorf("closed MalOp %s: closed %v, status %v, malopCloseTime %v, lastUpdateTime %v", changes.ClosedMalop,
				closed["closed"], closed["status"], closed["malopCloseTime"], closed["lastUpdateTime"])
		}
		if before.malops[changes.ClosedMalop]["closed"] != false {
			t.Errorf("MalOp %s was already closed before Advance", changes.ClosedMalop)
		}

		created := after.malops[changes.NewMalop]
		if created == nil || before.malops[changes.NewMalop] != nil {
			t.Fatalf("new MalOp %q is missing or not new", changes.NewMalop)
		}
		if millis(t, created["creationTime"]) != wantMs || millis(t, created["lastUpdateTime"]) != wantMs {
			t.Errorf("new MalOp: creationTime %v, lastUpdateTime %v, want both %d", created["creationTime"], created["lastUpdateTime"], wantMs)
		}
		if len(after.malops) != len(before.malops)+1 {
			t.Errorf("tenant has %d MalOps after Advance, want %d", len(after.malops), len(before.malops)+1)
		}
	})

	if summary := changes.String(); !strings.Contains(summary, changes.RemovedSensor+" removed") {
		t.Errorf("summary %q does not name the removed sensor", summary)
	}
}

func TestAdvanceChangesDistinctSensors(t *testing.T) {
	tests := []struct {
		name    string
		sensors int
	}{
		{"one sensor", 1},
		{"three sensors", 3},
		{"five sensors", 5},
		{"seven sensors", 7},
		{"three hundred sensors", 300},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			for seed := int64(1); seed <= 20; seed++ {
				tenant := cybereasontest.GenerateTenant(seed, test.sensors, 3, testNow)
				for step := 1; step <= 3; step++ {
					hadSensors := tenant.SensorCount() > 0
					changes := tenant.Advance(testNow.Add(time.Duration(step) * time.Hour))
					checkDistinctSensors(t, changes, hadSensors, fmt.Sprintf("seed %d, step %d", seed, step))
				}
			}
		})
	}
}

// checkDistinctSensors fails when one sensor takes part in two changes of one Advance, when a
// tenant with sensors lost none, or when a protection change starts from a feature that is unset
// or not installed.
func checkDistinctSensors(t *testing.T, changes cybereasontest.Changes, hadSensors bool, step string) {
	t.Helper()
	kinds := map[string][]string{}
	for _, change := range changes.ProtectionChanges {
		kinds[change.SensorID] = append(kinds[change.SensorID], "protection")
		if change.From == "" || strings.Contains(change.From, "NOT_INSTALLED") || strings.Contains(change.From, "UNKNOWN") {
			t.Errorf("%s: sensor %s: %s changed from %q, a value that is neither on nor off", step, change.SensorID, change.Field, change.From)
		}
	}
	for _, change := range changes.StatusChanges {
		kinds[change.SensorID] = append(kinds[change.SensorID], "status")
	}
	if changes.RemovedSensor != "" {
		kinds[changes.RemovedSensor] = append(kinds[changes.RemovedSensor], "removal")
	}
	for id, list := range kinds {
		if len(list) > 1 {
			t.Errorf("%s: sensor %s takes part in %d changes (%s): %v", step, id, len(list), strings.Join(list, ", "), changes)
		}
	}
	if hadSensors && changes.RemovedSensor == "" {
		t.Errorf("%s: no sensor removed: %v", step, changes)
	}
}

func TestAdvanceIsDeterministic(t *testing.T) {
	first := cybereasontest.GenerateTenant(11, 100, 8, testNow)
	second := cybereasontest.GenerateTenant(11, 100, 8, testNow)

	for step := 1; step <= 3; step++ {
		now := testNow.Add(time.Duration(step) * time.Hour)
		firstChanges, secondChanges := first.Advance(now), second.Advance(now)
		if !reflect.DeepEqual(firstChanges, secondChanges) {
			t.Fatalf("step %d: changes differ:\n%v\n%v", step, firstChanges, secondChanges)
		}
	}
	if !slices.EqualFunc(first.Sensors(), second.Sensors(), sameJSON) || !slices.EqualFunc(first.Malops(), second.Malops(), sameJSON) {
		t.Error("tenants of the same seed differ after the same Advance steps")
	}
}

func TestAdvanceLoadedTenant(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, cybereasontest.SensorsFile, `[
	  {"sensorId":"s:PYLUMCLIENT_T_A_000000000001","guid":"1.1","machineName":"a","status":"Online","antiMalwareStatus":"AM_ENABLED","cpuUsage":0.0,"extra":{"kept":[1,2]}},
	  {"sensorId":"s:PYLUMCLIENT_T_B_000000000002","guid":"2.1","machineName":"b","status":"Offline","fwStatus":"ENABLED"},
	  {"sensorId":"s:PYLUMCLIENT_T_C_000000000003","guid":"3.1","machineName":"c","status":"Stale"}
	]`)
	writeFile(t, dir, cybereasontest.MalopsFile, `[
	  {"guid":"m1","creationTime":1000,"lastUpdateTime":2000,"closed":false,"status":"Active","machines":[{"guid":"1.1"}]},
	  {"guid":"m2","creationTime":1500,"lastUpdateTime":2500,"closed":false,"status":"Active","machines":[]}
	]`)
	tenant, err := cybereasontest.LoadTenant(dir)
	if err != nil {
		t.Fatal(err)
	}

	later := testNow
	changes := tenant.Advance(later)

	if tenant.SensorCount() != 2 || changes.RemovedSensor == "" {
		t.Errorf("sensor count %d after removing %q, want 2", tenant.SensorCount(), changes.RemovedSensor)
	}
	if len(changes.ProtectionChanges) == 0 {
		t.Error("no protection change on a tenant whose sensors have protection members")
	}
	if changes.UpdatedMalop.GUID == "" || changes.ClosedMalop == "" || changes.NewMalop == "" {
		t.Fatalf("MalOp changes missing: %v", changes)
	}
	if tenant.MalopCount() != 3 {
		t.Errorf("MalOp count %d, want 3", tenant.MalopCount())
	}

	for _, raw := range tenant.Sensors() {
		if bytes.Contains(raw, []byte(`"machineName":"a"`)) && !bytes.Contains(raw, []byte(`"cpuUsage":0.0,"extra":{"kept":[1,2]}`)) {
			t.Errorf("sensor a lost the spelling or order of its other members: %s", raw)
		}
	}
	for _, raw := range tenant.Malops() {
		if bytes.Contains(raw, []byte(`"guid":"`+changes.ClosedMalop+`"`)) && !bytes.HasPrefix(raw, []byte(`{"guid":"`+changes.ClosedMalop+`","creationTime":`)) {
			t.Errorf("closed MalOp lost its member order: %s", raw)
		}
	}
}
