package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/oversoc/cybereason-connector/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// publicTenant is the folder of published Cybereason API samples that sits
// beside the repository in the development workspace; it is not committed.
const publicTenant = "../../../shared/fixtures/cybereason/tenant-public"

func runDemo(t *testing.T, opts Options) (string, []record) {
	t.Helper()
	opts.RecordsFile = filepath.Join(t.TempDir(), "records.jsonl")

	var out strings.Builder
	if err := Run(context.Background(), opts, &out, nil); err != nil {
		t.Fatalf("demo: %v\noutput:\n%s", err, out.String())
	}
	return out.String(), readRecords(t, opts.RecordsFile)
}

func TestDemoGeneratedTenant(t *testing.T) {
	opts := Defaults()
	opts.Sensors, opts.Malops, opts.Partitions = 60, 8, 2
	output, records := runDemo(t, opts)

	for _, want := range []string{"Cycle 1", "Cycle 2", "Tenant advanced", "One record of oversoc.assets", "One record of oversoc.findings"} {
		if !strings.Contains(output, want) {
			t.Errorf("output lacks %q:\n%s", want, output)
		}
	}

	// Each cycle's source, enrich and dedupe lines count one end event per partition apart.
	if got := strings.Count(output, " 2 inventory end events"); got != 6 {
		t.Errorf("output names %q %d times, want 6:\n%s", "2 inventory end events", got, output)
	}

	validateAll(t, records)
	assertNoDuplicateIDs(t, records)

	assets := keysByTopic(records)["oversoc.assets"]
	findings := keysByTopic(records)["oversoc.findings"]
	// One sensor is removed in the second cycle but keeps its first record.
	if len(assets) != 60 {
		t.Errorf("%d distinct assets, want 60", len(assets))
	}
	// The second cycle adds one MalOp and one malware alert.
	malops, malware := countFindings(findings)
	if malops != 9 {
		t.Errorf("%d distinct MalOp findings, want 9", malops)
	}
	if malware < 2 {
		t.Errorf("%d distinct malware findings, want at least 2", malware)
	}

	republished := len(records) - len(assets) - len(findings) - len(keysByTopic(records)["oversoc.asset-security-state"])
	if republished < 3 || republished > 20 {
		t.Errorf("second cycle republished %d records, want the few that changed", republished)
	}
	assertLifecycle(t, output, records)
}

// protectionChange matches a protection change in the demo's summary of the
// tenant's changes, capturing the sensor id.
var protectionChange = regexp.MustCompile(`sensor (\S+) [A-Za-z]+ \S+ -> [^;\s]+`)

// statusFlip matches a sensor status flip in the same summary, capturing the
// sensor id and the new status.
var statusFlip = regexp.MustCompile(`sensor (\S+) (?:Online|Offline) -> (Online|Offline)`)

// assertLifecycle checks that the second cycle published the sensor that the
// tenant removed as a removed asset followed by its tombstone, and a
// security-state record for each protection feature it turned off or on.
func assertLifecycle(t *testing.T, output string, records []record) {
	t.Helper()
	var removed []string
	tombstoned := map[string]bool{}
	stateKeys := map[string]bool{}
	for _, rec := range records {
		switch {
		case rec.Topic == "oversoc.asset-security-state":
			stateKeys[rec.Key] = true
		case rec.Topic == "oversoc.assets" && string(rec.Value) == "null":
			tombstoned[rec.Key] = true
		case rec.Topic == "oversoc.assets":
			var asset schemas.Asset
			if err := json.Unmarshal(rec.Value, &asset); err != nil {
				t.Fatal(err)
			}
			if asset.Protection.LifecycleState == schemas.LifecycleRemoved {
				if tombstoned[rec.Key] {
					t.Errorf("asset %s: removed record after its tombstone", rec.Key)
				}
				removed = append(removed, rec.Key)
			}
		}
	}

	if len(removed) != 1 {
		t.Fatalf("%d removed assets, want the 1 sensor the tenant removed", len(removed))
	}
	if !strings.Contains(output, "sensor "+strings.TrimPrefix(removed[0], "cybereason:demo.cybereason.example:")+" removed") {
		t.Errorf("removed asset %s is not the sensor the tenant removed:\n%s", removed[0], output)
	}
	if !tombstoned[removed[0]] || len(tombstoned) != 1 {
		t.Errorf("tombstones for %v, want one for %s", tombstoned, removed[0])
	}
	// "sensor <id> <field> <from> -> <to>" is a protection change, and
	// "sensor <id> <from> -> <to>" a status flip, which must publish none.
	changed := map[string]bool{}
	for _, match := range protectionChange.FindAllStringSubmatch(output, -1) {
		changed["cybereason:demo.cybereason.example:"+match[1]] = true
	}
	if len(changed) == 0 || len(stateKeys) != len(changed) {
		t.Errorf("security-state records for %v, want one for each sensor whose protection changed: %v", stateKeys, changed)
	}
	for key := range stateKeys {
		if !changed[key] {
			t.Errorf("security-state record for %s, whose protection did not change", key)
		}
	}

	// A sensor that only went online or offline keeps its first record.
	flipped := statusFlip.FindAllStringSubmatch(output, -1)
	if len(flipped) == 0 {
		t.Errorf("the tenant flipped no sensor status:\n%s", output)
	}
	for _, match := range flipped {
		key := "cybereason:demo.cybereason.example:" + match[1]
		published := 0
		for _, rec := range records {
			if rec.Key == key {
				published++
			}
		}
		if published != 1 {
			t.Errorf("sensor %s that only went %s published %d records, want its first one only", match[1], match[2], published)
		}
	}
	if !strings.Contains(output, "followed by its tombstone") {
		t.Errorf("output does not show the removed asset and its tombstone:\n%s", output)
	}
}

