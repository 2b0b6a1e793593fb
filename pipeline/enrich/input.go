package enrich

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/jsonvalue"
	"github.com/oversoc/cybereason-connector/sink"
)

// envelope is the part of a raw message's CloudEvents headers that enrich uses.
type envelope struct {
	source      string    // ce_source, copied to the output
	time        string    // ce_time as received, copied to the output
	pollTime    time.Time // ce_time parsed
	tenant      string    // ce_tenant, else the host name of ce_source
	consoleBase string    // scheme://host[:port] of ce_source; "" when ce_source is not an absolute URL
}

// parseEnvelope reads the headers of a raw message. ce_source and ce_time are required; ce_type, when
// present, must equal wantType. The error lists every problem in one line.
func parseEnvelope(headers []kafka.Header, wantType string) (envelope, error) {
	var env envelope
	var problems []string

	if got, ok := header(headers, sink.HeaderType); ok && got != wantType {
		problems = append(problems, fmt.Sprintf("%s is %q, expected %q", sink.HeaderType, got, wantType))
	}

	env.source, _ = header(headers, sink.HeaderSource)
	var sourceHost string
	if env.source == "" {
		problems = append(problems, "missing "+sink.HeaderSource)
	} else if u, err := url.Parse(env.source); err == nil && u.IsAbs() && u.Host != "" {
		sourceHost = strings.ToLower(u.Hostname())
		env.consoleBase = u.Scheme + "://" + u.Host
	}

	env.time, _ = header(headers, sink.HeaderTime)
	if env.time == "" {
		problems = append(problems, "missing "+sink.HeaderTime)
	} else if t, err := time.Parse(time.RFC3339Nano, env.time); err != nil {
		problems = append(problems, fmt.Sprintf("invalid %s %q: expected RFC 3339", sink.HeaderTime, env.time))
	} else if t.UnixMilli() < 1 {
		problems = append(problems, fmt.Sprintf("invalid %s %q: before 1970", sink.HeaderTime, env.time))
	} else {
		env.pollTime = t
	}

	tenant, _ := header(headers, sink.HeaderTenant)
	tenantOrigin := sink.HeaderTenant
	if tenant == "" {
		tenant, tenantOrigin = sourceHost, "the host of "+sink.HeaderSource
	}
	if tenant == "" {
		if env.source != "" {
			problems = append(problems, fmt.Sprintf("missing %s, and %s %q has no host name", sink.HeaderTenant, sink.HeaderSource, env.source))
		}
	} else if err := checkTenant(tenant); err != nil {
		problems = append(problems, fmt.Sprintf("invalid tenant %q from %s: %v", tenant, tenantOrigin, err))
	}
	env.tenant = tenant

	if len(problems) > 0 {
		return envelope{}, fmt.Errorf("invalid headers: %s", strings.Join(problems, "; "))
	}
	return env, nil
}

// checkTenant rejects tenant ids that would make an ambiguous uid: uids are colon-separated.
func checkTenant(tenant string) error {
	for _, r := range tenant {
		switch {
		case r == ':':
			return errors.New("contains ':'")
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return errors.New("contains white space or control characters")
		}
	}
	return nil
}

// header returns the trimmed value of the first header with the given key.
func header(headers []kafka.Header, key string) (string, bool) {
	for _, h := range headers {
		if h.Key == key {
			return strings.TrimSpace(string(h.Value)), true
		}
	}
	return "", false
}

// vendorObject is a Cybereason JSON object decoded with numbers kept as json.Number. Its accessors
// absorb the type drift of the API: numbers and booleans sent as strings, and "" or null for a
// missing value.
type vendorObject map[string]any

// decodeVendorObject decodes a message value that must hold exactly one JSON object.
func decodeVendorObject(value []byte) (vendorObject, error) {
	if len(bytes.TrimSpace(value)) == 0 {
		return nil, errors.New("value is empty, expected a JSON object")
	}
	if decoded, err := jsonvalue.Parse(value); err == nil {
		if object, ok := decoded.(map[string]any); ok {
			return object, nil
		}
	}
	// Word the error, or the type of a value that is not an object, as encoding/json reports it.
	decoder := json.NewDecoder(bytes.NewReader(value))
	decoder.UseNumber()
	var decoded any
	if err := decoder.Decode(&decoded); err != nil {
		return nil, fmt.Errorf("value is not valid JSON: %w", err)
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("value has data after the JSON object")
	}
	object, ok := decoded.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("value is a JSON %s, expected an object", jsonTypeName(decoded))
	}
	return object, nil
}

func jsonTypeName(value any) string {
	switch value.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

// text returns a string, number or boolean field as trimmed text. It returns "" for a missing,
// null, empty, array or object field.
func (o vendorObject) text(name string) string {
	return scalarText(o[name])
}

func scalarText(value any) string {
	switch v := value.(type) {
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// fieldState is the outcome of a vendorObject accessor.
type fieldState int

const (
	fieldAbsent  fieldState = iota // missing, null or ""
	fieldValid                     // parsed
	fieldInvalid                   // present but not of the expected type
)

// boolean reads a field sent as true/false, as "true"/"false" in any case, or as 1/0.
func (o vendorObject) boolean(name string) (bool, fieldState) {
	switch v := o[name].(type) {
	case nil:
		return false, fieldAbsent
	case bool:
		return v, fieldValid
	}
	raw := strings.ToLower(o.text(name))
	switch raw {
	case "":
		return false, fieldAbsent
	case "true", "1":
		return true, fieldValid
	case "false", "0":
		return false, fieldValid
	}
	return false, fieldInvalid
}

// millis reads an epoch-millisecond field sent as a number or a numeric string. Cybereason writes 0
// for "never", so zero and negative values count as absent.
func (o vendorObject) millis(name string) (int64, bool) {
	raw := o.text(name)
	if raw == "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || f <= 0 || f >= math.MaxInt64 || f != math.Trunc(f) {
			return 0, false
		}
		ms = int64(f)
	}
	if ms <= 0 {
		return 0, false
	}
	return ms, true
}

// texts reads a list of strings. A single string counts as a list of one; empty items are dropped.
func (o vendorObject) texts(name string) []string {
	switch v := o[name].(type) {
	case []any:
		var out []string
		for _, item := range v {
			if s := scalarText(item); s != "" {
				out = append(out, s)
			}
		}
		return out
	case string, json.Number:
		if s := scalarText(v); s != "" {
			return []string{s}
		}
	}
	return nil
}

// objects reads a list of objects, skipping items that are not objects.
func (o vendorObject) objects(name string) []vendorObject {
	list, _ := o[name].([]any)
	var out []vendorObject
	for _, item := range list {
		if object, ok := item.(map[string]any); ok {
			out = append(out, object)
		}
	}
	return out
}

// firstText returns the text of the first of the named fields that is set.
func (o vendorObject) firstText(names ...string) (value, name string) {
	for _, name := range names {
		if value := o.text(name); value != "" {
			return value, name
		}
	}
	return "", ""
}

// copyFields copies the named fields into out with their decoded values, skipping fields that are
// missing, null, "" or empty lists.
func (o vendorObject) copyFields(out map[string]any, names ...string) {
	for _, name := range names {
		switch v := o[name].(type) {
		case nil:
			continue
		case string:
			if strings.TrimSpace(v) == "" {
				continue
			}
		case []any:
			if len(v) == 0 {
				continue
			}
		}
		out[name] = o[name]
	}
}
