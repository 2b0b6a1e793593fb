package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestRecordFieldsInKeyOrder checks that every struct reachable from the record types declares its
// fields in the order of their JSON names, so that encoding/json writes records with sorted keys.
func TestRecordFieldsInKeyOrder(t *testing.T) {
	seen := make(map[reflect.Type]bool)
	var check func(reflect.Type)
	check = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true

		previous := ""
		for field := range typ.Fields() {
			name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", typ.Name(), field.Name)
				continue
			}
			if name <= previous {
				t.Errorf("%s.%s (%q) comes after %q; declare the fields in the order of their JSON names", typ.Name(), field.Name, name, previous)
			}
			previous = name
			check(field.Type)
		}
	}

	for _, record := range []any{Asset{}, Finding{}, AssetSecurityState{}} {
		check(reflect.TypeOf(record))
	}
	if len(seen) < 20 {
		t.Errorf("checked %d struct types, expected every type of the three records (at least 20)", len(seen))
	}
}

// TestUnmappedEncodesAsMap checks that Unmapped encodes as encoding/json encodes the same map, both
// without and with HTML escaping, for every kind of value it may hold.
func TestUnmappedEncodesAsMap(t *testing.T) {
	tests := []struct {
		name  string
		value Unmapped
	}{
		{"nil", nil},
		{"empty", Unmapped{}},
		{"decoded values", Unmapped{"cybereason": map[string]any{
			"b": json.Number("1.50"), "a": "text", "c": true, "d": nil,
			"e": []any{"x", json.Number("-2"), map[string]any{"z": false, "y": []any{}}},
		}}},
		{"text to escape", Unmapped{"cybereason": map[string]any{
			"html": "<b>&amp;</b>", "quote": `say "hi"\`, "control": "tab\there\x01",
			"unicode": "café \u2028 日本", "invalid utf-8": "a\xffb", "ключ": "значение",
		}}},
		{"values of other types", Unmapped{"cybereason": map[string]any{
			"int": 42, "strings": []string{"a", "b"}, "float": 1.25,
		}}},
	}
	for _, tt := range tests {
		for _, escapeHTML := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/escapeHTML=%t", tt.name, escapeHTML), func(t *testing.T) {
				type holder struct {
					Unmapped Unmapped `json:"unmapped"`
				}
				type plain struct {
					Unmapped map[string]any `json:"unmapped"`
				}
				got := encodeJSON(t, holder{tt.value}, escapeHTML)
				want := encodeJSON(t, plain{tt.value}, escapeHTML)
				if got != want {
					t.Errorf("encoded\n%s\nexpected\n%s", got, want)
				}
			})
		}
	}
}

func encodeJSON(t *testing.T, value any, escapeHTML bool) string {
	t.Helper()
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(escapeHTML)
	if err := encoder.Encode(value); err != nil {
		t.Fatalf("encode %#v: %v", value, err)
	}
	return buf.String()
}
