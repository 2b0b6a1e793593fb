// Package cybereasontest provides a fake Cybereason EDR console for tests and demos, in the manner
// of net/http/httptest. It serves a tenant, generated from a seed or loaded from a folder of
// recorded API objects, with the console's login flow, session cookies, response shapes and
// errors. It can also inject faults, such as expired sessions, HTML login pages where JSON is
// expected, and sensor paging that never ends.
package cybereasontest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Files that LoadTenant reads. Other files in the folder are ignored.
const (
	SensorsFile = "sensors.json"      // the "sensors" array items of POST /rest/sensors/query
	MalopsFile  = "malops-inbox.json" // the "malops" array items of POST /rest/detection/inbox
)

// filterableFields are the sensor fields that sensors queries can filter and sort on.
var filterableFields = [...]string{
	"sensorId", "pylumId", "guid", "machineName", "fqdn", "internalIpAddress", "externalIpAddress",
	"status", "serviceStatus", "osType", "osVersionType", "collectionStatus", "policyId", "policyName",
	"groupId", "groupName", "siteName", "organization", "version", "isolated", "disconnected",
	"outdated", "compliance",
}

// fieldIndex returns the position of a field in filterableFields.
func fieldIndex(name string) (int, bool) {
	for i, field := range filterableFields {
		if field == name {
			return i, true
		}
	}
	return 0, false
}

// sensorRecord is one sensor of a tenant. A record is never modified once a tenant holds it:
// a change replaces it, so console requests can keep using a snapshot.
type sensorRecord struct {
	id     string
	raw    json.RawMessage               // compact JSON object, served as it is
	fields [len(filterableFields)]string // filterableFields as text: strings unquoted, null as ""
}

func (s *sensorRecord) field(name string) string {
	if i, ok := fieldIndex(name); ok {
		return s.fields[i]
	}
	return ""
}

// malopRecord is one MalOp of a tenant. Like sensorRecord, it is replaced, never modified.
type malopRecord struct {
	guid         string
	creation     int64 // epoch milliseconds
	lastUpdate   int64 // epoch milliseconds
	group        string
	closed       bool
	machineGUIDs []string
	raw          json.RawMessage // compact JSON object, served as it is
	// v2 is the MalOp management (v2) object of the MalOp in a loaded tenant, and nil in a
	// generated tenant, which derives that object when served.
	v2 *malopRecord
}

// Tenant is the data of one console, its sensors and MalOps. It is safe for concurrent use, and
// each Advance is one atomic change for a console that serves the tenant.
type Tenant struct {
	mu      sync.RWMutex
	version uint64 // increases with each change, so console caches know when to drop results
	sensors []*sensorRecord
	malops  []*malopRecord
	random  *rand.Rand // drives Advance
	org     string     // organization name for MalOps that Advance creates
	feeds   tenantFeeds
}

func newTenant(seed int64, org string) *Tenant {
	return &Tenant{random: newRandom(seed, 1), org: org}
}

func newRandom(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// LoadTenant reads a tenant from dir: SensorsFile, a JSON array of sensor objects, and
// MalopsFile, a JSON array of MalopInboxModel objects. Both files are required. The objects are
// served with their content unchanged (only blanks are removed). Every sensor needs a unique
// non-empty sensorId and every MalOp a unique guid and a creationTime or lastUpdateTime.
//
// These are optional: MalopsV2File, MalwareFile, PoliciesFile, CrimesFile for MalopProcess and
// MalopLogonSession, and the <guid>.json files of CrimesDir and DetailsDir. MalopsFile and
// MalopsV2File are two views of one set of MalOps, as a real console serves them: each view
// serves the objects of its file, plus the MalOps that only the other file has, converted to its
// shape. The tenant's MalOps are those of MalopsFile, then those only in MalopsV2File. The
// console serves MalOp details from the crimes and details files only. Without PoliciesFile, it
// serves one policy per distinct policyId of the sensors, with policyName and sensor counts only.
func LoadTenant(dir string) (*Tenant, error) {
	sensorsPath := filepath.Join(dir, SensorsFile)
	sensors, err := readObjects(sensorsPath)
	if err != nil {
		return nil, fmt.Errorf("load tenant: %w", err)
	}
	malopsPath := filepath.Join(dir, MalopsFile)
	malops, err := readObjects(malopsPath)
	if err != nil {
		return nil, fmt.Errorf("load tenant: %w", err)
	}

	t := newTenant(1, "example")
	seenSensors := make(map[string]bool, len(sensors))
	for i, raw := range sensors {
		record, err := newSensorRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("load tenant: %s: element %d: %w", sensorsPath, i, err)
		}
		if seenSensors[record.id] {
			return nil, fmt.Errorf("load tenant: %s: element %d: duplicate sensorId %q", sensorsPath, i, record.id)
		}
		seenSensors[record.id] = true
		t.sensors = append(t.sensors, record)
	}

	seenMalops := make(map[string]bool, len(malops))
	for i, raw := range malops {
		record, err := newMalopRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("load tenant: %s: element %d: %w", malopsPath, i, err)
		}
		if seenMalops[record.guid] {
			return nil, fmt.Errorf("load tenant: %s: element %d: duplicate guid %q", malopsPath, i, record.guid)
		}
		seenMalops[record.guid] = true
		t.malops = append(t.malops, record)
	}

	if len(t.sensors) > 0 && t.sensors[0].field("organization") != "" {
		t.org = t.sensors[0].field("organization")
	}
	if err := t.loadFeeds(dir); err != nil {
		return nil, fmt.Errorf("load tenant: %w", err)
	}
	return t, nil
}

