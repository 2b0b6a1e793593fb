package fastschema

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const testID = "https://example.test/schema.json"

// decode decodes JSON as the schemas package does, numbers as json.Number.
func decode(t *testing.T, text string) any {
	t.Helper()
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		t.Fatalf("decode %s: %v", text, err)
	}
	return value
}

// libraryVerdict validates instance against schema with santhosh-tekuri/jsonschema, set up as the
// schemas package sets it up: draft 2020-12 with format assertions.
func libraryVerdict(t *testing.T, schema, instance string) bool {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.AssertFormat()
	if err := compiler.AddResource(testID, doc); err != nil {
		t.Fatal(err)
	}
	compiled, err := compiler.Compile(testID)
	if err != nil {
		t.Fatal(err)
	}
	value, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(instance)))
	if err != nil {
		t.Fatal(err)
	}
	return compiled.Validate(value) == nil
}

func compileTest(t *testing.T, schema string) (*Schema, error) {
	t.Helper()
	formats := map[string]func(any) error{"ipv4": func(v any) error {
		if s, ok := v.(string); ok && strings.Count(s, ".") != 3 {
			return errUnsupported
		}
		return nil
	}}
	return Compile(map[string]any{testID: decode(t, schema)}, testID, Options{Formats: formats})
}

// TestValidAgreesWithLibrary compares the verdicts of this package and of the library on schemas
// that exercise each supported keyword where the two could differ.
func TestValidAgreesWithLibrary(t *testing.T) {
	tests := []struct {
		name        string
		schema      string
		instances   []string
		leftToValid bool // ValidJSON may return false for valid instances, as its doc says
	}{
		{
			"unevaluatedProperties sees $ref",
			`{"$ref": "#/$defs/base", "properties": {"b": {}}, "unevaluatedProperties": false,
			  "$defs": {"base": {"properties": {"a": {"type": "string"}}}}}`,
			[]string{`{}`, `{"a": "x"}`, `{"a": 1}`, `{"b": 1}`, `{"a": "x", "b": null}`, `{"c": 1}`, `{"a": "x", "c": 1}`, `[]`, `"s"`},
			false,
		},
		{
			"unevaluatedProperties sees succeeding anyOf branches only",
			`{"anyOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]},
			            {"properties": {"b": {"type": "integer"}}, "required": ["b"]}],
			  "unevaluatedProperties": false}`,
			[]string{`{"a": "x"}`, `{"b": 1}`, `{"a": "x", "b": 1}`, `{"a": "x", "b": "y"}`, `{"a": 1, "b": 1}`, `{"a": "x", "c": 1}`, `{}`},
			false,
		},
		{
			"unevaluatedProperties of a $ref target evaluates every member",
			`{"$ref": "#/$defs/open", "unevaluatedProperties": false,
			  "$defs": {"open": {"properties": {"a": {}}, "unevaluatedProperties": {"type": "integer"}}}}`,
			[]string{`{"a": "x"}`, `{"z": 1}`, `{"z": "x"}`},
			false,
		},
		{
			"nested unevaluatedProperties through $ref chain",
			`{"properties": {"o": {"$ref": "#/$defs/mid"}}, "unevaluatedProperties": false,
			  "$defs": {"mid": {"$ref": "#/$defs/leaf", "properties": {"m": {}}},
			            "leaf": {"properties": {"l": {"const": 1}}, "unevaluatedProperties": false}}}`,
			[]string{`{"o": {"l": 1}}`, `{"o": {"l": 1.0}}`, `{"o": {"m": 1}}`, `{"o": {"l": 2}}`, `{"p": 1}`},
			false,
		},
		{
			"const numbers by value",
			`{"const": 5001}`,
			[]string{`5001`, `5001.0`, `5.001e3`, `50010e-1`, `5001.5`, `-5001`, `"5001"`, `5001.00000000000000000001`, `1e1000001`, `null`},
			false,
		},
		{
			"const object and array",
			`{"const": {"a": [1, "x"], "b": null}}`,
			[]string{`{"b": null, "a": [1.0, "x"]}`, `{"a": [1, "x"]}`, `{"a": ["x", 1], "b": null}`, `{"a": [1, "x"], "b": false}`},
			true,
		},
		{
			"enum of integers",
			`{"type": "integer", "enum": [0, 1, 99]}`,
			[]string{`0`, `-0`, `0.0`, `1`, `1e0`, `99`, `99.0`, `9.9e1`, `98`, `100`, `"1"`, `true`, `1.5`},
			false,
		},
		{
			"enum of mixed values",
			`{"enum": ["a", 1, null, [1], {"k": 2}]}`,
			[]string{`"a"`, `"b"`, `1.0`, `null`, `[1.0]`, `{"k": 2.0}`, `{"k": 3}`, `false`},
			true,
		},
		{
			"integer type",
			`{"type": "integer"}`,
			[]string{`1`, `1.0`, `1e2`, `1.5`, `1e-2`, `12345678901234567890123`, `1e1000001`, `-0`, `"1"`},
			false,
		},
		{
			"type list",
			`{"type": ["string", "null"]}`,
			[]string{`"s"`, `null`, `1`, `{}`},
			false,
		},
		{
			"minimum",
			`{"type": "integer", "minimum": 1}`,
			[]string{`0`, `1`, `2`, `-1`, `1.0`, `0.99999999999999999999`, `10e-1`, `1e0`, `99999999999999999999999`},
			false,
		},
		{
			"minimum of any number",
			`{"minimum": 0}`,
			[]string{`0`, `-0.0`, `-1e-30`, `1.5`, `"x"`, `null`},
			false,
		},
		{
			"minLength counts code points",
			`{"type": "string", "minLength": 2}`,
			[]string{`""`, `"a"`, `"ab"`, `"é"`, `"éé"`, `"\ud83d\ude00"`, `"\ud83d\ude00x"`},
			false,
		},
		{
			"pattern is not anchored unless written so",
			`{"pattern": "b+"}`,
			[]string{`"abc"`, `"ac"`, `1`},
			false,
		},
		{
			"items, minItems and uniqueItems",
			`{"type": "array", "minItems": 1, "uniqueItems": true, "items": {"type": ["string", "number", "object"]}}`,
			[]string{`[]`, `["a"]`, `["a", "a"]`, `[1, 1.0]`, `[{"a": 1, "b": 2}, {"b": 2, "a": 1}]`, `["a", "b", "c", "d", "e", "f", "g", "h", "i", "a"]`, `["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]`, `[true]`},
			true,
		},
		{
			"uniqueItems on strings and integers in the text",
			`{"uniqueItems": true}`,
			[]string{`["a", "b"]`, `["a", "\u0061"]`, `["\u00e9", "é"]`, `[1, 2, 1]`, `[0, -0]`, `["1", 1]`, `[]`},
			false,
		},
		{
			"text syntax",
			`{"type": "object", "properties": {"s": {"type": "string"}}}`,
			[]string{`{"s": "x"}`, ` {"s" : "x"} `, `{"s": "tab\there"}`, `{"s": "\u00e9"}`, `{"s": "é"}`, `{"n": [1, -0.5e+3, true, null, {}]}`, `{}`},
			false,
		},
		{
			"required and properties",
			`{"type": "object", "required": ["a"], "properties": {"a": {"type": "boolean"}}}`,
			[]string{`{"a": true}`, `{"a": 1}`, `{}`, `{"b": 1, "a": false}`, `[]`},
			false,
		},
		{
			"boolean schemas",
			`{"properties": {"yes": true, "no": false}}`,
			[]string{`{"yes": 1}`, `{"no": 1}`, `{}`},
			false,
		},
		{
			"format applies to strings only",
			`{"format": "ipv4"}`,
			[]string{`"1.2.3.4"`, `"1.2.3"`, `7`},
			false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compiled, err := compileTest(t, tt.schema)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			for _, instance := range tt.instances {
				want := libraryVerdict(t, tt.schema, instance)
				if got := compiled.Valid(decode(t, instance)); got != want {
					t.Errorf("Valid(%s) = %t, the library says %t", instance, got, want)
				}
				if got := compiled.ValidJSON([]byte(instance)); got != want && !tt.leftToValid {
					t.Errorf("ValidJSON(%s) = %t, the library says %t", instance, got, want)
				}
				if got := compiled.ValidJSON([]byte(instance)); got && !want {
					t.Errorf("ValidJSON(%s) accepts what the library rejects", instance)
				}
			}
		})
	}
}

