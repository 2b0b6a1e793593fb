package cybereason

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// jsonSyntaxCases are documents on which checkJSON must agree with json.Valid.
var jsonSyntaxCases = []string{
	`{}`, ` [ ] `, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"d"}`, `"x"`, `0`, `-0`, `-1.5e+10`, `1E3`,
	`true`, `false`, `null`, `"\u00e9\n\t\"\\\/"`, "\"\xff\xfe\"", `[1,]`, `{"a":1,}`, `{,}`,
	`{"a" 1}`, `{a:1}`, `01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `tru`, `truex`, `nul`,
	`"\x"`, `"\u12g4"`, "\"a\x01b\"", `[1 2]`, `{"a":1}{}`, `{"a":1} x`, `[`, `{"a":`, `"abc`,
	`{"a":"\`, `{"a":"\u12`, `[[[[]]]]`, `{"a":{"b":{"c":[true,false,null]}}}`, `1 `, ` `,
}

func TestCheckJSONMatchesValid(t *testing.T) {
	for _, document := range jsonSyntaxCases {
		t.Run(document, func(t *testing.T) {
			err := checkJSON([]byte(document))
			if want := json.Valid([]byte(document)); (err == nil) != want {
				t.Errorf("checkJSON(%q) = %v, json.Valid reports %t", document, err, want)
			}
		})
	}
}

func TestCheckJSONEndErrors(t *testing.T) {
	tests := []struct {
		name, document string
		want           error
	}{
		{"empty body", "", io.EOF},
		{"blanks only", " \n", io.EOF},
		{"cut in a string", `{"sensors":[{"sensorId":"ab`, io.ErrUnexpectedEOF},
		{"cut after a member", `{"sensors":[{"a":1}`, io.ErrUnexpectedEOF},
		{"cut in an escape", `["\u00`, io.ErrUnexpectedEOF},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if err := checkJSON([]byte(test.document)); !errors.Is(err, test.want) {
				t.Errorf("checkJSON(%q) = %v, want %v", test.document, err, test.want)
			}
		})
	}
}

func TestCheckJSONNestingLimit(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if err := checkJSON([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nesting depth") {
		t.Errorf("checkJSON of %d nested arrays = %v, want a nesting depth error", maxJSONDepth+1, err)
	}
}

func TestDecodeSensorsResponse(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantIDs   int // sensors decoded, -1 for no sensors array
		wantTotal int
		wantErr   bool
	}{
		{"plain", `{"totalResults":2,"sensors":[{"sensorId":"a"},{"sensorId":"b"}],"hasMoreResults":false}`, 2, 2, false},
		{"empty array", `{"totalResults":0,"sensors":[ ],"hasMoreResults":false}`, 0, 0, false},
		{"null sensors", `{"totalResults":3,"sensors":null}`, -1, 3, false},
		{"no sensors member", `{"totalResults":3}`, -1, 3, false},
		{"name in another case", `{"Sensors":[{"sensorId":"a"}],"totalResults":"1"}`, 1, 1, false},
		{"last of two members wins", `{"sensors":[{"sensorId":"a"}],"sensors":[]}`, 0, 0, false},
		{"sensors not an array", `{"sensors":{"sensorId":"a"}}`, 0, 0, true},
		{"body not an object", `[{"sensorId":"a"}]`, 0, 0, true},
		{"invalid JSON in a sensor", `{"sensors":[{"sensorId":"a",}]}`, 0, 0, true},
		{"total not a number", `{"totalResults":"many","sensors":[]}`, 0, 0, true},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			response, err := decodeSensorsResponse([]byte(test.body))
			if test.wantErr {
				if err == nil {
					t.Fatalf("decodeSensorsResponse(%s) succeeded, want an error", test.body)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeSensorsResponse(%s): %v", test.body, err)
			}
			switch {
			case test.wantIDs < 0 && response.Sensors != nil:
				t.Errorf("got %d sensors, want no sensors array", len(*response.Sensors))
			case test.wantIDs >= 0 && (response.Sensors == nil || len(*response.Sensors) != test.wantIDs):
				t.Errorf("got sensors %v, want %d", response.Sensors, test.wantIDs)
			}
			if int(response.TotalResults) != test.wantTotal {
				t.Errorf("totalResults %d, want %d", response.TotalResults, test.wantTotal)
			}
		})
	}
}

func FuzzCheckJSON(f *testing.F) {
	for _, document := range jsonSyntaxCases {
		f.Add([]byte(document))
	}
	f.Fuzz(func(t *testing.T, document []byte) {
		err := checkJSON(document)
		if want := json.Valid(document); (err == nil) != want {
			t.Errorf("checkJSON(%q) = %v, json.Valid reports %t", document, err, want)
		}
	})
}
