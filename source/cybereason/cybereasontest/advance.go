package cybereasontest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// changesPerKind is the number of sensors whose protection changes, and of sensors whose status
// flips, at each Advance (fewer when the tenant has fewer sensors that qualify).
const changesPerKind = 3

// Changes lists what one Advance changed.
type Changes struct {
	Time              time.Time
	ProtectionChanges []SensorChange // a protection feature turned off, or on when all were off
	StatusChanges     []SensorChange // status Online to Offline or back
	RemovedSensor     string         // sensorId, or "" when the tenant had no sensor
	UpdatedMalop      MalopChange    // lastUpdateTime set to Time, or zero when no open MalOp was left
	ClosedMalop       string         // guid of the MalOp closed at Time, or "" when no open MalOp was left
	NewMalop          string         // guid of the MalOp created at Time
	NewMalware        string         // guid of the malware alert detected at Time
}

// SensorChange is one changed member of a sensor.
type SensorChange struct {
	SensorID string
	Field    string
	From, To string
}

// MalopChange is an updated MalOp and what changed in it.
type MalopChange struct {
	GUID   string
	Change string // e.g. "new machine desktop-4f2k9aa"
}

// String summarises the changes on one line.
func (c Changes) String() string {
	var parts []string
	for _, change := range c.ProtectionChanges {
		parts = append(parts, fmt.Sprintf("sensor %s %s %s -> %s", change.SensorID, change.Field, change.From, change.To))
	}
	for _, change := range c.StatusChanges {
		parts = append(parts, fmt.Sprintf("sensor %s %s -> %s", change.SensorID, change.From, change.To))
	}
	if c.RemovedSensor != "" {
		parts = append(parts, "sensor "+c.RemovedSensor+" removed")
	}
	if c.UpdatedMalop.GUID != "" {
		parts = append(parts, fmt.Sprintf("MalOp %s updated (%s)", c.UpdatedMalop.GUID, c.UpdatedMalop.Change))
	}
	if c.ClosedMalop != "" {
		parts = append(parts, "MalOp "+c.ClosedMalop+" closed")
	}
	if c.NewMalop != "" {
		parts = append(parts, "MalOp "+c.NewMalop+" created")
	}
	if c.NewMalware != "" {
		parts = append(parts, "malware alert "+c.NewMalware+" detected")
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, "; ")
}

// toggle is a protection feature with its values when on and when off.
type toggle struct {
	field   string
	on, off string
}

var protectionToggles = []toggle{
	{"antiMalwareStatus", "AM_ENABLED", "AM_DISABLED"},
	{"ransomwareStatus", "DETECT_SUSPEND_PREVENT", "DISABLED"},
	{"preventionStatus", "ENABLED", "DISABLED"},
	{"antiExploitStatus", "AE_ENABLED", "AE_DISABLED"},
	{"powerShellStatus", "PS_ENABLED", "PS_DISABLED"},
	{"documentProtectionStatus", "DS_PREVENT", "DS_DISABLED"},
	{"staticAnalysisPreventMode", "MODERATE", "DISABLED"},
	{"usbStatus", "ENABLED", "DISABLED"},
	{"fwStatus", "ENABLED", "DISABLED"},
}

