package cybereason

import (
	"context"
	"fmt"
	"sync"
)

// Reasons why InventoryCheck.Complete is false.
const (
	// GapSeam means that the seam probe of a page lacked the last sensor of the page before or
	// the first sensor of the page, so sensors between the two pages may have been skipped.
	GapSeam = "seam_gap"
	// GapEndedEarly means that paging ended at an empty page after a page that reported more
	// results, so the inventory shrank during paging and its last sensors may have been skipped.
	GapEndedEarly = "ended_early"
)

// InventoryCheck is the outcome of the continuity check of one ReadSensorInventory.
type InventoryCheck struct {
	// Complete is set when every sensor that was on the console during the whole inventory was
	// handed to fn. Without it, Reason is GapSeam or GapEndedEarly.
	Complete bool
	Reason   string
	// Page is the page of the first gap: for GapSeam, the sensors between page Page-1 and page
	// Page may be missing, and for GapEndedEarly, Page is the empty page that ended paging.
	Page   int
	Pages  int // the non-empty pages handed to fn
	Probes int // the seam probes received, one per page after page 0
	// Recovered is the number of sensors that only a seam probe listed, because the inventory
	// shrank before them between two page requests. They were handed to fn with the next page.
	Recovered int
}

// ReadSensorInventory reads the sensor inventory as QuerySensors does and checks that no sensor
// was skipped because the inventory changed between two page requests.
//
// The console pages by page index, so two pages of one limit never overlap. A sensor removed
// before the position of the next page shifts the list left by one, and the first sensor of
// the next page is then never read. With each page n after page 0, ReadSensorInventory thus
// requests a seam probe at the same time: a query of one page index whose limit is chosen so
// that its page straddles the position where page n starts, with SeamMargin positions or more on
// each side (see seamProbePage). When the probe lists both the last sensor of page n-1 and the
// first sensor of page n, the sensors between them in the probe are the ones the shift skipped.
// They are handed to fn at the start of page n, and the seam is closed. When the probe lacks one
// of the two, because the list shifted by about SeamMargin or more or one of them left the
// console, the inventory is reported incomplete with GapSeam. It is also incomplete with
// GapEndedEarly when paging ended at an empty page after a page that reported more results.
//
// A closed seam proves that no sensor lies between the two pages in the sort order at the
// probe's time, other than those handed to fn. A sensor present from the first request to the
// last answer, which must have been there, sorts inside a page or at a seam already read. Page
// 0 starts at the first position and the last page reported no more results, so a complete
// inventory handed every such sensor to fn. A sensor added or removed during the inventory may
// be handed to fn or not, and a sensor that sensors registered before it pushed into the next
// page is handed to fn twice, so the caller deduplicates by sensorId.
//
// The check does not compare the totalResults of the pages. A changed total proves no skip,
// because a sensor registered after the paging position changes it harmlessly, and an equal
// total proves none missing, because a removal before the position and a registration after
// it cancel out.
//
// NOTE: the proof needs one order of the sensors for every request. The sort field,
// machineName, is not unique, and no source confirms that the console orders sensors with the
// same name the same way in every query. A console that orders them differently could skip or
// repeat a sensor among those with one name without the check noticing.
//
// Each probe is one more request: the inventory takes 2*pages-1 requests, of which the probes
// are about a tenth of a page each. They count in PageConcurrency like the pages. An error of
// fn, of a page request or of a probe stops the inventory as with QuerySensors.
func (c *Client) ReadSensorInventory(ctx context.Context, fn func(SensorPage) error) (InventoryCheck, error) {
	var (
		check    InventoryCheck
		lastID   string // the last readable sensorId of the page before
		lastMore bool
	)
	err := readPagesByIndex(ctx, c, "sensors", c.pageConcurrency, c.inventoryPage, func(page SensorPage) error {
		first, last := edgeIDs(page.Sensors)
		if page.Index > 0 {
			check.Probes++
			skipped, closed := closeSeam(page.probe, lastID, first)
			if !closed && check.Reason == "" {
				check.Reason, check.Page = GapSeam, page.Index
			}
			if len(skipped) > 0 {
				check.Recovered += len(skipped)
				c.logger.Debug("seam probe found sensors that no page listed", "page", page.Index, "sensors", len(skipped))
				page.Sensors = append(skipped, page.Sensors...)
			}
			page.probe = nil
		}
		if last != "" {
			lastID = last
		}
		lastMore = page.HasMoreResults
		check.Pages++
		return fn(page)
	})
	if err != nil {
		return check, err
	}

	if lastMore && check.Reason == "" {
		check.Reason, check.Page = GapEndedEarly, check.Pages
	}
	check.Complete = check.Reason == ""
	return check, nil
}

