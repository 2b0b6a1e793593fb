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
	// HasMoreResults is set when the console reported more sensors after this page.
	HasMoreResults bool

	probe []Sensor // the seam probe requested with the page, by ReadSensorInventory
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
// Page 0 comes alone. Its totalResults gives the number of pages that follow. Up to
// PageConcurrency of them are requested at a time, so at most PageConcurrency pages are held in
// memory, the one fn handles included. A console that sends hasMoreResults is not asked for a page past the last
// one, unless the inventory shrinks during paging. Pages are requested while earlier ones are handled, so each page shows the inventory
// at the time of its own request, as with one page at a time.
//
// It stops with ErrTooManyPages after MaxPages pages that all reported more results, and with
// ErrPageRepeated when a page has the same sensorIds as the page before. When the session expires
// in the middle, it logs in again and requests the same page index again. An error from fn stops
// paging and is returned wrapped. It does not check that the pages missed no sensor while the
// inventory changed: ReadSensorInventory does.
func (c *Client) QuerySensors(ctx context.Context, fn func(SensorPage) error) error {
	return readPagesByIndex(ctx, c, "sensors", c.pageConcurrency, c.sensorsPage, fn)
}

// sensorsPage requests one page and reports whether the console has more results after it.
func (c *Client) sensorsPage(ctx context.Context, index int) (indexPage[SensorPage], error) {
	response, err := c.querySensorsPage(ctx, c.pageSize, index, true)
	if err != nil {
		return indexPage[SensorPage]{}, err
	}

	page := SensorPage{Index: index, TotalResults: int(response.TotalResults), Sensors: make([]Sensor, 0, len(*response.Sensors))}
	for position, raw := range *response.Sensors {
		sensor, err := parseSensor(raw)
		if err != nil {
			sensor = Sensor{Raw: raw, Invalid: fmt.Errorf("sensor %d of page %d: %w", position, index, err)}
		}
		page.Sensors = append(page.Sensors, sensor)
	}
	page.HasMoreResults = response.more(c.pageSize)
	c.logger.Debug("received Cybereason sensors page", "page", index, "sensors", len(page.Sensors),
		"total_results", page.TotalResults, "has_more_results", page.HasMoreResults)
	return indexPage[SensorPage]{page: page, keys: sensorIDs(page.Sensors), more: page.HasMoreResults, total: page.TotalResults}, nil
}

// querySensorsPage sends one sensors query for the page index of limit sensors and returns the
// decoded response, which has a sensors array. sizeHint makes the response size the hint for
// the buffer of the next response, which small seam probes should not shrink.
func (c *Client) querySensorsPage(ctx context.Context, limit, index int, sizeHint bool) (sensorsResponse, error) {
	body, err := json.Marshal(sensorsQuery{
		Limit:  limit,
		Offset: index,
		// NOTE: machineName is not unique, so sensors with the same name could change places
		// between two page requests. It is the sort field that integrations are known to send,
		// whereas no source confirms that the console accepts sensorId as a sort field.
		SortingFieldName: "machineName",
		SortDirection:    "ASC",
		Filters:          []sensorsFilter{},
	})
	if err != nil {
		return sensorsResponse{}, err
	}

	var response sensorsResponse
	err = c.do(ctx, restCall{
		method:   http.MethodPost,
		endpoint: sensorsPath,
		body:     body,
		decode: func(r io.Reader) error {
			body, err := c.readSensorsBody(r, sizeHint)
			if err != nil {
				return err
			}
			if response, err = decodeSensorsResponse(body); err != nil {
				return err
			}
			return response.check(http.MethodPost + " " + sensorsPath)
		},
	})
	if err != nil {
		return sensorsResponse{}, err
	}
	if response.Sensors == nil {
		return sensorsResponse{}, fmt.Errorf("POST %s: the response has no sensors array", sensorsPath)
	}
	return response, nil
}

// readSensorsBody reads a whole sensors response into a buffer sized after the previous page,
// so that a page of about 3 MB takes one allocation instead of a series of growing copies.
// sizeHint makes this response the size of the next buffer.
func (c *Client) readSensorsBody(r io.Reader, sizeHint bool) ([]byte, error) {
	size := c.sensorsBodySize.Load()
	if !sizeHint {
		size = 0
	}
	body := bytes.NewBuffer(make([]byte, 0, size+size/16+bytes.MinRead))
	if _, err := body.ReadFrom(r); err != nil {
		return nil, err
	}
	if sizeHint {
		c.sensorsBodySize.Store(int64(body.Len()))
	}
	return body.Bytes(), nil
}

