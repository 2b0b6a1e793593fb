package cybereason

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestWithoutMember(t *testing.T) {
	tests := []struct {
		name, object, want string
	}{
		{"absent", `{"a":1,"b":2}`, `{"a":1,"b":2}`},
		{"first", `{"iconBase64":"x","a":1,"b":2}`, `{"a":1,"b":2}`},
		{"middle", `{"a":1,"iconBase64":"x","b":2}`, `{"a":1,"b":2}`},
		{"last", `{"a":1,"b":2,"iconBase64":"x"}`, `{"a":1,"b":2}`},
		{"only", `{"iconBase64":"x"}`, `{}`},
		{"repeated", `{"iconBase64":"x","iconBase64":"y","a":1}`, `{"a":1}`},
		{"null value", `{"a":1,"iconBase64":null}`, `{"a":1}`},
		{"escaped name", `{"a":1,"icon\u0042ase64":"x"}`, `{"a":1}`},
		{"nested kept", `{"a":{"iconBase64":"x"},"iconBase64":"y"}`, `{"a":{"iconBase64":"x"}}`},
		{"tricky strings kept", `{"a":"},\"iconBase64\":","iconBase64":"x","b":[1,{"c":"]"}]}`, `{"a":"},\"iconBase64\":","b":[1,{"c":"]"}]}`},
		{"numbers kept as written", `{"cpu":0.0,"iconBase64":"","big":1e400}`, `{"cpu":0.0,"big":1e400}`},
		{"blanks kept", "{\n  \"a\": 1,\n  \"iconBase64\": \"x\",\n  \"b\": 2\n}", "{\n  \"a\": 1,\n  \"b\": 2\n}"},
		{"blanks kept, first removed", "{\n  \"iconBase64\": \"x\",\n  \"a\": 1\n}", "{\n  \"a\": 1\n}"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			members, err := objectMembers([]byte(test.object))
			if err != nil {
				t.Fatalf("objectMembers: %v", err)
			}
			if got := string(withoutMember([]byte(test.object), members, iconMember)); got != test.want {
				t.Errorf("got %s, want %s", got, test.want)
			}
		})
	}
}

func TestObjectMembersRejectsNonObjects(t *testing.T) {
	for _, input := range []string{``, `[]`, `"x"`, `{"a":1`, `{"a" 1}`, `{"a":1}x`, `{"a":"unterminated}`, `{1:2}`} {
		if _, err := objectMembers([]byte(input)); err == nil {
			t.Errorf("objectMembers(%q) returned no error", input)
		}
	}
}

func TestParseSensor(t *testing.T) {
	tests := []struct {
		name, raw, wantID, wantErr string
	}{
		{"valid", `{"sensorId":"s:PYLUMCLIENT_A_B_000000000001","iconBase64":"x"}`, "s:PYLUMCLIENT_A_B_000000000001", ""},
		{"missing", `{"guid":"1.2"}`, "", "sensorId is missing"},
		{"empty", `{"sensorId":""}`, "", "sensorId is empty"},
		{"number", `{"sensorId":12}`, "", "not a string"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			sensor, err := parseSensor(json.RawMessage(test.raw))
			if test.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), test.wantErr) {
					t.Fatalf("error %v, want %q", err, test.wantErr)
				}
				return
			}
			if err != nil || sensor.ID != test.wantID || strings.Contains(string(sensor.Raw), iconMember) {
				t.Errorf("got %+v, %v", sensor, err)
			}
		})
	}
}

func TestParseMalopTimes(t *testing.T) {
	tests := []struct {
		name, raw string
		wantMs    int64
		wantErr   bool
	}{
		{"number", `{"guid":"g","lastUpdateTime":1700000000123}`, 1700000000123, false},
		{"numeric string", `{"guid":"g","lastUpdateTime":"1700000000123"}`, 1700000000123, false},
		{"creation time when no update time", `{"guid":"g","creationTime":1700000000000,"lastUpdateTime":null}`, 1700000000000, false},
		{"no time", `{"guid":"g"}`, 0, true},
		{"bad time", `{"guid":"g","lastUpdateTime":"soon"}`, 0, true},
		{"no guid", `{"lastUpdateTime":1}`, 0, true},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			malop, err := parseMalop(json.RawMessage(test.raw))
			if (err != nil) != test.wantErr {
				t.Fatalf("error %v, want an error: %t", err, test.wantErr)
			}
			if !test.wantErr && malop.LastUpdateTime.UnixMilli() != test.wantMs {
				t.Errorf("LastUpdateTime %d ms, want %d", malop.LastUpdateTime.UnixMilli(), test.wantMs)
			}
		})
	}
}

func TestFlexBool(t *testing.T) {
	tests := []struct {
		input   string
		want    bool
		wantErr bool
	}{
		{`true`, true, false}, {`false`, false, false}, {`"true"`, true, false}, {`"false"`, false, false},
		{`null`, false, false}, {`"True"`, true, false}, {`1`, false, true}, {`"maybe"`, false, true},
	}
	for _, test := range tests {
		var got flexBool
		err := json.Unmarshal([]byte(test.input), &got)
		if (err != nil) != test.wantErr || bool(got) != test.want {
			t.Errorf("flexBool(%s) = %t, %v; want %t, error %t", test.input, got, err, test.want, test.wantErr)
		}
	}
}

// FuzzWithoutMember checks that removing a member changes the decoded object exactly as deleting
// the key from a map does.
func FuzzWithoutMember(f *testing.F) {
	for _, seed := range []string{
		`{"a":1,"iconBase64":"x"}`,
		`{"iconBase64":[1,{"b":"}"}],"c":{"iconBase64":2}}`,
		" { \"a\" : \"\\\"\" , \"iconBase64\" : true } ",
		`{}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var want map[string]any
		if json.Unmarshal([]byte(input), &want) != nil || want == nil {
			return // only valid JSON objects reach objectMembers
		}
		members, err := objectMembers([]byte(input))
		if err != nil {
			t.Fatalf("objectMembers(%q): %v", input, err)
		}
		output := withoutMember([]byte(input), members, iconMember)

		var got map[string]any
		if err := json.Unmarshal(output, &got); err != nil {
			t.Fatalf("output %q of %q is not valid JSON: %v", output, input, err)
		}
		delete(want, iconMember)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("input %q: got %v, want %v", input, got, want)
		}
	})
}
