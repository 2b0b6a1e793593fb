package cybereason

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

const policiesPath = "/rest/policies"

// Policy is one sensor policy of GET /rest/policies.
type Policy struct {
	ID  string          // the id member of the list item, or of its metadata object
	Raw json.RawMessage // the list item as the console sent it
}

type policiesResponse struct {
	Policies *[]json.RawMessage `json:"policies"`
	Total    *flexInt           `json:"total"`
}

// Policies returns the sensor policies from GET /rest/policies, which needs the System Admin role.
// A list item may carry its fields flat or under a metadata object, and the policy id comes from
// id or metadata.id, as a string or a number.
func (c *Client) Policies(ctx context.Context) ([]Policy, error) {
	var response policiesResponse
	err := c.do(ctx, restCall{
		method:   http.MethodGet,
		endpoint: policiesPath,
		decode: func(r io.Reader) error {
			response = policiesResponse{}
			return json.NewDecoder(r).Decode(&response)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	if response.Policies == nil {
		return nil, fmt.Errorf("list policies: GET %s: the response has no policies array", policiesPath)
	}

	policies := make([]Policy, 0, len(*response.Policies))
	for position, raw := range *response.Policies {
		id, err := policyID(raw)
		if err != nil {
			return nil, fmt.Errorf("list policies: policy %d of the response: %w", position, err)
		}
		policies = append(policies, Policy{ID: id, Raw: raw})
	}
	if response.Total != nil && int(*response.Total) != len(policies) {
		// NOTE: no source shows paging for this endpoint, so a different total is only logged.
		c.logger.Warn("Cybereason policies list has a different length than its total",
			"policies", len(policies), "total", int(*response.Total))
	}
	return policies, nil
}

// policyID reads the id of a policy list item, from id or else from metadata.id.
func policyID(raw json.RawMessage) (string, error) {
	var item struct {
		ID       json.RawMessage `json:"id"`
		Metadata *struct {
			ID json.RawMessage `json:"id"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &item); err != nil {
		return "", fmt.Errorf("not a policy object: %w", err)
	}
	if id := scalarText(item.ID); id != "" {
		return id, nil
	}
	if item.Metadata != nil {
		if id := scalarText(item.Metadata.ID); id != "" {
			return id, nil
		}
	}
	return "", errors.New("neither id nor metadata.id is a non-empty string or number")
}

// scalarText returns a JSON string unquoted or a JSON number as written, and "" for anything else.
func scalarText(raw json.RawMessage) string {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text
	}
	var number json.Number
	if json.Unmarshal(raw, &number) == nil {
		return number.String()
	}
	return ""
}
