package sink

import (
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Kafka header names of CloudEvents 1.0 in binary content mode (Kafka
// protocol binding), plus the ce_tenant extension attribute.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderTenant      = "ce_tenant"
	HeaderDataSchema  = "ce_dataschema"
	HeaderContentType = "content-type"
)

// Values of the fixed headers.
const (
	SpecVersion = "1.0"
	ContentType = "application/json"
)

// timeLayout is RFC 3339 with exactly three fractional digits; with a UTC
// time it ends in "Z".
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Event is the CloudEvents context of one Kafka message. The message value is
// the event data, always JSON.
type Event struct {
	// ID is unique per source; the connector derives it from the content,
	// so the same observation always gets the same ID.
	ID string
	// Source is the URI of the producing context, such as the console
	// endpoint a record came from.
	Source string
	// Type is the reverse-DNS event type, such as com.oversoc.asset.v1.
	Type string
	// Subject is the entity key; it equals the Kafka message key.
	Subject string
	// Tenant is the tenant ID, the ce_tenant extension attribute.
	Tenant string
	// DataSchema is the $id of the value's JSON Schema; empty on raw events.
	DataSchema string
	// Time is when the observed change happened, sent in UTC with
	// millisecond precision.
	Time time.Time
}

// Headers returns the event as Kafka headers, with content-type
// application/json. ce_dataschema is present only when DataSchema is set.
func (e Event) Headers() []kafka.Header {
	headers := []kafka.Header{
		{Key: HeaderSpecVersion, Value: []byte(SpecVersion)},
		{Key: HeaderID, Value: []byte(e.ID)},
		{Key: HeaderSource, Value: []byte(e.Source)},
		{Key: HeaderType, Value: []byte(e.Type)},
		{Key: HeaderTime, Value: []byte(e.Time.UTC().Format(timeLayout))},
		{Key: HeaderSubject, Value: []byte(e.Subject)},
		{Key: HeaderTenant, Value: []byte(e.Tenant)},
		{Key: HeaderContentType, Value: []byte(ContentType)},
	}
	if e.DataSchema != "" {
		headers = append(headers, kafka.Header{Key: HeaderDataSchema, Value: []byte(e.DataSchema)})
	}
	return headers
}

// Validate returns an error naming every required attribute that is empty:
// ID, Source, Type, Subject, Tenant and Time.
func (e Event) Validate() error {
	errs := e.missing()
	if len(errs) > 0 {
		return fmt.Errorf("invalid cloudevent: %w", errors.Join(errs...))
	}
	return nil
}

func (e Event) missing() []error {
	required := []struct {
		header string
		empty  bool
	}{
		{HeaderID, e.ID == ""},
		{HeaderSource, e.Source == ""},
		{HeaderType, e.Type == ""},
		{HeaderTime, e.Time.IsZero()},
		{HeaderSubject, e.Subject == ""},
		{HeaderTenant, e.Tenant == ""},
	}
	var errs []error
	for _, r := range required {
		if r.empty {
			errs = append(errs, fmt.Errorf("missing %s", r.header))
		}
	}
	return errs
}

// EventFromHeaders reads the event from Kafka headers. The error names every
// missing or invalid header: ce_specversion must be 1.0, content-type
// application/json, ce_time RFC 3339, and the attributes Validate checks
// must be present.
func EventFromHeaders(headers []kafka.Header) (Event, error) {
	value := func(name string) string {
		v, _ := HeaderValue(headers, name)
		return v
	}
	e := Event{
		ID:         value(HeaderID),
		Source:     value(HeaderSource),
		Type:       value(HeaderType),
		Subject:    value(HeaderSubject),
		Tenant:     value(HeaderTenant),
		DataSchema: value(HeaderDataSchema),
	}

	var errs []error
	errs = append(errs, checkFixed(headers, HeaderSpecVersion, SpecVersion)...)
	errs = append(errs, checkFixed(headers, HeaderContentType, ContentType)...)
	if raw := value(HeaderTime); raw != "" {
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid %s %q: expected RFC 3339", HeaderTime, raw))
			t = time.Unix(0, 0) // not zero, so that missing() does not report ce_time again
		}
		e.Time = t
	}
	errs = append(errs, e.missing()...)

	if len(errs) > 0 {
		return Event{}, fmt.Errorf("read cloudevent headers: %w", errors.Join(errs...))
	}
	return e, nil
}

// checkFixed checks a header whose value is fixed by the contract.
func checkFixed(headers []kafka.Header, name, expected string) []error {
	v, ok := HeaderValue(headers, name)
	switch {
	case !ok:
		return []error{fmt.Errorf("missing %s", name)}
	case v != expected:
		return []error{fmt.Errorf("invalid %s %q: expected %q", name, v, expected)}
	}
	return nil
}

// HeaderValue returns the value of the first header named name.
func HeaderValue(headers []kafka.Header, name string) (string, bool) {
	for _, h := range headers {
		if h.Key == name {
			return string(h.Value), true
		}
	}
	return "", false
}
