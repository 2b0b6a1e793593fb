package cybereasontest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Paths of the feeds besides sensors and the inbox.
const (
	malopsV2Path         = "/rest/mmng/v2/malops"
	crimesPath           = "/rest/crimes/unified"
	detectionDetailsPath = "/rest/detection/details"
	malwarePath          = "/rest/malware/query"
	policiesPath         = "/rest/policies"
)

const (
	// defaultV2PageSize is the page size of a v2 query that sends none.
	defaultV2PageSize = 50
	// maxMalwareLimit is the largest malware query limit the console accepts.
	maxMalwareLimit = 1000
)

// feedState is the fault state of the feeds, guarded by Console.mu.
type feedState struct {
	v2Status      int           // 0 serves the v2 API, and 400 or 404 is the status of every v2 response
	malwarePaging EndlessPaging // the way malware queries end their paging
}

// feedHandler returns the handler and the HTTP method of a feed path, or a nil handler for an
// unknown path.
func (c *Console) feedHandler(path string) (func(http.ResponseWriter, *http.Request), string) {
	switch path {
	case malopsV2Path:
		return c.serveMalopsV2, http.MethodPost
	case crimesPath:
		return c.serveCrimes, http.MethodPost
	case detectionDetailsPath:
		return c.serveDetectionDetails, http.MethodPost
	case malwarePath:
		return c.serveMalware, http.MethodPost
	case policiesPath:
		return c.servePolicies, http.MethodGet
	}
	return nil, ""
}

// DropV2 makes the console respond to POST /rest/mmng/v2/malops with status, as consoles without
// the MalOp management API do: 400 (the usual response) or 404. Any other status, 0 included,
// serves the API again.
func (c *Console) DropV2(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.feeds.v2Status = 0
	if status == http.StatusBadRequest || status == http.StatusNotFound {
		c.feeds.v2Status = status
	}
}

// SetMalwarePaging selects how malware queries end their paging, like SetEndlessPaging for
// sensors: PagingRepeatLastPage returns the last page again past the end, and PagingNewSensors
// returns new alerts on every page. Both report hasMoreResults true on every page.
func (c *Console) SetMalwarePaging(mode EndlessPaging) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.feeds.malwarePaging = mode
}

func (c *Console) feedFaults() feedState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.feeds
}