// readObjects reads a file that contains a JSON array of objects.
func readObjects(path string) ([]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("%s: expected a JSON array of objects: %w", path, err)
	}
	for i, item := range items {
		if !bytes.HasPrefix(bytes.TrimSpace(item), []byte("{")) {
			return nil, fmt.Errorf("%s: element %d is not a JSON object", path, i)
		}
	}
	return items, nil
}

func newSensorRecord(raw json.RawMessage) (*sensorRecord, error) {
	compact, err := compactJSON(raw)
	if err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(compact, &members); err != nil {
		return nil, err
	}

	record := &sensorRecord{raw: compact}
	for i, name := range filterableFields {
		record.fields[i] = textValue(members[name])
	}
	if _, ok := members["sensorId"]; !ok {
		return nil, errors.New("sensorId is missing")
	}
	if err := json.Unmarshal(members["sensorId"], &record.id); err != nil || record.id == "" {
		return nil, fmt.Errorf("sensorId %s is not a non-empty string", members["sensorId"])
	}
	return record, nil
}

func newMalopRecord(raw json.RawMessage) (*malopRecord, error) {
	compact, err := compactJSON(raw)
	if err != nil {
		return nil, err
	}
	var fields struct {
		GUID           json.RawMessage `json:"guid"`
		CreationTime   json.RawMessage `json:"creationTime"`
		LastUpdateTime json.RawMessage `json:"lastUpdateTime"`
		Group          json.RawMessage `json:"group"`
		Closed         json.RawMessage `json:"closed"`
		Machines       []struct {
			GUID json.RawMessage `json:"guid"`
		} `json:"machines"`
	}
	if err := json.Unmarshal(compact, &fields); err != nil {
		return nil, fmt.Errorf("not a MalOp object with a machines array: %w", err)
	}

	record := &malopRecord{raw: compact, group: textValue(fields.Group), closed: textValue(fields.Closed) == "true"}
	if err := json.Unmarshal(fields.GUID, &record.guid); err != nil || record.guid == "" {
		if len(fields.GUID) == 0 {
			return nil, errors.New("guid is missing")
		}
		return nil, fmt.Errorf("guid %s is not a non-empty string", fields.GUID)
	}
	if record.creation, err = epochMillis(fields.CreationTime); err != nil {
		return nil, fmt.Errorf("MalOp %s: creationTime: %w", record.guid, err)
	}
	if record.lastUpdate, err = epochMillis(fields.LastUpdateTime); err != nil {
		return nil, fmt.Errorf("MalOp %s: lastUpdateTime: %w", record.guid, err)
	}
	switch {
	case record.creation == 0 && record.lastUpdate == 0:
		return nil, fmt.Errorf("MalOp %s has neither creationTime nor lastUpdateTime", record.guid)
	case record.creation == 0:
		record.creation = record.lastUpdate
	case record.lastUpdate == 0:
		record.lastUpdate = record.creation
	}
	for _, machine := range fields.Machines {
		if guid := textValue(machine.GUID); guid != "" {
			record.machineGUIDs = append(record.machineGUIDs, guid)
		}
	}
	return record, nil
}

func compactJSON(raw []byte) (json.RawMessage, error) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

// textValue returns a JSON scalar as text: a string unquoted, null or a missing value as "", and
// numbers and booleans as written.
func textValue(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var text string
		if json.Unmarshal(raw, &text) == nil {
			return text
		}
	}
	return string(raw)
}

// epochMillis reads epoch milliseconds sent as a number or a numeric string. Missing or null is 0.
func epochMillis(raw json.RawMessage) (int64, error) {
	text := textValue(raw)
	if text == "" {
		return 0, nil
	}
	ms, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not epoch milliseconds", raw)
	}
	return ms, nil
}

// SensorIDs returns the sensorIds of the tenant, in tenant order.
func (t *Tenant) SensorIDs() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()

	ids := make([]string, len(t.sensors))
	for i, sensor := range t.sensors {
		ids[i] = sensor.id
	}
	return ids
}

// Sensors returns copies of the sensor objects, in tenant order.
func (t *Tenant) Sensors() []json.RawMessage {
	t.mu.RLock()
	defer t.mu.RUnlock()

	objects := make([]json.RawMessage, len(t.sensors))
	for i, sensor := range t.sensors {
		objects[i] = bytes.Clone(sensor.raw)
	}
	return objects
}

// Malops returns copies of the MalopInboxModel objects, in tenant order.
func (t *Tenant) Malops() []json.RawMessage {
	t.mu.RLock()
	defer t.mu.RUnlock()

	objects := make([]json.RawMessage, len(t.malops))
	for i, malop := range t.malops {
		objects[i] = bytes.Clone(malop.raw)
	}
	return objects
}

// SensorCount returns the number of sensors.
func (t *Tenant) SensorCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.sensors)
}

// MalopCount returns the number of MalOps.
func (t *Tenant) MalopCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.malops)
}

// OldestMalopTime returns the earliest creationTime or lastUpdateTime of any MalOp, or the zero
// time when the tenant has no MalOps. An inbox window that starts before it returns every MalOp.
func (t *Tenant) OldestMalopTime() time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()

	if len(t.malops) == 0 {
		return time.Time{}
	}
	oldest := t.malops[0].creation
	for _, malop := range t.malops {
		oldest = min(oldest, malop.creation, malop.lastUpdate)
	}
	return time.UnixMilli(oldest).UTC()
}

// snapshotSensors returns the current sensors and the version they belong to.
func (t *Tenant) snapshotSensors() (uint64, []*sensorRecord) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.version, append([]*sensorRecord(nil), t.sensors...)
}