// Advance moves the tenant to its next state at now and returns what changed:
//   - up to 3 sensors change a protection feature, and up to 3 other sensors flip between Online
//     and Offline;
//   - one more sensor disappears, so each sensor takes part in one change at most;
//   - one open MalOp gets a new machine, or is escalated, and lastUpdateTime now;
//   - another open MalOp closes at now;
//   - one new MalOp appears, created and updated at now;
//   - one new malware alert appears, detected at now.
//
// A tenant with too few sensors or open MalOps gets the changes it can. Changed objects keep their
// other members and their member order. A loaded tenant changes the v2 object of a MalOp with its
// inbox object, so both views show each change. The states are deterministic for a tenant's seed and the
// times passed.
func (t *Tenant) Advance(now time.Time) Changes {
	t.mu.Lock()
	defer t.mu.Unlock()

	changes := Changes{Time: now}
	nowMs := now.UnixMilli()
	order := t.random.Perm(len(t.sensors))

	// Each sensor takes part in one change at most, so that no sensor is reported as changed and
	// removed in the same step. The sensor to remove is set aside first, because a small tenant
	// may have no other sensor left once the other changes have picked theirs.
	touched := make(map[int]bool)
	removed := -1
	if len(order) > 0 {
		removed = order[len(order)-1]
		touched[removed] = true
	}
	changes.ProtectionChanges = t.changeProtection(order, touched)
	changes.StatusChanges = t.flipStatuses(order, touched, nowMs)
	changes.RemovedSensor = t.removeSensor(removed)

	open := t.openMalops()
	if len(open) > 0 {
		changes.UpdatedMalop = t.updateMalop(open[0], now)
	}
	if len(open) > 1 {
		changes.ClosedMalop = t.closeMalop(open[1], nowMs)
	}
	changes.NewMalop = t.addMalop(now)
	changes.NewMalware = t.addMalware(now)

	t.version++
	return changes
}

// memberUpdate is a new value for a member of an object.
type memberUpdate struct {
	name      string
	value     any
	ifPresent bool // set the member only when the object already has it
}

func (t *Tenant) changeProtection(order []int, touched map[int]bool) []SensorChange {
	var changes []SensorChange
	for _, index := range order {
		if len(changes) == changesPerKind {
			break
		}
		if touched[index] {
			continue
		}
		sensor, err := parseObject(t.sensors[index].raw)
		if err != nil {
			continue
		}
		feature, ok := t.pickToggle(sensor)
		if !ok {
			continue
		}
		from := sensor.text(feature.field)
		to := feature.off
		if from == feature.off {
			to = feature.on
		}
		if t.replaceSensor(index, sensor, []memberUpdate{{name: feature.field, value: to}}) {
			touched[index] = true
			changes = append(changes, SensorChange{SensorID: t.sensors[index].id, Field: feature.field, From: from, To: to})
		}
	}
	return changes
}

// pickToggle chooses a protection feature of the sensor to turn off, or one to turn on when all
// its features are off. A feature that is unset (""), not installed or in an unknown state is
// never chosen, because a console would not report it as switched on or off.
func (t *Tenant) pickToggle(sensor *object) (toggle, bool) {
	var on, off []toggle
	for _, feature := range protectionToggles {
		value, ok := sensor.get(feature.field)
		if !ok || !strings.HasPrefix(string(value), `"`) {
			continue
		}
		switch text := sensor.text(feature.field); {
		case text == feature.off:
			off = append(off, feature)
		case text != "" && !strings.Contains(text, "NOT_INSTALLED") && !strings.Contains(text, "UNKNOWN"):
			on = append(on, feature)
		}
	}
	switch {
	case len(on) > 0:
		return on[t.random.IntN(len(on))], true
	case len(off) > 0:
		return off[t.random.IntN(len(off))], true
	}
	return toggle{}, false
}

func (t *Tenant) flipStatuses(order []int, touched map[int]bool, nowMs int64) []SensorChange {
	var changes []SensorChange
	for _, index := range order {
		if len(changes) == changesPerKind {
			break
		}
		from := t.sensors[index].field("status")
		if touched[index] || (from != "Online" && from != "Offline") {
			continue
		}
		sensor, err := parseObject(t.sensors[index].raw)
		if err != nil {
			continue
		}

		to := "Offline"
		update := []memberUpdate{
			{name: "status", value: to},
			{name: "disconnected", value: true, ifPresent: true},
			{name: "disconnectionTime", value: nowMs, ifPresent: true},
			{name: "serviceStatus", value: "Down", ifPresent: true},
		}
		if from == "Offline" {
			to = "Online"
			update = []memberUpdate{
				{name: "status", value: to},
				{name: "disconnected", value: false, ifPresent: true},
				{name: "serviceStatus", value: "Up", ifPresent: true},
				{name: "lastPylumUpdateTimestampMs", value: nowMs, ifPresent: true},
				{name: "lastPylumInfoMsgUpdateTime", value: nowMs, ifPresent: true},
			}
		}
		if t.replaceSensor(index, sensor, update) {
			touched[index] = true
			changes = append(changes, SensorChange{SensorID: t.sensors[index].id, Field: "status", From: from, To: to})
		}
	}
	return changes
}

