package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"
)

// TestAppendJSONMatchesEncodingJSON checks that AppendJSON writes what encoding/json writes, on
// the examples of the current version and on records whose every field is filled at random, left
// empty or set to text that needs escaping.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	random := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var asset Asset
		fillRandom(random, reflect.ValueOf(&asset).Elem())
		checkAppendJSON(t, fmt.Sprintf("random asset %d", i), &asset, asset.AppendJSON)

		var finding Finding
		fillRandom(random, reflect.ValueOf(&finding).Elem())
		checkAppendJSON(t, fmt.Sprintf("random finding %d", i), &finding, finding.AppendJSON)
	}

	examples := []struct {
		name   string
		record interface{ AppendJSON([]byte) ([]byte, error) }
	}{
		{"asset-full.json", &Asset{}}, {"asset-minimal.json", &Asset{}},
		{"finding-edr.json", &Finding{}}, {"finding-edr-detailed.json", &Finding{}},
		{"finding-malware.json", &Finding{}}, {"finding-closed.json", &Finding{}},
	}
	for _, example := range examples {
		data, err := os.ReadFile(path.Join("testdata", Version, example.name))
		if err != nil {
			t.Fatal(err)
		}
		decoder := json.NewDecoder(bytes.NewReader(data))
		decoder.UseNumber()
		if err := decoder.Decode(example.record); err != nil {
			t.Fatalf("decode %s: %v", example.name, err)
		}
		checkAppendJSON(t, example.name, example.record, example.record.AppendJSON)
	}
}

func checkAppendJSON(t *testing.T, name string, record any, appendJSON func([]byte) ([]byte, error)) {
	t.Helper()
	want := encodeJSON(t, record, false)
	got, err := appendJSON([]byte("prefix"))
	if err != nil {
		t.Fatalf("%s: AppendJSON: %v", name, err)
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("%s: AppendJSON did not append to dst", name)
	}
	if got, want := string(got[len("prefix"):]), strings.TrimSuffix(want, "\n"); got != want {
		t.Fatalf("%s: AppendJSON wrote\n%s\nencoding/json writes\n%s", name, got, want)
	}
}

// randomTexts are strings that exercise escaping: quotes, backslashes, control characters, HTML,
// non-ASCII, line separators and invalid UTF-8.
var randomTexts = []string{
	"", "plain", `a "quoted" \ text`, "tab\tnew\nline\r\x00\x1f\b\f", "<tag attr='x'>&amp;</tag>",
	"café 日本 🙂", "\u2028\u2029", "bad \xff\xfe utf-8", "   ",
}

// fillRandom sets every field of value, recursively, to a random value or leaves it zero.
func fillRandom(random *rand.Rand, value reflect.Value) {
	if random.IntN(5) == 0 {
		return // the zero value: empty string, 0, nil pointer or slice, false
	}
	switch value.Kind() {
	case reflect.String:
		value.SetString(randomTexts[random.IntN(len(randomTexts))])
	case reflect.Int, reflect.Int64:
		value.SetInt([]int64{0, 1, -7, 1767225600000, 1 << 53}[random.IntN(5)])
	case reflect.Bool:
		value.SetBool(random.IntN(2) == 0)
	case reflect.Pointer:
		value.Set(reflect.New(value.Type().Elem()))
		fillRandom(random, value.Elem())
	case reflect.Slice:
		n := random.IntN(3)
		value.Set(reflect.MakeSlice(value.Type(), n, n))
		for i := range n {
			fillRandom(random, value.Index(i))
		}
	case reflect.Struct:
		for i := range value.NumField() {
			fillRandom(random, value.Field(i))
		}
	case reflect.Map:
		fillRandomMap(random, value)
	}
}

func fillRandomMap(random *rand.Rand, value reflect.Value) {
	value.Set(reflect.MakeMap(value.Type()))
	for range random.IntN(4) {
		key := randomTexts[random.IntN(len(randomTexts))]
		switch value.Type().Elem().Kind() {
		case reflect.String:
			value.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(randomTexts[random.IntN(len(randomTexts))]))
		case reflect.Interface: // Unmapped: values as decoding JSON makes them
			vendor := map[string]any{
				key: randomTexts[random.IntN(len(randomTexts))], "n": json.Number("12.50"), "b": true,
				"nil": nil, "list": []any{"x", json.Number("3")}, "object": map[string]any{"k": "v"},
			}
			value.SetMapIndex(reflect.ValueOf("cybereason"), reflect.ValueOf(vendor))
			// Another vendor key, with empty and nil containers or with a value of a type that
			// decoding JSON never makes, which Unmapped leaves to encoding/json.
			other := unmappedOddities[random.IntN(len(unmappedOddities))]
			value.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(other))
		}
	}
}

// TestAppendJSONInvalidNumber checks that AppendJSON fails, as encoding/json does, on an unmapped
// json.Number that is not a JSON number, instead of writing invalid JSON.
func TestAppendJSONInvalidNumber(t *testing.T) {
	asset := Asset{Unmapped: Unmapped{"cybereason": map[string]any{"cpuUsage": json.Number("1.5%")}}}
	if _, err := json.Marshal(&asset); err == nil {
		t.Fatal("encoding/json accepted an invalid json.Number, so this test checks nothing")
	}

	out, err := asset.AppendJSON(nil)
	if err == nil {
		t.Errorf("AppendJSON wrote %s, expected an error", out)
	}
}

// unmappedOddities are Unmapped values beyond those of a typical record.
var unmappedOddities = []any{
	map[string]any{"empty list": []any{}, "nil list": []any(nil), "nil map": map[string]any(nil), "empty map": map[string]any{}},
	map[string]any{"zero number": json.Number(""), "negative": json.Number("-0.5e-3"), "deep": []any{[]any{map[string]any{"b": 1.5}}}},
	map[string]any{"int": 42, "float": 2.5, "strings": []string{"<a>", "b\xff"}},
	[]any{"not a map", json.Number("1")},
	nil,
}

// FuzzAppendJSON decodes each input into an Asset and a Finding, as a consumer of the records
// would, and checks that AppendJSON writes what encoding/json writes for them.
func FuzzAppendJSON(f *testing.F) {
	for _, name := range []string{"asset-full.json", "finding-edr-detailed.json", "finding-malware.json"} {
		data, err := os.ReadFile(path.Join("testdata", Version, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"unmapped":{"cybereason":{"k\u00e9y":"<\u2028>","n":-0.5e-3,"l":[[],{}],"z":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var asset Asset
		if decodeRecord(data, &asset) == nil {
			checkAppendJSON(t, "asset", &asset, asset.AppendJSON)
		}
		var finding Finding
		if decodeRecord(data, &finding) == nil {
			checkAppendJSON(t, "finding", &finding, finding.AppendJSON)
		}
	})
}

func decodeRecord(data []byte, record any) error {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	return decoder.Decode(record)
}
