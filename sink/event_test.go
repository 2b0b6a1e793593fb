package sink_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/sink"
)

func testEvent() sink.Event {
	return sink.Event{
		ID:         "cybereason:acme:s1#0123456789abcdef",
		Source:     "https://acme.example:8443/rest/sensors/query",
		Type:       "com.oversoc.asset.v1",
		Subject:    "cybereason:acme:s1",
		Tenant:     "acme.example",
		DataSchema: "https://schemas.oversoc.com/oversoc/1.0.0/asset.schema.json",
		Time:       time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("CET", 3600)),
	}
}

func TestEventHeaders(t *testing.T) {
	headers := testEvent().Headers()

	want := map[string]string{
		"ce_specversion": "1.0",
		"ce_id":          "cybereason:acme:s1#0123456789abcdef",
		"ce_source":      "https://acme.example:8443/rest/sensors/query",
		"ce_type":        "com.oversoc.asset.v1",
		"ce_time":        "2026-03-04T04:06:07.891Z",
		"ce_subject":     "cybereason:acme:s1",
		"ce_tenant":      "acme.example",
		"ce_dataschema":  "https://schemas.oversoc.com/oversoc/1.0.0/asset.schema.json",
		"content-type":   "application/json",
	}
	if len(headers) != len(want) {
		t.Errorf("%d headers, want %d: %v", len(headers), len(want), headers)
	}
	for name, value := range want {
		got, ok := sink.HeaderValue(headers, name)
		if !ok || got != value {
			t.Errorf("header %s = %q (present %v), want %q", name, got, ok, value)
		}
	}
}

func TestEventHeadersWithoutDataSchema(t *testing.T) {
	event := testEvent()
	event.DataSchema = ""

	if v, ok := sink.HeaderValue(event.Headers(), sink.HeaderDataSchema); ok {
		t.Errorf("ce_dataschema present with value %q", v)
	}
}

func TestEventFromHeadersRoundTrip(t *testing.T) {
	event := testEvent()

	got, err := sink.EventFromHeaders(event.Headers())
	if err != nil {
		t.Fatalf("EventFromHeaders: %v", err)
	}

	want := event
	want.Time = event.Time.UTC().Truncate(time.Millisecond)
	if !got.Time.Equal(want.Time) {
		t.Errorf("time %s, want %s", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("event %+v, want %+v", got, want)
	}
}

func TestEventFromHeadersNamesBadHeaders(t *testing.T) {
	tests := []struct {
		name   string
		change func([]kafka.Header) []kafka.Header
		want   []string
	}{
		{"missing id", drop("ce_id"), []string{"missing ce_id"}},
		{"missing source and type", drop("ce_source", "ce_type"), []string{"missing ce_source", "missing ce_type"}},
		{"missing time", drop("ce_time"), []string{"missing ce_time"}},
		{"missing subject", drop("ce_subject"), []string{"missing ce_subject"}},
		{"missing tenant", drop("ce_tenant"), []string{"missing ce_tenant"}},
		{"missing spec version", drop("ce_specversion"), []string{"missing ce_specversion"}},
		{"missing content type", drop("content-type"), []string{"missing content-type"}},
		{"empty id", set("ce_id", ""), []string{"missing ce_id"}},
		{"wrong spec version", set("ce_specversion", "0.3"), []string{`invalid ce_specversion "0.3"`}},
		{"wrong content type", set("content-type", "text/plain"), []string{`invalid content-type "text/plain"`}},
		{"bad time", set("ce_time", "yesterday"), []string{`invalid ce_time "yesterday"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sink.EventFromHeaders(tt.change(testEvent().Headers()))
			if err == nil {
				t.Fatal("EventFromHeaders accepted the headers")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Count(err.Error(), "ce_time") > 1 {
				t.Errorf("error %q names ce_time twice", err)
			}
		})
	}
}

func TestEventValidate(t *testing.T) {
	if err := testEvent().Validate(); err != nil {
		t.Errorf("Validate of a full event: %v", err)
	}

	err := sink.Event{}.Validate()
	for _, want := range []string{"ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_tenant"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of an empty event: %v, want it to name %s", err, want)
		}
	}
}

func drop(names ...string) func([]kafka.Header) []kafka.Header {
	return func(headers []kafka.Header) []kafka.Header {
		var kept []kafka.Header
		for _, h := range headers {
			if !slices.Contains(names, h.Key) {
				kept = append(kept, h)
			}
		}
		return kept
	}
}

func set(name, value string) func([]kafka.Header) []kafka.Header {
	return func(headers []kafka.Header) []kafka.Header {
		for i := range headers {
			if headers[i].Key == name {
				headers[i].Value = []byte(value)
			}
		}
		return headers
	}
}