// decodeSensorsResponse decodes a sensors response as json.Unmarshal would, but leaves each
// sensor object in place in body instead of copying it: the page's sensors share body. It checks
// the syntax of the whole body first, then decodes all members but sensors with json.Unmarshal.
func decodeSensorsResponse(body []byte) (sensorsResponse, error) {
	if err := checkJSON(body); err != nil {
		return sensorsResponse{}, err
	}
	members, err := objectMembers(body)
	if err != nil {
		return sensorsResponse{}, fmt.Errorf("the response is %w", err)
	}

	var response sensorsResponse
	// Like encoding/json, the last member whose name matches in any case wins.
	sensorsValue, found := lookupFold(members, "sensors")
	if err := json.Unmarshal(withoutMemberFold(body, members, "sensors"), &response); err != nil {
		return sensorsResponse{}, err
	}
	if !found || string(sensorsValue) == "null" {
		return response, nil
	}
	raws, err := arrayElements(sensorsValue)
	if err != nil {
		return sensorsResponse{}, fmt.Errorf("the sensors member: %w", err)
	}
	response.Sensors = &raws
	return response, nil
}

// arrayElements returns the elements of a syntactically valid JSON array, sharing its memory.
func arrayElements(array []byte) ([]json.RawMessage, error) {
	if len(array) == 0 || array[0] != '[' {
		return nil, fmt.Errorf("%w, got %.20q", errNotArray, array)
	}
	var elements []json.RawMessage
	i := skipBlanks(array, 1)
	if array[i] == ']' {
		return []json.RawMessage{}, nil
	}
	for {
		end, err := skipValue(array, i)
		if err != nil {
			return nil, err
		}
		elements = append(elements, json.RawMessage(array[i:end:end]))
		i = skipBlanks(array, end)
		if array[i] == ']' {
			return elements, nil
		}
		i = skipBlanks(array, i+1) // the comma
	}
}

var errNotArray = errors.New("not a JSON array")

// parseSensor reads the sensorId of a sensor object and removes its iconBase64 member. It lists
// the object's members only when the object has an iconBase64 member or escaped member names,
// which the objects of a console seldom have.
func parseSensor(raw json.RawMessage) (Sensor, error) {
	value, plain, err := sensorIDValue(raw)
	if err != nil {
		return Sensor{}, err
	}
	if !plain {
		return parseSensorSlowly(raw)
	}
	if value == nil {
		return Sensor{}, errors.New("sensorId is missing")
	}
	id, err := sensorIDString(value)
	if err != nil {
		return Sensor{}, err
	}
	return Sensor{ID: id, Raw: raw}, nil
}

// sensorIDValue returns the raw value of the last sensorId member of object, or nil without
// one. plain is false when an iconBase64 member or an escaped member name needs parseSensorSlowly.
func sensorIDValue(object []byte) (value []byte, plain bool, err error) {
	i := skipBlanks(object, 0)
	if i >= len(object) || object[i] != '{' {
		return nil, false, errNotObject
	}
	i = skipBlanks(object, i+1)
	if i < len(object) && object[i] == '}' {
		return nil, true, checkEnd(object, i+1)
	}
	for {
		if i >= len(object) || object[i] != '"' {
			return nil, false, fmt.Errorf("expected a member name at byte %d of the object", i)
		}
		keyEnd, err := skipString(object, i)
		if err != nil {
			return nil, false, err
		}
		name := object[i+1 : keyEnd-1]
		if bytes.IndexByte(name, '\\') >= 0 || string(name) == iconMember {
			return nil, false, nil
		}

		colon := skipBlanks(object, keyEnd)
		if colon >= len(object) || object[colon] != ':' {
			return nil, false, fmt.Errorf("expected ':' after member %q", name)
		}
		valueStart := skipBlanks(object, colon+1)
		valueEnd, err := skipValue(object, valueStart)
		if err != nil {
			return nil, false, fmt.Errorf("member %q: %w", name, err)
		}
		if string(name) == "sensorId" {
			value = object[valueStart:valueEnd]
		}

		i = skipBlanks(object, valueEnd)
		if i >= len(object) {
			return nil, false, errors.New("unterminated JSON object")
		}
		switch object[i] {
		case ',':
			i = skipBlanks(object, i+1)
		case '}':
			return value, true, checkEnd(object, i+1)
		default:
			return nil, false, fmt.Errorf("unexpected %q at byte %d of the object", object[i], i)
		}
	}
}

// parseSensorSlowly is parseSensor for objects with an iconBase64 member or escaped names.
func parseSensorSlowly(raw json.RawMessage) (Sensor, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return Sensor{}, err
	}
	value, ok := lookup(members, "sensorId")
	if !ok {
		return Sensor{}, errors.New("sensorId is missing")
	}
	id, err := sensorIDString(value)
	if err != nil {
		return Sensor{}, err
	}
	return Sensor{ID: id, Raw: withoutMember(raw, members, iconMember)}, nil
}

// sensorIDString decodes a sensorId value, which must be a non-empty string.
func sensorIDString(value []byte) (string, error) {
	var id string
	if len(value) >= 2 && value[0] == '"' && bytes.IndexByte(value, '\\') < 0 {
		id = string(value[1 : len(value)-1])
	} else if err := json.Unmarshal(value, &id); err != nil {
		return "", fmt.Errorf("sensorId %s is not a string", value)
	}
	if id == "" {
		return "", errors.New("sensorId is empty")
	}
	return id, nil
}

func sensorIDs(sensors []Sensor) []string {
	ids := make([]string, len(sensors))
	for i, sensor := range sensors {
		ids[i] = sensor.ID
	}
	return ids
}