// decodeBody decodes a JSON request body of at most 1 MiB, or writes a 400 response and returns
// false.
func decodeBody(w http.ResponseWriter, r *http.Request, body any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(body); err != nil {
		writeJSONError(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
		return false
	}
	return true
}

// writeEnvelope writes {"data": data, "status": "SUCCESS", ...}, the envelope of query
// endpoints.
func writeEnvelope(w http.ResponseWriter, r *http.Request, data any, expectedResults int) {
	body, err := json.Marshal(struct {
		Data               any    `json:"data"`
		Status             string `json:"status"`
		HidePartialSuccess bool   `json:"hidePartialSuccess"`
		Message            string `json:"message"`
		ExpectedResults    int    `json:"expectedResults"`
		Failures           int    `json:"failures"`
	}{data, "SUCCESS", false, "", expectedResults, 0})
	if err != nil {
		writeJSONError(w, r, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	writeBody(w, r, http.StatusOK, jsonType, body)
}

// malopsV2Body is the body of POST /rest/mmng/v2/malops. Times are epoch milliseconds.
type malopsV2Body struct {
	Range *struct {
		From json.RawMessage `json:"from"`
		To   json.RawMessage `json:"to"`
	} `json:"range"`
	Pagination struct {
		PageSize int `json:"pageSize"`
		Offset   int `json:"offset"`
	} `json:"pagination"`
}

// serveMalopsV2 returns the MalOps last updated in [range.from, range.to], oldest first, from the
// item offset pagination.offset. A console without the API (DropV2, Options.DisableV2) responds with
// 400 or 404 instead.
func (c *Console) serveMalopsV2(w http.ResponseWriter, r *http.Request) {
	switch c.feedFaults().v2Status {
	case http.StatusBadRequest:
		writeJSONError(w, r, http.StatusBadRequest, "Bad Request")
		return
	case http.StatusNotFound:
		writeBody(w, r, http.StatusNotFound, htmlType, []byte(notFoundPage))
		return
	}

	var body malopsV2Body
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Range == nil {
		writeJSONError(w, r, http.StatusBadRequest, "range is missing")
		return
	}
	from, fromErr := epochMillis(body.Range.From)
	to, toErr := epochMillis(body.Range.To)
	pageSize, offset := body.Pagination.PageSize, body.Pagination.Offset
	if pageSize == 0 {
		pageSize = defaultV2PageSize
	}
	if fromErr != nil || toErr != nil || from > to || pageSize < 0 || offset < 0 {
		writeJSONError(w, r, http.StatusBadRequest, "invalid range or pagination")
		return
	}

	malops := c.tenant.malopsV2Window(from, to)
	page := malops[min(offset, len(malops)):min(offset+pageSize, len(malops))]
	c.wait(r.Context())
	writeEnvelope(w, r, struct {
		PageSize  int               `json:"pageSize"`
		Pages     int               `json:"pages"`
		Offset    int               `json:"offset"`
		TotalHits int               `json:"totalHits"`
		Token     string            `json:"token"`
		Data      []json.RawMessage `json:"data"`
	}{pageSize, (len(malops) + pageSize - 1) / pageSize, offset, len(malops), "", nonNil(page)}, 0)
}

// crimesBody is the body of POST /rest/crimes/unified.
type crimesBody struct {
	TotalResultLimit int `json:"totalResultLimit"`
	PerGroupLimit    int `json:"perGroupLimit"`
	PerFeatureLimit  int `json:"perFeatureLimit"`
	QueryPath        []struct {
		RequestedType string   `json:"requestedType"`
		GUIDList      []string `json:"guidList"`
	} `json:"queryPath"`
}

// serveCrimes returns the MalopProcess or MalopLogonSession elements of the EDR MalOps in
// guidList, or of every EDR MalOp of that type when guidList is empty. Other element types,
// which real consoles also serve, get a 400 response here.
func (c *Console) serveCrimes(w http.ResponseWriter, r *http.Request) {
	var body crimesBody
	if !decodeBody(w, r, &body) {
		return
	}
	if len(body.QueryPath) != 1 || !slices.Contains(crimesTypes, body.QueryPath[0].RequestedType) {
		writeJSONError(w, r, http.StatusBadRequest, "the fake console supports one queryPath of requestedType MalopProcess or MalopLogonSession")
		return
	}
	requestedType := body.QueryPath[0].RequestedType

	elements, whole := c.tenant.crimes(requestedType, body.QueryPath[0].GUIDList)
	c.wait(r.Context())
	if whole != nil {
		writeBody(w, r, http.StatusOK, jsonType, whole)
		return
	}

	type feature struct {
		ElementInstanceType string  `json:"elementInstanceType"`
		FeatureName         *string `json:"featureName"`
	}
	self := "self"
	writeEnvelope(w, r, map[string]any{
		"resultIdToElementDataMap": elements,
		"suspicionsMap":            map[string]any{},
		"evidenceMap":              map[string]any{},
		"totalPossibleResults":     len(elements),
		"guessedPossibleResults":   0,
		"queryLimits": map[string]any{
			"totalResultLimit": body.TotalResultLimit, "perGroupLimit": body.PerGroupLimit,
			"perFeatureLimit": body.PerFeatureLimit, "groupingFeature": feature{requestedType, &self},
			"sortInGroupFeature": nil,
		},
		"queryTerminated":  false,
		"pathResultCounts": []any{map[string]any{"featureDescriptor": feature{requestedType, nil}, "count": len(elements)}},
		"guids":            []string{},
	}, 1)
}

// serveDetectionDetails returns the details of an EPP MalOp, or 400 "Malop ID is not valid" for
// a guid without details, as the console does.
func (c *Console) serveDetectionDetails(w http.ResponseWriter, r *http.Request) {
	var body struct {
		MalopGUID string `json:"malopGuid"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	details, ok := c.tenant.detectionDetailsOf(body.MalopGUID)
	c.wait(r.Context())
	if !ok {
		writeJSONError(w, r, http.StatusBadRequest, "Malop ID is not valid")
		return
	}
	writeBody(w, r, http.StatusOK, jsonType, details)
}

// malwareBody is the body of POST /rest/malware/query. Offset is a page index.
type malwareBody struct {
	Filters []struct {
		FieldName string            `json:"fieldName"`
		Operator  string            `json:"operator"`
		Values    []json.RawMessage `json:"values"`
	} `json:"filters"`
	SortingFieldName string `json:"sortingFieldName"`
	SortDirection    string `json:"sortDirection"`
	Limit            int    `json:"limit"`
	Offset           int    `json:"offset"`
}

// serveMalware returns a page of the malware alerts that pass the filters, sorted by timestamp.
// It understands the operators Is and Equals on needsAttention, type, status, elementType,
// detectionEngine, machineName and guid, and GreaterThan, GreaterOrEqualsTo, LessThan and
// LessOrEqualsTo on timestamp. Other filters get a 400 response.
func (c *Console) serveMalware(w http.ResponseWriter, r *http.Request) {
	var body malwareBody
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Limit < 1 || body.Limit > maxMalwareLimit || body.Offset < 0 {
		writeJSONError(w, r, http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d and offset a page index of 0 or more", maxMalwareLimit))
		return
	}
	keep, err := malwareFilter(body)
	if err != nil {
		writeJSONError(w, r, http.StatusBadRequest, err.Error())
		return
	}

	alerts := c.tenant.malwareAlerts(keep, strings.EqualFold(body.SortDirection, "DESC"))
	start := min(body.Offset*body.Limit, len(alerts))
	page := alerts[start:min(start+body.Limit, len(alerts))]
	more := start+len(page) < len(alerts)

	switch c.feedFaults().malwarePaging {
	case PagingRepeatLastPage:
		if len(page) == 0 && len(alerts) > 0 {
			page = alerts[(len(alerts)-1)/body.Limit*body.Limit:]
		}
		more = true
	case PagingNewSensors:
		if len(page) == 0 {
			page = c.tenant.extraMalware(body.Offset, body.Limit)
		}
		more = true
	}

	c.wait(r.Context())
	writeEnvelope(w, r, struct {
		Malwares       []json.RawMessage `json:"malwares"`
		TotalResults   int               `json:"totalResults"`
		HasMoreResults bool              `json:"hasMoreResults"`
	}{nonNil(page), len(alerts), more}, 0)
}

// malwareFilter returns a function that reports whether an alert passes every filter of body.
func malwareFilter(body malwareBody) (func(*malwareRecord) bool, error) {
	var tests []func(*malwareRecord) bool
	for _, filter := range body.Filters {
		if filter.FieldName == "timestamp" {
			test, err := timestampFilter(filter.Operator, filter.Values)
			if err != nil {
				return nil, err
			}
			tests = append(tests, test)
			continue
		}
		if !slices.Contains(malwareFilterFields, filter.FieldName) || (filter.Operator != "Is" && filter.Operator != "Equals") {
			return nil, fmt.Errorf("unsupported filter %s %s", filter.FieldName, filter.Operator)
		}
		values := make([]string, len(filter.Values))
		for i, value := range filter.Values {
			values[i] = textValue(value)
		}
		field := filter.FieldName
		tests = append(tests, func(alert *malwareRecord) bool { return slices.Contains(values, alert.fields[field]) })
	}
	return func(alert *malwareRecord) bool {
		for _, test := range tests {
			if !test(alert) {
				return false
			}
		}
		return true
	}, nil
}

func timestampFilter(operator string, values []json.RawMessage) (func(*malwareRecord) bool, error) {
	if len(values) != 1 {
		return nil, fmt.Errorf("timestamp %s needs one value, got %d", operator, len(values))
	}
	bound, err := epochMillis(values[0])
	if err != nil {
		return nil, fmt.Errorf("timestamp %s: %w", operator, err)
	}
	switch operator {
	case "GreaterThan":
		return func(alert *malwareRecord) bool { return alert.timestamp > bound }, nil
	case "GreaterOrEqualsTo":
		return func(alert *malwareRecord) bool { return alert.timestamp >= bound }, nil
	case "LessThan":
		return func(alert *malwareRecord) bool { return alert.timestamp < bound }, nil
	case "LessOrEqualsTo":
		return func(alert *malwareRecord) bool { return alert.timestamp <= bound }, nil
	}
	return nil, fmt.Errorf("unsupported timestamp operator %q", operator)
}

// servePolicies returns the policy list.
func (c *Console) servePolicies(w http.ResponseWriter, r *http.Request) {
	policies := c.tenant.Policies()
	var body bytes.Buffer
	body.WriteString(`{"policies":[`)
	for i, policy := range policies {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(policy)
	}
	fmt.Fprintf(&body, `],"total":%d}`, len(policies))
	writeBody(w, r, http.StatusOK, jsonType, body.Bytes())
}
