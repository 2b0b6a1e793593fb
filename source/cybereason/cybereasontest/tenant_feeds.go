package cybereasontest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Optional files and folders that LoadTenant reads when they exist.
const (
	MalopsV2File = "malops-v2.json" // the data.data array items of POST /rest/mmng/v2/malops
	MalwareFile  = "malware.json"   // the data.malwares array items of POST /rest/malware/query
	PoliciesFile = "policies.json"  // the policies array items of GET /rest/policies
	// CrimesDir contains <guid>.json files, each a whole POST /rest/crimes/unified response for the
	// MalopProcess element of one MalOp.
	CrimesDir = "crimes"
	// DetailsDir contains <guid>.json files, each a POST /rest/detection/details response for one EPP
	// MalOp.
	DetailsDir = "details"
)

// CrimesFile returns the name of the optional file that contains a whole POST /rest/crimes/unified
// response for the requestedType MalopProcess or MalopLogonSession, whose elements are the
// details of EDR MalOps by guid, e.g. "crimes-unified-MalopProcess.json".
func CrimesFile(requestedType string) string {
	return "crimes-unified-" + requestedType + ".json"
}

// malwareRecord is one malware alert of a tenant. Like sensorRecord, it is never modified.
type malwareRecord struct {
	guid      string
	timestamp int64 // epoch milliseconds
	fields    map[string]string
	raw       json.RawMessage // compact JSON object, served as it is
}

// malwareFilterFields are the members of a malware alert that queries can filter on, besides
// timestamp.
var malwareFilterFields = []string{"needsAttention", "type", "status", "elementType", "detectionEngine", "machineName", "guid"}

func newMalwareRecord(raw json.RawMessage) (*malwareRecord, error) {
	compact, err := compactJSON(raw)
	if err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(compact, &members); err != nil {
		return nil, err
	}
	record := &malwareRecord{raw: compact, fields: make(map[string]string, len(malwareFilterFields))}
	for _, name := range malwareFilterFields {
		record.fields[name] = textValue(members[name])
	}
	if err := json.Unmarshal(members["guid"], &record.guid); err != nil || record.guid == "" {
		return nil, fmt.Errorf("guid %s is not a non-empty string", members["guid"])
	}
	if record.timestamp, err = epochMillis(members["timestamp"]); err != nil || record.timestamp == 0 {
		return nil, fmt.Errorf("malware alert %s: timestamp %s is not epoch milliseconds", record.guid, members["timestamp"])
	}
	return record, nil
}

// tenantFeeds are the feeds of a tenant besides sensors and inbox MalOps.
type tenantFeeds struct {
	// derived is true for generated tenants, whose v2 views and details are derived from the
	// inbox MalOps when served. A loaded tenant serves the v2 objects that its MalOp records
	// store, and only the details that its files contain.
	derived bool

	labels labelTable // label ids of a loaded tenant's v2 objects
	// crimesResponses are whole crimes/unified responses for one MalOp's MalopProcess element,
	// by guid, served as loaded when a query requests that guid alone.
	crimesResponses map[string]json.RawMessage
	// crimesElements are EDR MalOp elements by requestedType and guid.
	crimesElements   map[string]map[string]json.RawMessage
	detectionDetails map[string]json.RawMessage // detection/details responses by guid

	malware  []*malwareRecord
	policies []json.RawMessage
}