// closeSeam looks for before, the last sensor of a page, and after, the first sensor of the
// next page, in the seam probe. It returns the sensors between them and reports whether both
// are there. When after comes first or is the same sensor, the two pages overlapped and nothing
// lies between them.
func closeSeam(probe []Sensor, before, after string) (skipped []Sensor, closed bool) {
	if before == "" || after == "" {
		return nil, false
	}
	if before == after {
		return nil, true
	}
	i, j := -1, -1
	for position, sensor := range probe {
		switch sensor.ID {
		case before:
			i = position
		case after:
			j = position
		}
	}
	if i < 0 || j < 0 {
		return nil, false
	}
	if j <= i {
		return nil, true
	}
	return probe[i+1 : j : j], true
}

// edgeIDs returns the first and last non-empty sensorIds of sensors, or "" when there is none.
func edgeIDs(sensors []Sensor) (first, last string) {
	for _, sensor := range sensors {
		if sensor.ID != "" {
			first = sensor.ID
			break
		}
	}
	for i := len(sensors) - 1; i >= 0; i-- {
		if sensors[i].ID != "" {
			last = sensors[i].ID
			break
		}
	}
	return first, last
}

// inventoryPage requests page index and, for every page after page 0, its seam probe at the
// same time.
func (c *Client) inventoryPage(ctx context.Context, index int) (indexPage[SensorPage], error) {
	if index == 0 {
		return c.sensorsPage(ctx, index)
	}

	var (
		probe    []Sensor
		probeErr error
		done     sync.WaitGroup
	)
	done.Go(func() { probe, probeErr = c.seamProbe(ctx, index*c.pageSize) })
	page, err := c.sensorsPage(ctx, index)
	done.Wait()
	if err != nil {
		return page, err
	}
	if probeErr != nil {
		return page, fmt.Errorf("seam probe before page %d: %w", index, probeErr)
	}
	page.page.probe = probe
	return page, nil
}

// seamProbe requests the page that straddles position, as chosen by seamProbePage, and returns
// its sensors in order. An object without a readable sensorId has an empty ID and Invalid set.
func (c *Client) seamProbe(ctx context.Context, position int) ([]Sensor, error) {
	limit, index := seamProbePage(position, c.pageSize)
	response, err := c.querySensorsPage(ctx, limit, index, false)
	if err != nil {
		return nil, err
	}

	sensors := make([]Sensor, 0, len(*response.Sensors))
	for i, raw := range *response.Sensors {
		sensor, err := parseSensor(raw)
		if err != nil {
			sensor = Sensor{Raw: raw, Invalid: fmt.Errorf("sensor %d of the seam probe at position %d: %w", i, position, err)}
		}
		sensors = append(sensors, sensor)
	}
	c.logger.Debug("received Cybereason sensors seam probe", "position", position, "limit", limit, "offset", index, "sensors", len(sensors))
	return sensors, nil
}

// SeamMargin returns the number of positions that a seam probe covers on each side of the
// start of a page of pageSize sensors: max(1, pageSize/20). A shift of the list by fewer
// positions between two page requests is closed by the probe, and one of SeamMargin or more
// may make the inventory incomplete.
func SeamMargin(pageSize int) int { return max(1, pageSize/20) }

// seamProbePage returns the limit and page index of the sensors query whose page holds the
// positions position-1 and position with at least SeamMargin positions on each side. It takes
// the smallest such limit from twice the margin up, so a probe costs about a tenth of a page.
// Where no limit up to MaxPageSize gives the whole margin, it takes the limit with the largest.
func seamProbePage(position, pageSize int) (limit, index int) {
	margin := SeamMargin(pageSize)
	best, bestMargin := 0, -1
	for p := max(2, 2*margin); p <= MaxPageSize; p++ {
		before := position % p
		got := min(before, p-before)
		if got > bestMargin {
			best, bestMargin = p, got
		}
		if got >= margin {
			break
		}
	}
	return best, position / best
}
