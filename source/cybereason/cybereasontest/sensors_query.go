package cybereasontest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxSensorsLimit is the largest page size the console accepts.
const maxSensorsLimit = 1000

// sensorsQueryBody is the body of POST /rest/sensors/query. Numbers may also come as strings.
type sensorsQueryBody struct {
	Limit            json.RawMessage `json:"limit"`
	Offset           json.RawMessage `json:"offset"`
	SortingFieldName string          `json:"sortingFieldName"`
	SortDirection    string          `json:"sortDirection"`
	Filters          []sensorsFilter `json:"filters"`
}

type sensorsFilter struct {
	FieldName string `json:"fieldName"`
	Operator  string `json:"operator"`
	Values    []any  `json:"values"`
}

// sensorsQuery is a validated sensors query.
type sensorsQuery struct {
	limit      int
	offset     int // page index
	sortField  string
	descending bool
	filters    []sensorsFilter
}

// sensorsStatus is the sensorsStatus member of a sensors response, counted over the filtered
// sensors.
type sensorsStatus struct {
	Class             string `json:"@class"`
	OnlineCount       int    `json:"onlineCount"`
	OfflineCount      int    `json:"offlineCount"`
	StaleCount        int    `json:"staleCount"`
	ArchivedCount     int    `json:"archivedCount"`
	TurnedOnCount     int    `json:"turnedOnCount"`
	TurnedOffCount    int    `json:"turnedOffCount"`
	SuspendedCount    int    `json:"suspendedCount"`
	AdvancedCount     int    `json:"advancedCount"`
	OutdatedCount     int    `json:"outdatedCount"`
	ServiceErrorCount int    `json:"serviceErrorCount"`
}

// sensorsCache keeps the filtered and sorted sensors of the last query, so that paging through
// a large tenant sorts it once, not once per page.
type sensorsCache struct {
	mu      sync.Mutex
	key     string
	version uint64
	sensors []*sensorRecord
	status  sensorsStatus
}

func (c *Console) serveSensorsQuery(w http.ResponseWriter, r *http.Request) {
	query, err := readSensorsQuery(w, r)
	if err != nil {
		writeJSONError(w, r, http.StatusBadRequest, err.Error())
		return
	}

	if c.beforeSensorsQuery != nil {
		c.beforeSensorsQuery(query.limit, query.offset)
	}
	sensors, status := c.querySensors(query)
	page, more := c.sensorsPage(sensors, query)

	c.wait(r.Context())
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		// Streamed, so the fake console holds no copy of a page of 3 MB per request.
		writeGzip(w, http.StatusOK, jsonType, func(out io.Writer) {
			writeSensorsResponse(out, len(sensors), status, page, more)
		})
	} else {
		writeBody(w, r, http.StatusOK, jsonType, encodeSensorsResponse(len(sensors), status, page, more))
	}
	c.pageServed(query.offset)
}

func readSensorsQuery(w http.ResponseWriter, r *http.Request) (sensorsQuery, error) {
	var body sensorsQueryBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		return sensorsQuery{}, fmt.Errorf("invalid request body: %v", err)
	}

	query := sensorsQuery{sortField: "sensorId", filters: body.Filters}
	var err error
	if query.limit, err = optionalInt(body.Limit, maxSensorsLimit); err != nil {
		return sensorsQuery{}, fmt.Errorf("limit: %w", err)
	}
	if query.limit < 0 || query.limit > maxSensorsLimit {
		return sensorsQuery{}, fmt.Errorf("limit %d is not valid; the valid values are 0 to %d", query.limit, maxSensorsLimit)
	}
	if query.limit == 0 {
		// NOTE: no source confirms what a real console does with limit 0, so this one uses the default.
		query.limit = maxSensorsLimit
	}
	if query.offset, err = optionalInt(body.Offset, 0); err != nil {
		return sensorsQuery{}, fmt.Errorf("offset: %w", err)
	}
	if query.offset < 0 {
		return sensorsQuery{}, fmt.Errorf("offset %d is not valid; it is a page index from 0", query.offset)
	}

	if body.SortingFieldName != "" {
		if _, ok := fieldIndex(body.SortingFieldName); !ok {
			return sensorsQuery{}, fmt.Errorf("sortingFieldName %q is not supported by this fake console; use one of %s",
				body.SortingFieldName, strings.Join(filterableFields[:], ", "))
		}
		query.sortField = body.SortingFieldName
	}
	switch strings.ToUpper(body.SortDirection) {
	case "", "ASC":
	case "DESC":
		query.descending = true
	default:
		return sensorsQuery{}, fmt.Errorf("sortDirection %q is not valid; use ASC or DESC", body.SortDirection)
	}
	return query, validateFilters(query.filters)
}

func optionalInt(raw json.RawMessage, fallback int) (int, error) {
	text := textValue(raw)
	if text == "" {
		return fallback, nil
	}
	value, err := strconv.Atoi(text)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", raw)
	}
	return value, nil
}

func validateFilters(filters []sensorsFilter) error {
	for _, filter := range filters {
		// NOTE: a real console filters on any sensor field, but this one only on the fields it indexes.
		if _, ok := fieldIndex(filter.FieldName); !ok {
			return fmt.Errorf("filter on %q is not supported by this fake console; use one of %s",
				filter.FieldName, strings.Join(filterableFields[:], ", "))
		}
		switch filter.Operator {
		case "Equals", "NotEquals", "EqualsIgnoreCase", "ContainsIgnoreCase", "NotContainsIgnoreCase":
		default:
			return fmt.Errorf("filter operator %q is not supported; use Equals, NotEquals, EqualsIgnoreCase, ContainsIgnoreCase or NotContainsIgnoreCase", filter.Operator)
		}
	}
	return nil
}