// loadFeeds reads the optional feed files of a tenant folder. A folder without PoliciesFile gets
// one policy per distinct policyId of its sensors, with the policy name and sensor counts only.
func (t *Tenant) loadFeeds(dir string) error {
	t.feeds = tenantFeeds{
		crimesResponses:  make(map[string]json.RawMessage),
		crimesElements:   make(map[string]map[string]json.RawMessage),
		detectionDetails: make(map[string]json.RawMessage),
	}

	v2, err := readOptionalObjects(filepath.Join(dir, MalopsV2File))
	if err != nil {
		return err
	}
	if err := t.pairMalopViews(filepath.Join(dir, MalopsV2File), v2); err != nil {
		return err
	}

	malware, err := readOptionalObjects(filepath.Join(dir, MalwareFile))
	if err != nil {
		return err
	}
	for i, raw := range malware {
		record, err := newMalwareRecord(raw)
		if err != nil {
			return fmt.Errorf("%s: element %d: %w", filepath.Join(dir, MalwareFile), i, err)
		}
		t.feeds.malware = append(t.feeds.malware, record)
	}

	if err := t.loadPolicies(dir); err != nil {
		return err
	}
	for _, requestedType := range crimesTypes {
		if err := t.loadCrimesFile(filepath.Join(dir, CrimesFile(requestedType)), requestedType); err != nil {
			return err
		}
	}
	if err := t.loadCrimesDir(filepath.Join(dir, CrimesDir)); err != nil {
		return err
	}
	return t.loadDetailsDir(filepath.Join(dir, DetailsDir))
}

// crimesTypes are the requestedTypes of EDR MalOps in crimes/unified queries.
var crimesTypes = []string{"MalopProcess", "MalopLogonSession"}

func (t *Tenant) loadPolicies(dir string) error {
	policies, err := readOptionalObjects(filepath.Join(dir, PoliciesFile))
	if err != nil {
		return err
	}
	if policies == nil {
		t.feeds.policies = policyList(t.sensors, nil)
		return nil
	}
	for i, raw := range policies {
		compact, err := compactJSON(raw)
		if err != nil {
			return fmt.Errorf("%s: element %d: %w", filepath.Join(dir, PoliciesFile), i, err)
		}
		t.feeds.policies = append(t.feeds.policies, compact)
	}
	return nil
}

