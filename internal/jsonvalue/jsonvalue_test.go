package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"
)

// jsonSamples are documents that exercise the corners of JSON: escapes, non-ASCII and invalid
// UTF-8, number forms, duplicate keys, whitespace, and invalid documents.
var jsonSamples = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `12.5e-3`, `1E+9`, `"x"`, `""`,
	`{"a":1,"b":[1,2,{"c":null}],"d":{"e":true,"f":false}}`,
	` { "a" : [ 1 , 2 ] , "b" : "c" } `,
	"{\"tab\":\"a\\tb\",\"nl\":\"a\\nb\",\"quote\":\"\\\"\",\"slash\":\"\\/\",\"back\":\"\\\\\"}",
	`{"u":"\u00e9\u2028\u2029\ud83d\ude00","lone":"\ud800"}`,
	`{"html":"<a href=\"x\">&</a>"}`,
	"{\"utf8\":\"caf\u00e9 \u65e5\u672c\"}",
	"{\"bad\":\"\xff\xfe\"}",
	`{"ctl":"` + "\x01" + `"}`,
	`{"dup":1,"dup":2}`,
	`{"b":1,"a":2,"B":3,"_":4,"aa":5}`,
	`[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `01`, `-`, `1.`, `.5`, `1e`, `+1`, `tru`, `nul`,
	`"open`, `[`, `{"a":1} x`, `{"a":1}{}`, ``, ` `, `[1 2]`, `{"a":1 "b":2}`,
	strings.Repeat("[", 100) + strings.Repeat("]", 100),
}

// decodeStandard decodes data as jsonschema.UnmarshalJSON does.
func decodeStandard(data []byte) (any, error) {
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var doc any
	if err := decoder.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the document")
	}
	return doc, nil
}

// encodeStandard is the canonical encoding that AppendCanonical must match.
func encodeStandard(value any) ([]byte, error) {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func checkSameAsStandard(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := decodeStandard(data)
	got, err := Parse(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("Parse(%q) error %v, encoding/json error %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(%q) = %#v, encoding/json decodes %#v", data, got, want)
	}

	wantJSON, err := encodeStandard(want)
	if err != nil {
		t.Fatalf("encode %q with encoding/json: %v", data, err)
	}
	gotJSON, err := AppendCanonical(nil, got)
	if err != nil {
		t.Fatalf("AppendCanonical(%q): %v", data, err)
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("AppendCanonical(%q) = %s, encoding/json writes %s", data, gotJSON, wantJSON)
	}
}

func TestParseJSONMatchesEncodingJSON(t *testing.T) {
	for _, sample := range jsonSamples {
		checkSameAsStandard(t, []byte(sample))
	}
}

func TestParseJSONMatchesOnRecords(t *testing.T) {
	for _, name := range []string{"asset-full.json", "asset-minimal.json", "finding-edr-detailed.json", "finding-malware.json"} {
		data, err := os.ReadFile(path.Join("..", "..", "schemas", "testdata", "1.0.0", name))
		if err != nil {
			t.Fatal(err)
		}
		checkSameAsStandard(t, data)
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, sample := range jsonSamples {
		f.Add([]byte(sample))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsStandard(t, data)
	})
}

// TestAppendStringMatchesEncodingJSON compares AppendString with encoding/json, without HTML
// escaping, on every byte, on runes that encoding/json treats specially and on invalid UTF-8.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	inputs := []string{"", "plain text", "<a href='x'>&amp;</a>", "café", "日本語", "🙂", "\u2028\u2029",
		"\u2027\u202a", "\x7f", "\xff", "a\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "é\x00\"\\"}
	for b := range 256 {
		inputs = append(inputs, string([]byte{byte(b)}), "x"+string([]byte{byte(b)})+"y")
	}
	for _, input := range inputs {
		var want bytes.Buffer
		encoder := json.NewEncoder(&want)
		encoder.SetEscapeHTML(false)
		if err := encoder.Encode(input); err != nil {
			t.Fatalf("encoding/json %q: %v", input, err)
		}
		got := string(AppendString([]byte("prefix"), input))
		if want := "prefix" + strings.TrimSuffix(want.String(), "\n"); got != want {
			t.Errorf("AppendString(%q) = %s, expected %s", input, got, want)
		}
	}
}

// FuzzAppendString compares AppendString with encoding/json on any string.
func FuzzAppendString(f *testing.F) {
	for _, seed := range []string{"", "a\"b\\c", "\x00\x1f\u2028", "\xff\xfe", "日本"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var want bytes.Buffer
		encoder := json.NewEncoder(&want)
		encoder.SetEscapeHTML(false)
		if err := encoder.Encode(input); err != nil {
			t.Fatalf("encoding/json %q: %v", input, err)
		}
		if got, want := string(AppendString(nil, input)), strings.TrimSuffix(want.String(), "\n"); got != want {
			t.Errorf("AppendString(%q) = %s, expected %s", input, got, want)
		}
	})
}

// TestAppendCanonicalNumbers checks that AppendCanonical writes a json.Number as encoding/json
// does, and rejects every json.Number that encoding/json rejects.
func TestAppendCanonicalNumbers(t *testing.T) {
	numbers := []json.Number{
		"", "0", "-0", "7", "-12", "1.50", "2e10", "2E+10", "3e-7", "123456789012345678901234567890",
		"01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "1 ", " 1", "1,2", "NaN", "1}", `1"`,
	}
	for _, number := range numbers {
		t.Run(string(number), func(t *testing.T) {
			want, wantErr := encodeStandard(number)
			got, err := AppendCanonical(nil, number)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("AppendCanonical error %v, encoding/json error %v", err, wantErr)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("AppendCanonical wrote %s, encoding/json writes %s", got, want)
			}
		})
	}
}
