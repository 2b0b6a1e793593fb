package schemas

import (
	"cmp"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// embeddedVersions returns the version folders under oversoc/, sorted.
func embeddedVersions(t testing.TB) []string {
	t.Helper()
	entries, err := fs.ReadDir(schemaFiles, "oversoc")
	if err != nil {
		t.Fatalf("read embedded oversoc folder: %v", err)
	}
	var versions []string
	for _, entry := range entries {
		if entry.IsDir() {
			versions = append(versions, entry.Name())
		}
	}
	sort.Strings(versions)
	return versions
}

func TestEmbeddedSchemasCompile(t *testing.T) {
	versions := embeddedVersions(t)
	if !slices.Contains(versions, Version) {
		t.Fatalf("embedded versions %v do not include Version %s", versions, Version)
	}
	for _, version := range versions {
		if _, err := newValidator(version); err != nil {
			t.Errorf("compile version %s: %v", version, err)
		}
		for _, name := range []string{"common", "asset", "finding"} { // every 1.x version has these
			if _, err := fs.Stat(schemaFiles, schemaPath(version, name)); err != nil {
				t.Errorf("version %s lacks %s.schema.json: %v", version, name, err)
			}
		}
	}
}

func TestEmbeddedSchemaIDsMatchPaths(t *testing.T) {
	paths, err := fs.Glob(schemaFiles, "oversoc/*/*.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		data, err := schemaFiles.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if want := "https://schemas.oversoc.com/" + p; doc.ID != want {
			t.Errorf("%s: $id = %q, want %q", p, doc.ID, want)
		}
		if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %q, want draft 2020-12", p, doc.Schema)
		}
	}
}

func TestSchemaID(t *testing.T) {
	tests := []struct {
		kind Kind
		want string
	}{
		{KindAsset, "https://schemas.oversoc.com/oversoc/1.1.0/asset.schema.json"},
		{KindFinding, "https://schemas.oversoc.com/oversoc/1.1.0/finding.schema.json"},
		{KindAssetSecurityState, "https://schemas.oversoc.com/oversoc/1.1.0/asset-security-state.schema.json"},
		{Kind("policy"), ""},
	}
	for _, tt := range tests {
		if got := SchemaID(tt.kind); got != tt.want {
			t.Errorf("SchemaID(%q) = %q, want %q", tt.kind, got, tt.want)
		}
	}
}

