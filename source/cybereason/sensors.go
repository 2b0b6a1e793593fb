package cybereason

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

const sensorsPath = "/rest/sensors/query"

// Errors that stop paging (QuerySensors, QueryMalware, MalopsV2), so that a console that never
// ends paging cannot make the client loop forever.
var (
	ErrTooManyPages = errors.New("the console still reports more results after MaxPages pages")
	ErrPageRepeated = errors.New("the console returned the same page twice")
)

// Sensor is one object of the sensor inventory.
type Sensor struct {
	ID  string          // the sensorId member, "<serverId>:<pylumId>"
	Raw json.RawMessage // the object as the console sent it, without its iconBase64 member
	// Invalid is set when the object lacks what the client reads from it, its id or time, and Raw
	// is then the object as returned. Such an object is returned instead of failing the whole
	// response, so that the caller can dead-letter it and the feed goes on.
	Invalid error
}

// SensorPage is one page of the sensor inventory.
type SensorPage struct {
	Index        int // the 0-based page index, sent as "offset"
	TotalResults int // the number of sensors the console reports for the whole query
	Sensors      []Sensor
}

// sensorsQuery is the body of POST /rest/sensors/query. The console reads offset as a page index,
// not as an item offset.
type sensorsQuery struct {
	Limit            int             `json:"limit"`
	Offset           int             `json:"offset"`
	SortingFieldName string          `json:"sortingFieldName"`
	SortDirection    string          `json:"sortDirection"`
	Filters          []sensorsFilter `json:"filters"`
}

type sensorsFilter struct {
	FieldName string   `json:"fieldName"`
	Operator  string   `json:"operator"`
	Values    []string `json:"values"`
}

type sensorsResponse struct {
	envelope
	TotalResults   flexInt            `json:"totalResults"`
	Sensors        *[]json.RawMessage `json:"sensors"`
	HasMoreResults *flexBool          `json:"hasMoreResults"`
}

// more reports whether more pages follow the page of this response. Without hasMoreResults, a
// full page counts as followed by more, so a console that leaves the member out still returns its
// whole inventory. Paging then stops at the first empty or partial page.
func (r sensorsResponse) more(pageSize int) bool {
	if r.HasMoreResults != nil {
		return bool(*r.HasMoreResults)
	}
	return r.Sensors != nil && len(*r.Sensors) >= pageSize
}

// QuerySensors reads the whole sensor inventory page by page, with page indexes 0, 1, 2, and so
// on, and calls fn once for each non-empty page, in order. Paging ends when the console reports
// hasMoreResults false or returns an empty page. A response without hasMoreResults counts as
// reporting more results when its page is full.
//
// Page 0 comes alone. Its totalResults tells how many pages follow, and up to PageConcurrency of
// them are requested at a time, so at most PageConcurrency pages are held in memory, the one fn
// handles included. No page past the last one is requested, unless the inventory shrinks during
// paging. Pages are requested while earlier ones are handled, so each page shows the inventory
// at the time of its own request, as with one page at a time.
//
// It stops with ErrTooManyPages after MaxPages pages that all reported more results, and with
// ErrPageRepeated when a page has the same sensorIds as the page before. When the session expires
// in the middle, it logs in again and requests the same page index again. An error from fn stops
// paging and is returned wrapped.
func (c *Client) QuerySensors(ctx context.Context, fn func(SensorPage) error) error {
	return readPagesByIndex(ctx, c, "sensors", c.pageConcurrency, c.sensorsPage, fn)
}

// sensorsPage requests one page and reports whether the console has more results after it.
func (c *Client) sensorsPage(ctx context.Context, index int) (indexPage[SensorPage], error) {
	body, err := json.Marshal(sensorsQuery{
		Limit:  c.pageSize,
		Offset: index,
		// NOTE: machineName is not unique, so sensors with the same name could change places
		// between two page requests. It is the sort field that integrations are known to send,
		// whereas no source confirms that the console accepts sensorId as a sort field.
		SortingFieldName: "machineName",
		SortDirection:    "ASC",
		Filters:          []sensorsFilter{},
	})
	if err != nil {
		return indexPage[SensorPage]{}, err
	}

	var response sensorsResponse
	err = c.do(ctx, restCall{
		method:   http.MethodPost,
		endpoint: sensorsPath,
		body:     body,
		decode: func(r io.Reader) error {
			response = sensorsResponse{}
			if err := json.NewDecoder(r).Decode(&response); err != nil {
				return err
			}
			return response.check(http.MethodPost + " " + sensorsPath)
		},
	})
	if err != nil {
		return indexPage[SensorPage]{}, err
	}
	if response.Sensors == nil {
		return indexPage[SensorPage]{}, fmt.Errorf("POST %s: the response has no sensors array", sensorsPath)
	}

	page := SensorPage{Index: index, TotalResults: int(response.TotalResults), Sensors: make([]Sensor, 0, len(*response.Sensors))}
	for position, raw := range *response.Sensors {
		sensor, err := parseSensor(raw)
		if err != nil {
			sensor = Sensor{Raw: raw, Invalid: fmt.Errorf("sensor %d of page %d: %w", position, index, err)}
		}
		page.Sensors = append(page.Sensors, sensor)
	}
	more := response.more(c.pageSize)
	c.logger.Debug("received Cybereason sensors page", "page", index, "sensors", len(page.Sensors),
		"total_results", page.TotalResults, "has_more_results", more)
	return indexPage[SensorPage]{page: page, keys: sensorIDs(page.Sensors), more: more, total: page.TotalResults}, nil
}

// parseSensor reads the sensorId of a sensor object and removes its iconBase64 member.
func parseSensor(raw json.RawMessage) (Sensor, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return Sensor{}, err
	}
	value, ok := lookup(members, "sensorId")
	if !ok {
		return Sensor{}, errors.New("sensorId is missing")
	}
	var id string
	if err := json.Unmarshal(value, &id); err != nil {
		return Sensor{}, fmt.Errorf("sensorId %s is not a string", value)
	}
	if id == "" {
		return Sensor{}, errors.New("sensorId is empty")
	}
	return Sensor{ID: id, Raw: withoutMember(raw, members, iconMember)}, nil
}

func sensorIDs(sensors []Sensor) []string {
	ids := make([]string, len(sensors))
	for i, sensor := range sensors {
		ids[i] = sensor.ID
	}
	return ids
}