// replaceSensor applies updates to the sensor at index and reports whether it was replaced.
func (t *Tenant) replaceSensor(index int, sensor *object, updates []memberUpdate) bool {
	if applyUpdates(sensor, updates) != nil {
		return false
	}
	record, err := newSensorRecord(sensor.marshal())
	if err != nil {
		return false
	}
	t.sensors[index] = record
	return true
}

func applyUpdates(o *object, updates []memberUpdate) error {
	for _, update := range updates {
		set := o.set
		if update.ifPresent {
			set = o.setIfPresent
		}
		if err := set(update.name, update.value); err != nil {
			return err
		}
	}
	return nil
}

// removeSensor removes the sensor at index and returns its sensorId, or returns "" when index
// is negative.
func (t *Tenant) removeSensor(index int) string {
	if index < 0 {
		return ""
	}
	id := t.sensors[index].id
	t.sensors = slices.Delete(t.sensors, index, index+1)
	return id
}

// openMalops returns the indexes of the MalOps that are not closed, in a random order.
func (t *Tenant) openMalops() []int {
	var open []int
	for _, index := range t.random.Perm(len(t.malops)) {
		if !t.malops[index].closed {
			open = append(open, index)
		}
	}
	return open
}

// updateMalop adds a machine to a MalOp, or toggles its escalated flag when no machine can be
// added, and sets its lastUpdateTime.
func (t *Tenant) updateMalop(index int, now time.Time) MalopChange {
	record := t.malops[index]
	malop, err := parseObject(record.raw)
	if err != nil {
		return MalopChange{}
	}

	nowMs := now.UnixMilli()
	v2 := v2Change{updates: []memberUpdate{
		{name: "lastUpdateTime", value: nowMs},
		{name: "metadataUpdateTime", value: nowMs, ifPresent: true},
	}}
	change, err := t.addMachine(malop, record, now, &v2)
	if err == nil && change == "" {
		escalated := malop.text("escalated") == "true"
		change = "escalated"
		if escalated {
			change = "de-escalated"
		}
		err = malop.set("escalated", !escalated)
		v2.updates = append(v2.updates, memberUpdate{name: "escalated", value: !escalated})
	}
	if err != nil || malop.set("lastUpdateTime", nowMs) != nil || !t.replaceMalop(index, malop, v2) {
		return MalopChange{}
	}
	return MalopChange{GUID: record.guid, Change: change}
}

// addMachine appends a sensor that the MalOp does not list yet to its machines, sets v2.machine to
// that machine in the v2 shape, and describes the change. It returns "" when the MalOp has no
// machines array or no sensor qualifies.
func (t *Tenant) addMachine(malop *object, record *malopRecord, now time.Time, v2 *v2Change) (string, error) {
	raw, ok := malop.get("machines")
	var machines []json.RawMessage
	if !ok || json.Unmarshal(raw, &machines) != nil {
		return "", nil
	}
	sensor := t.newMachineFor(record)
	if sensor == nil {
		return "", nil
	}
	added := t.generatorAt(now).machine(sensor, now.UnixMilli())
	machine, err := json.Marshal(added)
	if err != nil {
		return "", err
	}
	addedV2 := machineV2FromInbox(added, sensor)
	v2.machine = &addedV2
	return "new machine " + sensor.field("machineName"), malop.set("machines", append(machines, machine))
}