// examples returns the example records in testdata/<version>/, keyed by file path. The kind of a
// record is the file name up to the first '-'.
func examples(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no example records in testdata/*/")
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = data
	}
	return out
}

// exampleKind returns the kind that the example's file name starts with, the longest one when
// several match ("asset-security-state-x.json" is not an "asset"), or "" for none.
func exampleKind(p string) Kind {
	base := filepath.Base(p)
	var found Kind
	for _, kind := range kinds() {
		if strings.HasPrefix(base, string(kind)+"-") && len(kind) > len(found) {
			found = kind
		}
	}
	return found
}

// TestExamplesValidate checks every example record against the schemas of its own version and of
// every later version with the same major number, the backward-compatibility promise of a minor
// release.
func TestExamplesValidate(t *testing.T) {
	versions := embeddedVersions(t)
	for p, data := range examples(t) {
		recordVersion := filepath.Base(filepath.Dir(p))
		kind := exampleKind(p)
		if !kind.valid() {
			t.Fatalf("%s: file name does not start with a record kind", p)
		}
		for _, version := range versions {
			if major(version) != major(recordVersion) || compareVersions(version, recordVersion) < 0 {
				continue
			}
			v, err := newValidator(version)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(kind, data); err != nil {
				t.Errorf("%s against schemas %s: %v", p, version, err)
			}
		}
	}
}

func major(version string) string {
	m, _, _ := strings.Cut(version, ".")
	return m
}

// compareVersions compares two MAJOR.MINOR.PATCH versions numerically.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(as), len(bs)) {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(as), len(bs))
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0},
		{"1.9.0", "1.10.0", -1},
		{"1.10.0", "1.9.3", 1},
		{"2.0.0", "1.99.99", 1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// brokenRecord is an example record of testdata/<Version>/ with one member set or removed so that
// it breaks its schema.
type brokenRecord struct {
	name        string
	example     string
	pointer     string
	value       any // nil deletes the member
	wantPointer string
}

// brokenRecords lists one record per kind of schema violation, with the pointer of the violation.
var brokenRecords = []brokenRecord{
	{"unknown top-level field", "asset-full.json", "/colour", "blue", "/colour"},
	{"unknown nested field", "asset-full.json", "/protection/fw", "off", "/protection/fw"},
	{"unknown raw field", "asset-full.json", "/protection/raw/newStatus", "X", "/protection/raw/newStatus"},
	{"zero time", "asset-full.json", "/time", 0, "/time"},
	{"zero processed time", "finding-edr.json", "/metadata/processed_time", 0, "/metadata/processed_time"},
	{"zero first seen", "asset-full.json", "/device/first_seen_time", 0, "/device/first_seen_time"},
	{"bad sensor status", "asset-full.json", "/protection/sensor_status", "flapping", "/protection/sensor_status"},
	{"bad feature state", "asset-full.json", "/protection/prevention", "ENABLED", "/protection/prevention"},
	{"bad os type", "asset-full.json", "/device/os/type_id", 7, "/device/os/type_id"},
	{"bad status id", "finding-edr.json", "/status_id", 7, "/status_id"},
	{"masked ip", "asset-full.json", "/device/ip", "<internal_ip_address>", "/device/ip"},
	{"bad mac", "asset-full.json", "/device/mac", "3c52821a9f07", "/device/mac"},
	{"bad src url", "finding-edr.json", "/finding_info/src_url", "not a url", "/finding_info/src_url"},
	{"wrong class", "finding-edr.json", "/class_uid", 2001, "/class_uid"},
	{"string number", "asset-full.json", "/severity_id", "1", "/severity_id"},
	{"missing device uid", "asset-full.json", "/device/uid", nil, "/device"},
	{"missing protection", "asset-minimal.json", "/protection", nil, ""},
	{"missing title", "finding-edr.json", "/finding_info/title", nil, "/finding_info"},
	{"missing metadata uid", "finding-closed.json", "/metadata/uid", nil, "/metadata"},
	{"empty agent list", "asset-minimal.json", "/device/agent_list", []any{}, "/device/agent_list"},
	{"asset uid without tenant", "asset-minimal.json", "/asset_uid", "cybereason:host", "/asset_uid"},
	{"group without uid or name", "asset-full.json", "/device/groups", []any{map[string]any{}}, "/device/groups/0"},
	{"finding uid of another kind", "finding-malware.json", "/finding_uid", "cybereason:console.example.net:policy:1", "/finding_uid"},
	{"empty attack", "finding-edr-detailed.json", "/finding_info/attacks", []any{map[string]any{}}, "/finding_info/attacks/0"},
	{
		"unknown attack field", "finding-edr-detailed.json", "/finding_info/attacks",
		[]any{map[string]any{"tactic": map[string]any{"name": "Execution"}, "mitigation": "patch"}}, "/finding_info/attacks/0/mitigation",
	},
	{"technique without uid or name", "finding-edr-detailed.json", "/finding_info/attacks", []any{map[string]any{"technique": map[string]any{}}}, "/finding_info/attacks/0/technique"},
	{
		"device agent without uid", "finding-edr-detailed.json", "/devices",
		[]any{map[string]any{"uid_alt": "Qm9vdHN0cmFwMDQy", "agent_list": []any{map[string]any{"name": "Cybereason Sensor", "type_id": 1, "vendor_name": "Cybereason"}}}},
		"/devices/0/agent_list/0",
	},
	{"unknown raw-only field", "asset-full.json", "/protection/raw/avDbDate", "2026-01-01", "/protection/raw/avDbDate"},
	{"state without changes", "asset-security-state-isolated.json", "/changed_fields", []any{}, "/changed_fields"},
	{"state of another class", "asset-security-state-isolated.json", "/class_uid", 5001, "/class_uid"},
	{"state with raw protection", "asset-security-state-isolated.json", "/protection/raw", map[string]any{"isolated": "true"}, "/protection/raw"},
	{"state with bad level", "asset-security-state-protection-off.json", "/prev_security_level_id", 4, "/prev_security_level_id"},
	{"state without previous posture", "asset-security-state-protection-off.json", "/prev_protection", nil, ""},
	{"state with volatile status", "asset-security-state-isolated.json", "/protection/sensor_status", "online", "/protection/sensor_status"},
}

// build returns the broken record as JSON.
func (b brokenRecord) build(t testing.TB) []byte {
	t.Helper()
	record := loadExample(t, b.example)
	if b.value == nil {
		deleteMember(t, record, b.pointer)
	} else {
		setMember(t, record, b.pointer, b.value)
	}
	return marshal(t, record)
}

func TestValidateRejectsBrokenRecords(t *testing.T) {
	v := newTestValidator(t)
	for _, tt := range brokenRecords {
		t.Run(tt.name, func(t *testing.T) {
			kind := exampleKind(tt.example)

			err := v.Validate(kind, tt.build(t))

			var validationErr *ValidationError
			if !errors.As(err, &validationErr) {
				t.Fatalf("Validate returned %v, want a *ValidationError", err)
			}
			if !hasViolationAt(validationErr, tt.wantPointer) {
				t.Errorf("violations %+v lack pointer %q", validationErr.Violations, tt.wantPointer)
			}
			message := err.Error()
			if strings.ContainsAny(message, "\n\r") {
				t.Errorf("error spans several lines: %q", message)
			}
			if !strings.HasPrefix(message, "invalid "+string(kind)+" record: ") {
				t.Errorf("error %q does not name the kind", message)
			}
			if tt.wantPointer != "" && !strings.Contains(message, tt.wantPointer+": ") {
				t.Errorf("error %q does not name pointer %s", message, tt.wantPointer)
			}
		})
	}
}

func hasViolationAt(err *ValidationError, pointer string) bool {
	for _, violation := range err.Violations {
		if violation.Pointer == pointer {
			return true
		}
	}
	return false
}

func TestValidateUnknownPropertyReason(t *testing.T) {
	v := newTestValidator(t)
	record := loadExample(t, "asset-minimal.json")
	setMember(t, record, "/device/colour", "blue")

	err := v.Validate(KindAsset, marshal(t, record))

	want := "invalid asset record: /device/colour: property is not defined by the schema"
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %q", err, want)
	}
}

func TestValidateJoinsAlternatives(t *testing.T) {
	v := newTestValidator(t)
	record := loadExample(t, "asset-minimal.json")
	setMember(t, record, "/device/ip", "999.1.1.1")

	err := v.Validate(KindAsset, marshal(t, record))

	var validationErr *ValidationError
	if !errors.As(err, &validationErr) {
		t.Fatalf("Validate returned %v, want a *ValidationError", err)
	}
	if len(validationErr.Violations) != 1 {
		t.Fatalf("violations = %+v, want one for /device/ip", validationErr.Violations)
	}
	if reason := validationErr.Violations[0].Reason; !strings.Contains(reason, "ipv4") || !strings.Contains(reason, " or ") {
		t.Errorf("reason %q does not join the ipv4 and ipv6 failures", reason)
	}
}

func TestValidateCapsViolations(t *testing.T) {
	v := newTestValidator(t)
	record := loadExample(t, "asset-minimal.json")
	for i := range 12 {
		setMember(t, record, "/extra"+string(rune('a'+i)), i)
	}

	err := v.Validate(KindAsset, marshal(t, record))

	if err == nil || !strings.HasSuffix(err.Error(), "(and 4 more)") {
		t.Errorf("Validate = %v, want the list cut after %d violations", err, maxViolations)
	}
}

func TestValidateRejectsNonRecords(t *testing.T) {
	v := newTestValidator(t)
	tests := []struct {
		name  string
		kind  Kind
		value string
		want  string
	}{
		{"unknown kind", Kind("policy"), `{}`, `unknown record kind "policy"`},
		{"not JSON", KindAsset, `{"time":`, "invalid JSON"},
		{"trailing data", KindAsset, `{} {}`, "invalid JSON"},
		{"array", KindFinding, `[]`, "invalid finding record: /: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.kind, []byte(tt.value))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidatorConcurrentUse(t *testing.T) {
	v := newTestValidator(t)
	valid := marshal(t, loadExample(t, "finding-edr.json"))
	broken := loadExample(t, "finding-edr.json")
	setMember(t, broken, "/time", 0)
	invalid := marshal(t, broken)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := v.Validate(KindFinding, valid); err != nil {
					errs <- err
					return
				}
				if err := v.Validate(KindFinding, invalid); err == nil {
					errs <- errors.New("invalid record accepted")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func newTestValidator(t *testing.T) *Validator {
	t.Helper()
	v, err := NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// loadExample decodes testdata/<Version>/<name> with numbers kept as json.Number.
func loadExample(t testing.TB, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path.Join("testdata", Version, name))
	if err != nil {
		t.Fatal(err)
	}
	record, err := decodeObject(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return record
}

func marshal(t testing.TB, value any) []byte {
	t.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// parent walks a JSON pointer of object keys down to the object that holds its last member.
func parent(t testing.TB, record map[string]any, pointer string) (map[string]any, string) {
	t.Helper()
	tokens := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	object := record
	for _, token := range tokens[:len(tokens)-1] {
		child, ok := object[token].(map[string]any)
		if !ok {
			t.Fatalf("pointer %s: %q is not an object", pointer, token)
		}
		object = child
	}
	return object, tokens[len(tokens)-1]
}

func setMember(t testing.TB, record map[string]any, pointer string, value any) {
	t.Helper()
	object, name := parent(t, record, pointer)
	object[name] = value
}

func deleteMember(t testing.TB, record map[string]any, pointer string) {
	t.Helper()
	object, name := parent(t, record, pointer)
	if _, ok := object[name]; !ok {
		t.Fatalf("pointer %s names no member", pointer)
	}
	delete(object, name)
}
