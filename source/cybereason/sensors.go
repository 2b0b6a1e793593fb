package cybereason

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
)

const sensorsPath = "/rest/sensors/query"

// Errors that stop QuerySensors so that a console that never ends paging cannot make it loop
// forever.
var (
	ErrTooManyPages = errors.New("the console still reports more sensors after MaxPages pages")
	ErrPageRepeated = errors.New("the console returned the same sensors page twice")
)

// Sensor is one object of the sensor inventory.
type Sensor struct {
	ID  string          // the sensorId member, "<serverId>:<pylumId>"
	Raw json.RawMessage // the object as the console sent it, without its iconBase64 member
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
// on, and calls fn once for each non-empty page, in order. Only one page is held in memory at a
// time. Paging ends when the console reports hasMoreResults false or returns an empty page. A
// response without hasMoreResults counts as reporting more results when its page is full.
//
// It stops with ErrTooManyPages after MaxPages pages that all reported more results, and with
// ErrPageRepeated when a page has the same sensorIds as the page before. When the session expires
// in the middle, it logs in again and requests the same page index again. An error from fn stops
// paging and is returned wrapped.
func (c *Client) QuerySensors(ctx context.Context, fn func(SensorPage) error) error {
	var previous []string
	for index := 0; ; index++ {
		if index == c.maxPages {
			return fmt.Errorf("query sensors: %w (MaxPages is %d, PageSize %d)", ErrTooManyPages, c.maxPages, c.pageSize)
		}

		page, more, err := c.sensorsPage(ctx, index)
		if err != nil {
			return fmt.Errorf("query sensors page %d: %w", index, err)
		}
		c.logger.Debug("received Cybereason sensors page", "page", index, "sensors", len(page.Sensors),
			"total_results", page.TotalResults, "has_more_results", more)
		if len(page.Sensors) == 0 {
			return nil
		}

		ids := sensorIDs(page.Sensors)
		if slices.Equal(ids, previous) {
			return fmt.Errorf("query sensors page %d: %w: it has the same %d sensorIds as page %d", index, ErrPageRepeated, len(ids), index-1)
		}
		if err := fn(page); err != nil {
			return fmt.Errorf("handle sensors page %d: %w", index, err)
		}
		if !more {
			return nil
		}
		previous = ids
	}
}

// sensorsPage requests one page and reports whether the console has more results after it.
func (c *Client) sensorsPage(ctx context.Context, index int) (SensorPage, bool, error) {
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
		return SensorPage{}, false, err
	}

	var response sensorsResponse
	err = c.do(ctx, restCall{
		method:   http.MethodPost,
		endpoint: sensorsPath,
		body:     body,
		decode: func(r io.Reader) error {
			response = sensorsResponse{}
			return json.NewDecoder(r).Decode(&response)
		},
	})
	if err != nil {
		return SensorPage{}, false, err
	}
	if response.Sensors == nil {
		return SensorPage{}, false, fmt.Errorf("POST %s: the response has no sensors array", sensorsPath)
	}

	page := SensorPage{Index: index, TotalResults: int(response.TotalResults), Sensors: make([]Sensor, 0, len(*response.Sensors))}
	for position, raw := range *response.Sensors {
		sensor, err := parseSensor(raw)
		if err != nil {
			return SensorPage{}, false, fmt.Errorf("sensor %d of the page: %w", position, err)
		}
		page.Sensors = append(page.Sensors, sensor)
	}
	return page, response.more(c.pageSize), nil
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