func TestDemoPublishedSamples(t *testing.T) {
	if _, err := os.Stat(publicTenant); err != nil {
		t.Skipf("published samples not present at %s: %v", publicTenant, err)
	}

	opts := Defaults()
	opts.TenantDir = publicTenant
	_, records := runDemo(t, opts)

	validateAll(t, records)
	assertNoDuplicateIDs(t, records)

	keys := keysByTopic(records)
	if got := len(keys["oversoc.assets"]); got != 5 {
		t.Errorf("%d distinct assets, want the 5 published sensors", got)
	}
	// Four inbox MalOps and one MalOp management MalOp were published, and
	// the second cycle creates one more MalOp and one more malware alert.
	malops, malware := countFindings(keys["oversoc.findings"])
	if malops != 6 {
		t.Errorf("%d distinct MalOp findings, want 6", malops)
	}
	if malware != 2 {
		t.Errorf("%d distinct malware findings, want 2", malware)
	}
	published := []string{
		"malop:AAAA0yUlnvXGQODT", "malop:AAAA0ws7O-MUgDmB", "malop:11.1882697476172655933", "malop:11.-2600105145818681902",
		"malop:" + publishedV2Malop(t), "malware:" + publishedMalware(t),
	}
	for _, suffix := range published {
		if !keys["oversoc.findings"]["cybereason:demo.cybereason.example:"+suffix] {
			t.Errorf("no finding for published %s", suffix)
		}
	}
	assertDetailedFindings(t, records)
}

func TestDemoRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no sensors", func(o *Options) { o.Sensors = 0 }, "sensors"},
		{"no partitions", func(o *Options) { o.Partitions = 0 }, "partitions"},
		{"no timeout", func(o *Options) { o.Timeout = 0 }, "timeout"},
		{"missing tenant folder", func(o *Options) { o.TenantDir = filepath.Join(t.TempDir(), "absent") }, "absent"},
		{"read-only records file", func(o *Options) { o.RecordsFile = readOnlyFile(t) }, "already exists"},
		{"records file is a folder", func(o *Options) { o.RecordsFile = t.TempDir() }, "is a directory"},
		{"records folder missing", func(o *Options) { o.RecordsFile = filepath.Join(t.TempDir(), "absent", "records.jsonl") }, "does not exist"},
		{"records parent is a file", func(o *Options) { o.RecordsFile = filepath.Join(readOnlyFile(t), "records.jsonl") }, "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Defaults()
			tt.change(&opts)
			err := Run(context.Background(), opts, &strings.Builder{}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run error = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

// countFindings counts finding keys by kind.
func countFindings(keys map[string]bool) (malops, malware int) {
	for key := range keys {
		switch {
		case strings.Contains(key, ":malop:"):
			malops++
		case strings.Contains(key, ":malware:"):
			malware++
		}
	}
	return malops, malware
}

func publishedV2Malop(t *testing.T) string {
	t.Helper()
	return firstGUID(t, filepath.Join(publicTenant, "malops-v2.json"))
}

func publishedMalware(t *testing.T) string {
	t.Helper()
	return firstGUID(t, filepath.Join(publicTenant, "malware.json"))
}

func firstGUID(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objects []struct {
		GUID string `json:"guid"`
	}
	if err := json.Unmarshal(data, &objects); err != nil || len(objects) == 0 {
		t.Fatalf("read the first guid of %s: %v", path, err)
	}
	return objects[0].GUID
}

// assertDetailedFindings checks that the MalOps the published folder has
// details for reached their findings with machines, users and root cause.
func assertDetailedFindings(t *testing.T, records []record) {
	t.Helper()
	detailed := map[string]bool{"11.1882697476172655933": false, "11.-2600105145818681902": false}
	for _, rec := range records {
		var finding struct {
			FindingInfo struct {
				UID string `json:"uid"`
			} `json:"finding_info"`
			Devices     []json.RawMessage `json:"devices"`
			Users       []json.RawMessage `json:"users"`
			Observables []json.RawMessage `json:"observables"`
		}
		if rec.Topic != "oversoc.findings" || json.Unmarshal(rec.Value, &finding) != nil {
			continue
		}
		if _, ok := detailed[finding.FindingInfo.UID]; ok && len(finding.Devices) > 0 && len(finding.Users) > 0 && len(finding.Observables) > 0 {
			detailed[finding.FindingInfo.UID] = true
		}
	}
	for guid, ok := range detailed {
		if !ok {
			t.Errorf("finding of MalOp %s lacks machines, users or root cause although the folder has its details", guid)
		}
	}
}

func readOnlyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "protected.json")
	if err := os.WriteFile(path, []byte("[]"), 0o444); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDemoWithoutMalops(t *testing.T) {
	opts := Defaults()
	opts.Sensors, opts.Malops, opts.Partitions = 10, 0, 1
	output, records := runDemo(t, opts)

	if !strings.Contains(output, "0 MalOps") {
		t.Errorf("output does not report 0 MalOps:\n%s", output)
	}
	if got := len(keysByTopic(records)["oversoc.assets"]); got != 10 {
		t.Errorf("%d distinct assets, want 10", got)
	}
}

func readRecords(t *testing.T, path string) []record {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	var records []record
	scanner := bufio.NewScanner(file)
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		var rec record
		if err := json.Unmarshal(scanner.Bytes(), &rec); err != nil {
			t.Fatalf("records file line %d: %v", len(records)+1, err)
		}
		records = append(records, rec)
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return records
}

func validateAll(t *testing.T, records []record) {
	t.Helper()
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]schemas.Kind{
		"oversoc.assets":               schemas.KindAsset,
		"oversoc.findings":             schemas.KindFinding,
		"oversoc.asset-security-state": schemas.KindAssetSecurityState,
	}

	for _, rec := range records {
		kind, ok := kinds[rec.Topic]
		if !ok {
			t.Errorf("record on unexpected topic %q", rec.Topic)
			continue
		}
		if string(rec.Value) == "null" {
			// A tombstone has no value, so it names no schema.
			if schema, ok := rec.Headers["ce_dataschema"]; ok {
				t.Errorf("%s %s: tombstone carries ce_dataschema %q", rec.Topic, rec.Key, schema)
			}
			continue
		}
		if err := validator.Validate(kind, rec.Value); err != nil {
			t.Errorf("%s %s: %v", rec.Topic, rec.Key, err)
		}
		if rec.Headers["ce_dataschema"] != schemas.SchemaID(kind) {
			t.Errorf("%s %s: ce_dataschema %q, want %q", rec.Topic, rec.Key, rec.Headers["ce_dataschema"], schemas.SchemaID(kind))
		}
		if !strings.HasPrefix(rec.Headers["ce_id"], rec.Key+"#") {
			t.Errorf("%s %s: ce_id %q does not start with the key", rec.Topic, rec.Key, rec.Headers["ce_id"])
		}
	}
}

// assertNoDuplicateIDs checks that dedupe never republished an unchanged
// record: no (key, ce_id) pair appears twice on a final topic.
func assertNoDuplicateIDs(t *testing.T, records []record) {
	t.Helper()
	seen := map[string]bool{}
	for _, rec := range records {
		id := rec.Topic + " " + rec.Key + " " + rec.Headers["ce_id"]
		if seen[id] {
			t.Errorf("record published twice: %s", id)
		}
		seen[id] = true
	}
}

func keysByTopic(records []record) map[string]map[string]bool {
	keys := map[string]map[string]bool{}
	for _, rec := range records {
		if keys[rec.Topic] == nil {
			keys[rec.Topic] = map[string]bool{}
		}
		keys[rec.Topic][rec.Key] = true
	}
	return keys
}

// TestRecordsKeepValueText checks that the records file and the printed
// example hold each value as the topic does, with <, > and & unescaped.
func TestRecordsKeepValueText(t *testing.T) {
	const value = `{"department":"R&D <lab>"}`
	records := []record{{Topic: "oversoc.assets", Key: "a&b", Headers: map[string]string{"ce_id": "a&b#1"}, Value: json.RawMessage(value)}}

	path := filepath.Join(t.TempDir(), "records.jsonl")
	if err := writeRecords(path, records); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"topic":"oversoc.assets","key":"a&b","headers":{"ce_id":"a&b#1"},"value":` + value + "}\n"
	if string(written) != want {
		t.Errorf("records file:\n%s\nwant:\n%s", written, want)
	}

	var printed strings.Builder
	printExamples(&printed, records, "oversoc.assets")
	if !strings.Contains(printed.String(), `"department": "R&D <lab>"`) {
		t.Errorf("printed example lacks the value's text unescaped:\n%s", printed.String())
	}
}
