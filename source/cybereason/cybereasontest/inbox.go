package cybereasontest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
)

// inboxQueryBody is the body of POST /rest/detection/inbox. Times are epoch milliseconds, as
// numbers or numeric strings.
type inboxQueryBody struct {
	StartTime json.RawMessage `json:"startTime"`
	EndTime   json.RawMessage `json:"endTime"`
	GroupIDs  []string        `json:"groupIds"`
}

// machineCounter is the machineCounterModel member of an inbox response. A machine is infected
// when an open MalOp lists it. Archived sensors are not counted.
type machineCounter struct {
	TotalMachines        int `json:"totalMachines"`
	OnlineInfectedCount  int `json:"onlineInfectedCount"`
	OnlineCleanCount     int `json:"onlineCleanCount"`
	OfflineInfectedCount int `json:"offlineInfectedCount"`
	OfflineCleanCount    int `json:"offlineCleanCount"`
}

// serveInbox returns the MalOps active in [startTime, endTime], which are those created at or
// before endTime and last updated at or after startTime. Like the console, it responds 400
// "Time range is not valid" when a time is missing or startTime is after endTime.
func (c *Console) serveInbox(w http.ResponseWriter, r *http.Request) {
	var body inboxQueryBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		writeJSONError(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
		return
	}
	start, startErr := epochMillis(body.StartTime)
	end, endErr := epochMillis(body.EndTime)
	if startErr != nil || endErr != nil || textValue(body.StartTime) == "" || textValue(body.EndTime) == "" || start > end {
		writeJSONError(w, r, http.StatusBadRequest, "Time range is not valid")
		return
	}

	malops, counter := c.tenant.inbox(start, end, body.GroupIDs)
	counterJSON, _ := json.Marshal(counter) // a struct of ints always encodes

	var response bytes.Buffer
	response.WriteString(`{"malops":[`)
	for i, malop := range malops {
		if i > 0 {
			response.WriteByte(',')
		}
		response.Write(malop)
	}
	response.WriteString(`],"machineCounterModel":`)
	response.Write(counterJSON)
	response.WriteByte('}')

	c.wait(r.Context())
	writeBody(w, r, http.StatusOK, jsonType, response.Bytes())
}

// inbox returns the MalOps active between start and end (epoch milliseconds), limited to the
// given sensor groups when there are any, and the machine counters.
func (t *Tenant) inbox(start, end int64, groups []string) ([]json.RawMessage, machineCounter) {
	t.mu.RLock()
	defer t.mu.RUnlock()

	var malops []json.RawMessage
	infected := make(map[string]bool)
	for _, malop := range t.malops {
		if !malop.closed {
			for _, guid := range malop.machineGUIDs {
				infected[guid] = true
			}
		}
		if malop.creation > end || malop.lastUpdate < start {
			continue
		}
		if len(groups) > 0 && !slices.Contains(groups, malop.group) {
			continue
		}
		malops = append(malops, malop.raw)
	}

	var counter machineCounter
	for _, sensor := range t.sensors {
		status := sensor.field("status")
		if status == "Archived" {
			continue
		}
		counter.TotalMachines++
		online, isInfected := status == "Online", infected[sensor.field("guid")]
		switch {
		case online && isInfected:
			counter.OnlineInfectedCount++
		case online:
			counter.OnlineCleanCount++
		case isInfected:
			counter.OfflineInfectedCount++
		default:
			counter.OfflineCleanCount++
		}
	}
	return malops, counter
}
