package cybereason

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

const (
	crimesPath           = "/rest/crimes/unified"
	detectionDetailsPath = "/rest/detection/details"

	// detailsResultLimit is the totalResultLimit and perGroupLimit of a crimes/unified query, as
	// integrations send them. One MalOp needs one result.
	detailsResultLimit = 10000
	// detailsFeatureLimit is the perFeatureLimit, which bounds the values of each feature, such as
	// the affected machines of a MalOp.
	detailsFeatureLimit = 100
)

// ErrMalopNotFound reports that the console has no details for a MalOp guid.
var ErrMalopNotFound = errors.New("the console has no MalOp with this guid")

// EDR MalOps are elements of one of these types in crimes/unified queries.
var edrMalopTypes = []string{"MalopProcess", "MalopLogonSession"}

// crimesQuery is the body of POST /rest/crimes/unified.
type crimesQuery struct {
	TotalResultLimit int               `json:"totalResultLimit"`
	PerGroupLimit    int               `json:"perGroupLimit"`
	PerFeatureLimit  int               `json:"perFeatureLimit"`
	TemplateContext  string            `json:"templateContext"`
	QueryPath        []crimesQueryPath `json:"queryPath"`
	CustomFields     []string          `json:"customFields"`
}

type crimesQueryPath struct {
	RequestedType string   `json:"requestedType"`
	GUIDList      []string `json:"guidList"`
	Result        bool     `json:"result"`
	Filters       []any    `json:"filters"` // always null: the guid selects the MalOp
}

type crimesResponse struct {
	envelope
	Data *struct {
		Elements map[string]json.RawMessage `json:"resultIdToElementDataMap"`
	} `json:"data"`
}

// EDRMalopDetails returns the details of an AI Hunt (EDR) MalOp from POST /rest/crimes/unified:
// the element data.resultIdToElementDataMap[guid] of the response, as the console sent it, whose
// scalar values are all JSON strings. It requests a MalopProcess element first, then for a
// MalopLogonSession element, and returns an error wrapping ErrMalopNotFound when neither exists.
// The iconBase64 value of the element's simpleValues is removed. A response whose status is not
// SUCCESS returns an *EnvelopeError.
func (c *Client) EDRMalopDetails(ctx context.Context, guid string) (json.RawMessage, error) {
	for _, requestedType := range edrMalopTypes {
		element, err := c.crimesElement(ctx, guid, requestedType)
		if err != nil {
			return nil, fmt.Errorf("get EDR MalOp details of %q (%s): %w", guid, requestedType, err)
		}
		if element != nil {
			return element, nil
		}
	}
	return nil, fmt.Errorf("get EDR MalOp details of %q: %w: neither a MalopProcess nor a MalopLogonSession element has this guid", guid, ErrMalopNotFound)
}

// crimesElement returns the element of one MalOp of requestedType, or nil when the response has
// none.
func (c *Client) crimesElement(ctx context.Context, guid, requestedType string) (json.RawMessage, error) {
	body, err := json.Marshal(crimesQuery{
		TotalResultLimit: detailsResultLimit,
		PerGroupLimit:    detailsResultLimit,
		PerFeatureLimit:  detailsFeatureLimit,
		TemplateContext:  "OVERVIEW",
		QueryPath:        []crimesQueryPath{{RequestedType: requestedType, GUIDList: []string{guid}, Result: true}},
		CustomFields:     []string{},
	})
	if err != nil {
		return nil, err
	}

	var response crimesResponse
	err = c.do(ctx, restCall{
		method:   http.MethodPost,
		endpoint: crimesPath,
		body:     body,
		decode: func(r io.Reader) error {
			response = crimesResponse{}
			return json.NewDecoder(r).Decode(&response)
		},
	})
	if err != nil {
		return nil, err
	}
	if err := response.check(http.MethodPost + " " + crimesPath); err != nil {
		return nil, err
	}
	if response.Data == nil {
		return nil, fmt.Errorf("POST %s: the response has no data object", crimesPath)
	}
	element, ok := response.Data.Elements[guid]
	if !ok || isNull(element) {
		return nil, nil
	}
	return withoutSimpleValue(element, iconMember)
}

// withoutSimpleValue removes the feature name from the simpleValues object of a crimes element
// and keeps every other byte.
func withoutSimpleValue(element json.RawMessage, name string) (json.RawMessage, error) {
	members, err := objectMembers(element)
	if err != nil {
		return nil, fmt.Errorf("the MalOp element: %w", err)
	}
	var simple *member
	for i := range members {
		if members[i].key == "simpleValues" {
			simple = &members[i]
		}
	}
	if simple == nil || isNull(simple.value) {
		return element, nil
	}
	features, err := objectMembers(simple.value)
	if err != nil {
		return nil, fmt.Errorf("the simpleValues of the MalOp element: %w", err)
	}
	stripped := withoutMember(simple.value, features, name)
	if len(stripped) == len(simple.value) {
		return element, nil
	}

	valueStart := simple.end - len(simple.value)
	out := make([]byte, 0, len(element)-len(simple.value)+len(stripped))
	out = append(out, element[:valueStart]...)
	out = append(out, stripped...)
	return append(out, element[simple.end:]...), nil
}

type detectionDetailsQuery struct {
	MalopGUID string `json:"malopGuid"`
}

// EPPMalopDetails returns the details of an Endpoint Protection (EPP) MalOp from POST
// /rest/detection/details: the whole DetectionMalopDetailsModel object as the console sent it,
// without its iconBase64 member. The console responds 400 "Malop ID is not valid" to a guid it
// does not know, which returns an error wrapping ErrMalopNotFound and the *StatusError.
func (c *Client) EPPMalopDetails(ctx context.Context, guid string) (json.RawMessage, error) {
	body, err := json.Marshal(detectionDetailsQuery{MalopGUID: guid})
	if err != nil {
		return nil, err
	}

	var raw json.RawMessage
	err = c.do(ctx, restCall{
		method:   http.MethodPost,
		endpoint: detectionDetailsPath,
		body:     body,
		decode: func(r io.Reader) error {
			raw = nil
			return json.NewDecoder(r).Decode(&raw)
		},
	})
	var statusErr *StatusError
	if errors.As(err, &statusErr) && statusErr.StatusCode == http.StatusBadRequest {
		return nil, fmt.Errorf("get EPP MalOp details of %q: the console rejected the guid: %w: %w", guid, ErrMalopNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("get EPP MalOp details of %q: %w", guid, err)
	}

	details, err := checkDetails(raw, guid)
	if err != nil {
		return nil, fmt.Errorf("get EPP MalOp details of %q: POST %s: %w", guid, detectionDetailsPath, err)
	}
	return details, nil
}

// checkDetails checks that a detection/details response is the object of the MalOp guid and
// removes its iconBase64 member. The object has a status member too, but it is the MalOp's
// status (e.g. "Active"), not a query status, so a failed query shows as a missing guid.
func checkDetails(raw json.RawMessage, guid string) (json.RawMessage, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("the response: %w", err)
	}
	value, ok := lookup(members, "guid")
	if !ok {
		return nil, fmt.Errorf("the response has no guid member: %q", excerpt(raw[:min(len(raw), excerptLimit)]))
	}
	var got string
	if err := json.Unmarshal(value, &got); err != nil || got != guid {
		return nil, fmt.Errorf("the response is for MalOp %s", value)
	}
	return withoutMember(raw, members, iconMember), nil
}

func isNull(raw []byte) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}