// readOptionalObjects reads a JSON array of objects, or returns nil when the file does not exist.
func readOptionalObjects(path string) ([]json.RawMessage, error) {
	items, err := readObjects(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil && items == nil {
		items = []json.RawMessage{}
	}
	return items, err
}

// crimesFileBody is the part of a crimes/unified response that a tenant indexes.
type crimesFileBody struct {
	Data *struct {
		Elements map[string]json.RawMessage `json:"resultIdToElementDataMap"`
	} `json:"data"`
}

// readCrimesResponse reads a whole crimes/unified response and returns it compacted, with its
// elements by guid.
func readCrimesResponse(path string) (json.RawMessage, map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	compact, err := compactJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var body crimesFileBody
	if err := json.Unmarshal(compact, &body); err != nil || body.Data == nil || body.Data.Elements == nil {
		return nil, nil, fmt.Errorf("%s: expected a crimes/unified response with data.resultIdToElementDataMap", path)
	}
	return compact, body.Data.Elements, nil
}

func (t *Tenant) loadCrimesFile(path, requestedType string) error {
	_, elements, err := readCrimesResponse(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	t.addCrimesElements(requestedType, elements)
	return nil
}

func (t *Tenant) addCrimesElements(requestedType string, elements map[string]json.RawMessage) {
	byGUID := t.feeds.crimesElements[requestedType]
	if byGUID == nil {
		byGUID = make(map[string]json.RawMessage, len(elements))
		t.feeds.crimesElements[requestedType] = byGUID
	}
	for guid, element := range elements {
		byGUID[guid] = element
	}
}

func (t *Tenant) loadCrimesDir(dir string) error {
	return forEachGUIDFile(dir, func(guid, path string) error {
		whole, elements, err := readCrimesResponse(path)
		if err != nil {
			return err
		}
		if _, ok := elements[guid]; !ok {
			return fmt.Errorf("%s: data.resultIdToElementDataMap has no element %q", path, guid)
		}
		t.feeds.crimesResponses[guid] = whole
		t.addCrimesElements("MalopProcess", map[string]json.RawMessage{guid: elements[guid]})
		return nil
	})
}

func (t *Tenant) loadDetailsDir(dir string) error {
	return forEachGUIDFile(dir, func(guid, path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		compact, err := compactJSON(data)
		if err != nil || !bytes.HasPrefix(compact, []byte("{")) {
			return fmt.Errorf("%s: expected a detection/details JSON object", path)
		}
		t.feeds.detectionDetails[guid] = compact
		return nil
	})
}

// forEachGUIDFile calls fn for each <guid>.json file of dir, in name order. A missing dir has
// no files.
func forEachGUIDFile(dir string, fn func(guid, path string) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, entry := range entries {
		guid, ok := strings.CutSuffix(entry.Name(), ".json")
		if !ok || entry.IsDir() || guid == "" {
			continue
		}
		if err := fn(guid, filepath.Join(dir, entry.Name())); err != nil {
			return err
		}
	}
	return nil
}

// MalopsV2 returns copies of the MalOp management (v2) objects the console serves, oldest
// lastUpdateTime first, one for each MalOp of Malops. A generated tenant derives them from its
// inbox MalOps. A loaded tenant serves the objects of MalopsV2File and conversions of the other
// MalOps (see LoadTenant). Both follow Advance.
func (t *Tenant) MalopsV2() []json.RawMessage {
	return t.malopsV2Window(minInt64, maxInt64)
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// Malware returns copies of the malware alert objects, in tenant order.
func (t *Tenant) Malware() []json.RawMessage {
	t.mu.RLock()
	defer t.mu.RUnlock()

	objects := make([]json.RawMessage, len(t.feeds.malware))
	for i, alert := range t.feeds.malware {
		objects[i] = bytes.Clone(alert.raw)
	}
	return objects
}

// Policies returns copies of the policy list items.
func (t *Tenant) Policies() []json.RawMessage {
	t.mu.RLock()
	defer t.mu.RUnlock()

	objects := make([]json.RawMessage, len(t.feeds.policies))
	for i, policy := range t.feeds.policies {
		objects[i] = bytes.Clone(policy)
	}
	return objects
}

// malopsV2Window returns the v2 MalOps last updated in [from, to], oldest first.
func (t *Tenant) malopsV2Window(from, to int64) []json.RawMessage {
	t.mu.RLock()
	defer t.mu.RUnlock()

	// A loaded tenant's records store their v2 objects, whose times can differ from those of
	// the inbox objects. A generated tenant's v2 objects have the times of the inbox objects.
	view := func(record *malopRecord) *malopRecord {
		if record.v2 != nil {
			return record.v2
		}
		return record
	}
	var selected []*malopRecord
	for _, record := range t.malops {
		if v2 := view(record); v2.lastUpdate >= from && v2.lastUpdate <= to {
			selected = append(selected, record)
		}
	}
	slices.SortStableFunc(selected, func(a, b *malopRecord) int {
		return cmp.Or(cmp.Compare(view(a).lastUpdate, view(b).lastUpdate), cmp.Compare(a.guid, b.guid))
	})

	var sensors map[string]*sensorRecord
	objects := make([]json.RawMessage, 0, len(selected))
	for _, record := range selected {
		if record.v2 != nil {
			objects = append(objects, bytes.Clone(record.v2.raw))
			continue
		}
		if sensors == nil {
			sensors = t.sensorsByGUID()
		}
		var inbox malopDoc
		if json.Unmarshal(record.raw, &inbox) != nil {
			continue
		}
		raw, err := json.Marshal(malopV2View(inbox, sensors))
		if err == nil {
			objects = append(objects, raw)
		}
	}
	return objects
}

// sensorsByGUID indexes the sensors by their machine guid. The caller holds t.mu.
func (t *Tenant) sensorsByGUID() map[string]*sensorRecord {
	byGUID := make(map[string]*sensorRecord, len(t.sensors))
	for _, sensor := range t.sensors {
		byGUID[sensor.field("guid")] = sensor
	}
	return byGUID
}

// crimes returns the EDR MalOp elements of requestedType for guids, or of every MalOp of that
// type when guids is empty. When guids names one MalOp whose whole response was loaded, whole is
// that response.
func (t *Tenant) crimes(requestedType string, guids []string) (elements map[string]json.RawMessage, whole json.RawMessage) {
	t.mu.RLock()
	defer t.mu.RUnlock()

	if len(guids) == 1 && requestedType == "MalopProcess" {
		if response, ok := t.feeds.crimesResponses[guids[0]]; ok {
			return nil, response
		}
	}
	elements = make(map[string]json.RawMessage)
	selected := func(guid string) bool { return len(guids) == 0 || slices.Contains(guids, guid) }
	if !t.feeds.derived {
		for guid, element := range t.feeds.crimesElements[requestedType] {
			if selected(guid) {
				elements[guid] = element
			}
		}
		return elements, nil
	}

	for _, record := range t.malops {
		var inbox malopDoc
		if !selected(record.guid) || json.Unmarshal(record.raw, &inbox) != nil || !inbox.EDR {
			continue
		}
		elementType, element := crimesElement(inbox)
		if elementType != requestedType {
			continue
		}
		if raw, err := json.Marshal(element); err == nil {
			elements[record.guid] = raw
		}
	}
	return elements, nil
}

// detectionDetailsOf returns the detection/details response of an EPP MalOp.
func (t *Tenant) detectionDetailsOf(guid string) (json.RawMessage, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()

	if !t.feeds.derived {
		details, ok := t.feeds.detectionDetails[guid]
		return details, ok
	}
	for _, record := range t.malops {
		if record.guid != guid {
			continue
		}
		var inbox malopDoc
		if json.Unmarshal(record.raw, &inbox) != nil || inbox.EDR {
			return nil, false
		}
		details, err := detectionDetails(record.raw, inbox, t.sensorsByGUID())
		return details, err == nil
	}
	return nil, false
}

// malwareAlerts returns the alerts that pass keep, by timestamp (newest first when descending),
// in tenant order for equal timestamps.
func (t *Tenant) malwareAlerts(keep func(*malwareRecord) bool, descending bool) []json.RawMessage {
	t.mu.RLock()
	defer t.mu.RUnlock()

	var selected []*malwareRecord
	for _, alert := range t.feeds.malware {
		if keep(alert) {
			selected = append(selected, alert)
		}
	}
	slices.SortStableFunc(selected, func(a, b *malwareRecord) int {
		if descending {
			return cmp.Compare(b.timestamp, a.timestamp)
		}
		return cmp.Compare(a.timestamp, b.timestamp)
	})
	objects := make([]json.RawMessage, len(selected))
	for i, alert := range selected {
		objects[i] = alert.raw
	}
	return objects
}

// extraMalware returns count alerts that the tenant does not hold, drawn from the page index, for
// paging that never ends.
func (t *Tenant) extraMalware(index, count int) []json.RawMessage {
	t.mu.RLock()
	defer t.mu.RUnlock()

	g := &generator{random: newRandom(int64(index), 4), now: 1_700_000_000_000}
	objects := make([]json.RawMessage, 0, count)
	for range count {
		objects = append(objects, mustMalwareRecord(g.malwareAlert(t.sensors, g.now)).raw)
	}
	return objects
}

// OldestAlertTime returns the earliest creationTime or lastUpdateTime of any inbox or v2 MalOp
// and the earliest malware alert timestamp, or the zero time when the tenant has none. Windows
// that start before it return every MalOp and malware alert.
func (t *Tenant) OldestAlertTime() time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()

	oldest, found := int64(maxInt64), false
	for _, malop := range t.malops {
		oldest, found = min(oldest, malop.creation, malop.lastUpdate), true
		if malop.v2 != nil {
			oldest = min(oldest, malop.v2.creation, malop.v2.lastUpdate)
		}
	}
	for _, alert := range t.feeds.malware {
		oldest, found = min(oldest, alert.timestamp), true
	}
	if !found {
		return time.Time{}
	}
	return time.UnixMilli(oldest).UTC()
}