// querySensors returns the tenant's sensors that match the filters, sorted, with their status
// counts. Several filters must all match, and a filter matches when any of its values matches.
func (c *Console) querySensors(query sensorsQuery) ([]*sensorRecord, sensorsStatus) {
	version, all := c.tenant.snapshotSensors()
	filters, _ := json.Marshal(query.filters)
	key := fmt.Sprintf("%s|%t|%s", query.sortField, query.descending, filters)

	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	if c.cache.sensors != nil && c.cache.key == key && c.cache.version == version {
		return c.cache.sensors, c.cache.status
	}

	matching := make([]*sensorRecord, 0, len(all))
	for _, sensor := range all {
		if matchesAll(sensor, query.filters) {
			matching = append(matching, sensor)
		}
	}
	sortField, _ := fieldIndex(query.sortField)
	slices.SortStableFunc(matching, func(a, b *sensorRecord) int {
		order := cmp.Or(cmp.Compare(a.fields[sortField], b.fields[sortField]), cmp.Compare(a.id, b.id))
		if query.descending {
			return -order
		}
		return order
	})

	c.cache.key, c.cache.version, c.cache.sensors = key, version, matching
	c.cache.status = countStatuses(matching)
	return matching, c.cache.status
}

func matchesAll(sensor *sensorRecord, filters []sensorsFilter) bool {
	for _, filter := range filters {
		if !matches(sensor.field(filter.FieldName), filter) {
			return false
		}
	}
	return true
}

func matches(value string, filter sensorsFilter) bool {
	anyMatch := false
	for _, filterValue := range filter.Values {
		text := filterText(filterValue)
		switch filter.Operator {
		case "Equals", "NotEquals":
			anyMatch = anyMatch || value == text
		case "EqualsIgnoreCase":
			anyMatch = anyMatch || strings.EqualFold(value, text)
		case "ContainsIgnoreCase", "NotContainsIgnoreCase":
			anyMatch = anyMatch || strings.Contains(strings.ToLower(value), strings.ToLower(text))
		}
	}
	if strings.HasPrefix(filter.Operator, "Not") {
		return !anyMatch
	}
	return anyMatch
}

// filterText returns a filter value as the text form of the indexed fields.
func filterText(value any) string {
	switch v := value.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(value)
}

func countStatuses(sensors []*sensorRecord) sensorsStatus {
	status := sensorsStatus{Class: ".SensorsStatusOverview"}
	for _, sensor := range sensors {
		switch sensor.field("status") {
		case "Online":
			status.OnlineCount++
		case "Offline":
			status.OfflineCount++
		case "Stale":
			status.StaleCount++
		case "Archived":
			status.ArchivedCount++
		}
		switch sensor.field("collectionStatus") {
		case "ADVANCED":
			status.AdvancedCount++
		case "SUSPENDED":
			status.SuspendedCount++
		}
		if sensor.field("outdated") == "true" {
			status.OutdatedCount++
		}
		if sensor.field("status") == "Online" && sensor.field("serviceStatus") == "Down" {
			status.ServiceErrorCount++
		}
	}
	return status
}

// sensorsPage returns the sensors of the requested page index and whether more results follow,
// as changed by the paging fault.
func (c *Console) sensorsPage(sensors []*sensorRecord, query sensorsQuery) ([]*sensorRecord, bool) {
	pages := (len(sensors) + query.limit - 1) / query.limit
	index := query.offset
	mode := c.pagingMode()

	switch {
	case mode == PagingRepeatLastPage && index >= pages && pages > 0:
		index = pages - 1
	case mode == PagingNewSensors && index >= pages:
		return syntheticSensors(index, query.limit), true
	}
	if index >= pages {
		return nil, mode != PagingNormal
	}
	start := index * query.limit
	end := min(start+query.limit, len(sensors))
	return sensors[start:end], mode != PagingNormal || end < len(sensors)
}

// syntheticSensors generates a page of sensors that belong to no tenant, for PagingNewSensors.
func syntheticSensors(index, limit int) []*sensorRecord {
	g := newGenerator(int64(index)+1_000_003, time.Now())
	sensors := make([]*sensorRecord, limit)
	for i := range sensors {
		sensors[i] = mustSensorRecord(g.sensor(i))
	}
	return sensors
}

func encodeSensorsResponse(total int, status sensorsStatus, page []*sensorRecord, more bool) []byte {
	size := 512
	for _, sensor := range page {
		size += len(sensor.raw) + 1
	}
	body := bytes.NewBuffer(make([]byte, 0, size))
	writeSensorsResponse(body, total, status, page, more)
	return body.Bytes()
}

var comma = []byte{','}

// writeSensorsResponse writes the JSON of a sensors response to out. Write errors mean that the
// client went away, so they are ignored.
func writeSensorsResponse(out io.Writer, total int, status sensorsStatus, page []*sensorRecord, more bool) {
	statusJSON, _ := json.Marshal(status) // a struct of strings and ints always encodes
	fmt.Fprintf(out, `{"totalResults":%d,"sensorsStatus":%s,"sensors":[`, total, statusJSON)
	for i, sensor := range page {
		if i > 0 {
			_, _ = out.Write(comma)
		}
		_, _ = out.Write(sensor.raw)
	}
	fmt.Fprintf(out, `],"hasMoreResults":%t}`, more)
}