// newMachineFor returns a sensor, not archived, that the MalOp does not list yet, or nil.
func (t *Tenant) newMachineFor(record *malopRecord) *sensorRecord {
	for _, index := range t.random.Perm(len(t.sensors)) {
		sensor := t.sensors[index]
		guid := sensor.field("guid")
		if guid != "" && sensor.field("status") != "Archived" && !slices.Contains(record.machineGUIDs, guid) {
			return sensor
		}
	}
	return nil
}

func (t *Tenant) closeMalop(index int, nowMs int64) string {
	record := t.malops[index]
	malop, err := parseObject(record.raw)
	if err != nil {
		return ""
	}
	closer := "soc.analyst@" + t.org + ".example"
	update := []memberUpdate{
		{name: "closed", value: true},
		{name: "status", value: "Closed"},
		{name: "malopStatus", value: "Closed"},
		{name: "malopCloseTime", value: nowMs},
		{name: "closerName", value: closer},
		{name: "lastUpdateTime", value: nowMs},
	}
	v2 := v2Change{updates: []memberUpdate{
		{name: "status", value: "Closed"},
		{name: "investigationStatus", value: "Closed"},
		{name: "closerName", value: closer},
		{name: "lastUpdateTime", value: nowMs},
		{name: "metadataUpdateTime", value: nowMs, ifPresent: true},
	}}
	if applyUpdates(malop, update) != nil || !t.replaceMalop(index, malop, v2) {
		return ""
	}
	return record.guid
}

// replaceMalop replaces the MalOp at index with the changed inbox object malop, and applies v2 to
// the v2 object that a loaded tenant stores with it. It reports whether the MalOp was replaced.
func (t *Tenant) replaceMalop(index int, malop *object, v2 v2Change) bool {
	record, err := newMalopRecord(malop.marshal())
	if err != nil {
		return false
	}
	if record.v2, err = applyV2Change(t.malops[index].v2, v2); err != nil {
		return false
	}
	t.malops[index] = record
	return true
}

// addMalop appends a MalOp created and updated at now. A loaded tenant also stores its v2
// object, converted from the inbox object.
func (t *Tenant) addMalop(now time.Time) string {
	g := t.generatorAt(now)
	record := mustMalopRecord(g.malop(t.sensors, g.now, g.now))
	if !t.feeds.derived {
		v2, err := t.convertInboxToV2(record, t.sensorsByGUID())
		if err != nil {
			return ""
		}
		record.v2 = v2
	}
	t.malops = append(t.malops, record)
	return record.guid
}

// generatorAt returns a generator that draws from the tenant's random source, for objects that
// Advance creates at now.
func (t *Tenant) generatorAt(now time.Time) *generator {
	g := &generator{
		random:       t.random,
		now:          now.UnixMilli(),
		organization: t.org,
		org:          strings.ToUpper(t.org),
		domain:       "corp." + t.org + ".example",
		hostnames:    make(map[string]bool),
		guids:        make(map[string]bool, len(t.malops)),
	}
	for _, malop := range t.malops {
		g.guids[malop.guid] = true
	}
	return g
}

// RemoveSensor removes the sensor with sensorId id and reports whether the tenant had it.
func (t *Tenant) RemoveSensor(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	index := slices.IndexFunc(t.sensors, func(s *sensorRecord) bool { return s.id == id })
	if index < 0 {
		return false
	}
	t.removeSensor(index)
	t.version++
	return true
}

// AddSensor adds a sensor object, which needs a sensorId that no sensor of the tenant has.
func (t *Tenant) AddSensor(raw json.RawMessage) error {
	record, err := newSensorRecord(raw)
	if err != nil {
		return fmt.Errorf("add sensor: %w", err)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if slices.ContainsFunc(t.sensors, func(s *sensorRecord) bool { return s.id == record.id }) {
		return fmt.Errorf("add sensor: sensorId %q already exists", record.id)
	}
	t.sensors = append(t.sensors, record)
	t.version++
	return nil
}
