package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/oversoc/cybereason-connector/internal/jsonvalue"
)

// removalSamples exercise the removal rules: pruning of objects left empty, array elements kept
// when emptied, "*" as a key of an object, arrays in arrays and repeated keys.
var removalSamples = []string{
	`{}`,
	`{"time":1,"metadata":{"uid":"x","processed_time":2}}`,
	`{"metadata":{"uid":"x","version":"1"},"time":5,"b":[1,{"a":2}]}`,
	`{"unmapped":{"cybereason":{"cpuUsage":1,"upTime":2}},"z":0}`,
	`{"unmapped":{"cybereason":{"cpuUsage":1,"keep":"k"},"other":{}}}`,
	`{"unmapped":{"cybereason":{}}}`,
	`{"protection":{"sensor_status":"a","service_status":"b","raw":{"status":"s"}}}`,
	`{"devices":[{"uid":"1","asset_uid":"2","name":"n"},{"uid":"3"},[{"uid":"4"}],"x",null]}`,
	`{"devices":{"*":{"uid":"1","name":"n"}}}`,
	`{"devices":[]}`,
	`{"a":{"b":{"c":{}}},"metadata":{}}`,
	`{"metadata":{"uid":"a"},"metadata":{"uid":"b","v":1}}`,
	`{"k\u00e9y":"v\n","<&>":"\u2028"}`,
	`[1]`, `"s"`, `{"a":1,}`, `{"a":1} {}`,
	// Keys already sorted, as enrich writes records, with removals first, in the middle and last.
	`{"a":1,"metadata":{"processed_time":1,"uid":"x","version":"2"},"time":3}`,
	`{"metadata":{"uid":"x"},"z":[{"b":1,"c":2}]}`,
	`{"devices":[{"asset_uid":"2","name":"n","uid":"1"}],"metadata":{"processed_time":1}}`,
	`{"a":1,"a":2}`, `{"a":1,"b":{"a":1,"a":1}}`, `{"a":{},"b":1}`,
	// A repeated key whose last member the removal empties, so decoding prunes the key.
	`{"metadata":{"v":1},"metadata":{"uid":"a"}}`, `{"metadata":{},"metadata":{"uid":"a"}}`,
	`{"b":1,"metadata":{"v":1},"metadata":{"uid":"a"}}`, `{"metadata":{"uid":"a"},"metadata":{"uid":"b"}}`,
}

var testPointers = []string{"/a/b/c", "/devices/*", "/devices/*/name", "/x~1y", "/k~0z", "/metadata"}

func checkStreamingCanonical(t *testing.T, data []byte) {
	t.Helper()
	for _, kind := range kinds() {
		want, wantErr := canonicalWithout(kind, data, VolatileFields(kind))
		got, err := jsonvalue.AppendCanonicalWithout(nil, data, volatileRemovals[kind])
		if err != nil {
			continue // Fingerprint takes the decoding path then
		}
		if wantErr != nil {
			t.Fatalf("%s %q: streaming encoder accepted what decoding rejects: %v", kind, data, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s %q: streaming encoding %s, decoding gives %s", kind, data, got, want)
		}
	}

	want, wantErr := canonicalWithoutPointers(data, testPointers)
	got, err := jsonvalue.AppendCanonicalWithout(nil, data, jsonvalue.NewRemoval(testPointers))
	if err == nil && (wantErr != nil || !bytes.Equal(got, want)) {
		t.Fatalf("test pointers %q: streaming encoding %s, decoding gives %s (%v)", data, got, want, wantErr)
	}
}

func canonicalWithoutPointers(data []byte, pointers []string) ([]byte, error) {
	record, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	for _, pointer := range pointers {
		removePointer(record, pointer)
	}
	return jsonvalue.AppendCanonical(nil, record)
}

func TestStreamingCanonicalMatchesDecoding(t *testing.T) {
	for _, sample := range removalSamples {
		checkStreamingCanonical(t, []byte(sample))
	}
}

func TestStreamingCanonicalOnExamples(t *testing.T) {
	for _, name := range []string{"asset-full.json", "asset-minimal.json", "finding-edr-detailed.json", "finding-malware.json", "finding-closed.json"} {
		data, err := os.ReadFile(path.Join("testdata", Version, name))
		if err != nil {
			t.Fatal(err)
		}
		checkStreamingCanonical(t, data)
		if _, err := jsonvalue.AppendCanonicalWithout(nil, data, volatileRemovals[KindAsset]); err != nil {
			t.Errorf("%s: streaming encoder declined a valid record: %v", name, err)
		}
	}
}

func FuzzStreamingCanonical(f *testing.F) {
	for _, sample := range removalSamples {
		f.Add([]byte(sample))
	}
	for _, name := range []string{"asset-full.json", "finding-edr-detailed.json"} {
		data, err := os.ReadFile(path.Join("testdata", Version, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStreamingCanonical(t, data)
	})
}

// TestStreamingCanonicalDeepNesting checks that the streaming encoder leaves deeply nested
// unsorted objects, whose sorting would copy the document once per level, to the decoding path,
// and still encodes deep objects whose keys are sorted.
func TestStreamingCanonicalDeepNesting(t *testing.T) {
	const depth = 2000
	payload := `"` + strings.Repeat("x", 10<<10) + `"`
	unsorted := []byte(strings.Repeat(`{"b":`, depth) + payload + strings.Repeat(`,"a":1}`, depth))
	sorted := []byte(strings.Repeat(`{"a":1,"b":`, depth) + payload + strings.Repeat(`}`, depth))
	shallow := []byte(`{"z":{"y":{"x":{"w":{"v":` + payload + `,"a":1},"a":1},"a":1},"a":1},"a":1}`)

	if _, err := jsonvalue.AppendCanonicalWithout(nil, unsorted, volatileRemovals[KindAsset]); !errors.Is(err, jsonvalue.ErrSlowPath) {
		t.Errorf("deep unsorted objects: error %v, expected ErrSlowPath", err)
	}
	for name, data := range map[string][]byte{"deep sorted objects": sorted, "shallow unsorted objects": shallow} {
		if _, err := jsonvalue.AppendCanonicalWithout(nil, data, volatileRemovals[KindAsset]); err != nil {
			t.Errorf("%s: streaming encoder declined: %v", name, err)
		}
	}

	for name, data := range map[string][]byte{"deep unsorted objects": unsorted, "deep sorted objects": sorted, "shallow unsorted objects": shallow} {
		checkStreamingCanonical(t, data)
		got, err := Fingerprint(KindAsset, data)
		if err != nil {
			t.Fatalf("%s: Fingerprint: %v", name, err)
		}
		canonical, err := canonicalWithout(KindAsset, data, VolatileFields(KindAsset))
		if err != nil {
			t.Fatalf("%s: canonicalWithout: %v", name, err)
		}
		sum := sha256.Sum256(canonical)
		if want := hex.EncodeToString(sum[:8]); got != want {
			t.Errorf("%s: fingerprint %s, decoding path gives %s", name, got, want)
		}
	}
}