func TestCompileRejectsUnsupportedSchemas(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   []string // substrings of the error
	}{
		{"unsupported keyword", `{"properties": {"a": {"maxLength": 3}}}`, []string{testID + "#/properties/a", `keyword "maxLength"`, "not supported"}},
		{"misspelled keyword", `{"minimun": 1}`, []string{testID + "#", `keyword "minimun"`}},
		{"additionalProperties", `{"additionalProperties": false}`, []string{`keyword "additionalProperties"`}},
		{"oneOf", `{"oneOf": [true]}`, []string{`keyword "oneOf"`}},
		{"unknown format", `{"format": "hostname"}`, []string{`keyword "format"`, `format "hostname"`}},
		{"anchor reference", `{"$ref": "#a", "$defs": {"x": {"$anchor": "a"}}}`, []string{`keyword "$ref"`, "anchors are not supported"}},
		{"nested $id", `{"properties": {"a": {"$id": "other.json"}}}`, []string{`keyword "$id"`}},
		{"other draft", `{"$schema": "http://json-schema.org/draft-07/schema#"}`, []string{`keyword "$schema"`}},
		{"missing document", `{"$ref": "other.json"}`, []string{"https://example.test/other.json is not registered"}},
		{"missing pointer", `{"$ref": "#/$defs/none"}`, []string{"JSON pointer /$defs/none not found"}},
		{"invalid pattern", `{"pattern": "a(?=b)"}`, []string{`keyword "pattern"`, "invalid pattern"}},
		{"reference cycle", `{"$ref": "#/$defs/a", "$defs": {"a": {"anyOf": [{"$ref": "#"}]}}}`, []string{"cycle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileTest(t, tt.schema)
			if err == nil {
				t.Fatal("Compile succeeded, want an error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestCompileAcceptsRecursionThroughMembers(t *testing.T) {
	compiled, err := compileTest(t, `{"type": "object", "properties": {"child": {"$ref": "#"}}, "unevaluatedProperties": false}`)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if !compiled.Valid(decode(t, `{"child": {"child": {}}}`)) {
		t.Error("nested valid value rejected")
	}
	if compiled.Valid(decode(t, `{"child": {"child": {"x": 1}}}`)) {
		t.Error("nested unevaluated member accepted")
	}
}

func TestValidJSONRejectsInvalidText(t *testing.T) {
	compiled, err := compileTest(t, `{}`)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	invalid := []string{
		``, ` `, `{`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{1:2}`, `01`, `-`, `1.`, `.5`, `+1`, `1e`, `1e+`,
		`"abc`, "\"a\x01b\"", `"\x"`, `"\u12"`, `"\u12g4"`, `tru`, `nul`, `truex`, `{} {}`, `[] x`,
		"\xef\xbb\xbf{}", `NaN`, `[1 2]`, `{"a":1 "b":2}`,
	}
	for _, text := range invalid {
		if compiled.ValidJSON([]byte(text)) {
			t.Errorf("ValidJSON(%q) = true, want false for invalid JSON", text)
		}
	}
	valid := []string{`{}`, ` [ ] `, `"\u00e9\n\"\\\/"`, "\"\xff\"", `-0.5E-3`, `[true,false,null,{"a":[{}]}]`}
	for _, text := range valid {
		if !compiled.ValidJSON([]byte(text)) {
			t.Errorf("ValidJSON(%q) = false, want true", text)
		}
	}
}
