package cybereason_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// fleetChange changes the tenant once, before the console reads it for the first request of
// page index atPage (a query with the client's page size, not a seam probe).
type fleetChange struct {
	atPage int
	apply  func(t *testing.T, tenant *cybereasontest.Tenant, order []string)
}

// removeSorted removes the sensors at the given positions of the sort order read before.
func removeSorted(positions ...int) func(*testing.T, *cybereasontest.Tenant, []string) {
	return func(t *testing.T, tenant *cybereasontest.Tenant, order []string) {
		for _, position := range positions {
			if !tenant.RemoveSensor(order[position]) {
				t.Errorf("sensor %s at position %d was already removed", order[position], position)
			}
		}
	}
}

// removeRange removes count sensors from position on in the sort order read before.
func removeRange(position, count int) func(*testing.T, *cybereasontest.Tenant, []string) {
	positions := make([]int, count)
	for i := range positions {
		positions[i] = position + i
	}
	return removeSorted(positions...)
}

// addFirst adds count sensors whose machineName sorts before every generated one.
func addFirst(count int) func(*testing.T, *cybereasontest.Tenant, []string) {
	return func(t *testing.T, tenant *cybereasontest.Tenant, _ []string) {
		var sensor map[string]any
		if err := json.Unmarshal(tenant.Sensors()[0], &sensor); err != nil {
			t.Fatalf("decode a sensor to copy: %v", err)
		}
		for i := range count {
			sensor["sensorId"] = fmt.Sprintf("added-%d:PYLUM-ADDED-%d", i, i)
			sensor["machineName"] = fmt.Sprintf("000-added-%d", i)
			raw, err := json.Marshal(sensor)
			if err != nil {
				t.Fatalf("encode an added sensor: %v", err)
			}
			if err := tenant.AddSensor(raw); err != nil {
				t.Errorf("AddSensor: %v", err)
			}
		}
	}
}

// inventoryRun is what one ReadSensorInventory against a changing console did.
type inventoryRun struct {
	check    cybereason.InventoryCheck
	handed   map[string]int // sensorId to the number of times fn received it
	pages    map[int]int    // page requests by page index
	probes   int            // seam probe requests
	order    []string       // the sort order before the inventory
	remained []string       // the sensorIds on the console after the inventory
}

// readChangingInventory reads the sort order of a generated tenant of sensors, then runs
// ReadSensorInventory while change applies.
func readChangingInventory(t *testing.T, sensors, pageSize, concurrency int, change *fleetChange) inventoryRun {
	t.Helper()
	tenant := cybereasontest.GenerateTenant(11, sensors, 0, testNow)
	run := inventoryRun{handed: make(map[string]int), pages: make(map[int]int)}

	var (
		armed   atomic.Bool
		applied sync.Once
		mu      sync.Mutex
	)
	hook := func(limit, offset int) {
		if !armed.Load() {
			return
		}
		mu.Lock()
		if limit == pageSize {
			run.pages[offset]++
		} else {
			run.probes++
		}
		mu.Unlock()
		if change != nil && limit == pageSize && offset == change.atPage {
			applied.Do(func() { change.apply(t, tenant, run.order) })
		}
	}
	server := cybereasontest.NewServer(tenant, cybereasontest.Options{Username: testUser, Password: testPassword, BeforeSensorsQuery: hook})
	t.Cleanup(server.Close)
	client := newPagingClient(t, server.URL, pageSize, concurrency)

	err := client.QuerySensors(context.Background(), func(page cybereason.SensorPage) error {
		for _, sensor := range page.Sensors {
			run.order = append(run.order, sensor.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("QuerySensors to read the sort order: %v", err)
	}

	armed.Store(true)
	run.check, err = client.ReadSensorInventory(context.Background(), func(page cybereason.SensorPage) error {
		for _, sensor := range page.Sensors {
			run.handed[sensor.ID]++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReadSensorInventory: %v", err)
	}
	run.remained = tenant.SensorIDs()
	return run
}

// checkNoneSkipped fails when a complete inventory missed a sensor that was on the console
// before and after it.
func checkNoneSkipped(t *testing.T, run inventoryRun) {
	t.Helper()
	if !run.check.Complete {
		return
	}
	before := make(map[string]bool, len(run.order))
	for _, id := range run.order {
		before[id] = true
	}
	for _, id := range run.remained {
		if before[id] && run.handed[id] == 0 {
			t.Errorf("complete inventory skipped sensor %s, which stayed on the console", id)
		}
	}
}

func TestReadSensorInventoryChangingFleet(t *testing.T) {
	const sensors, pageSize = 1000, 100 // 10 pages, and seam probes with a margin of 5
	tests := []struct {
		name         string
		change       *fleetChange
		wantComplete bool
		wantReason   string
		wantPages    int // the sensors added make an 11th page
	}{
		{"no change", nil, true, "", 10},
		{"fewer removals than the margin", &fleetChange{atPage: 3, apply: removeSorted(0, 1)}, true, "", 10},
		{"one removal before the seam", &fleetChange{atPage: 5, apply: removeSorted(450)}, true, "", 10},
		{"removals far beyond the margin", &fleetChange{atPage: 3, apply: removeRange(0, 40)}, false, cybereason.GapSeam, 10},
		{"additions before the cursor", &fleetChange{atPage: 3, apply: addFirst(3)}, true, "", 11},
		{"additions beyond the margin", &fleetChange{atPage: 3, apply: addFirst(40)}, false, cybereason.GapSeam, 11},
	}
	for _, concurrency := range []int{1, 3} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s concurrency %d", tt.name, concurrency), func(t *testing.T) {
				run := readChangingInventory(t, sensors, pageSize, concurrency, tt.change)

				if run.check.Complete != tt.wantComplete || run.check.Reason != tt.wantReason {
					t.Errorf("check = %+v, want complete %t with reason %q", run.check, tt.wantComplete, tt.wantReason)
				}
				checkNoneSkipped(t, run)
				for page := range tt.wantPages {
					if run.pages[page] != 1 {
						t.Errorf("page %d was requested %d times, want once", page, run.pages[page])
					}
				}
				if len(run.pages) != tt.wantPages {
					t.Errorf("requested pages %v, want pages 0 to %d only", run.pages, tt.wantPages-1)
				}
				if want := tt.wantPages - 1; run.probes != want || run.check.Probes != want {
					t.Errorf("console served %d seam probes and the check counted %d, want %d", run.probes, run.check.Probes, want)
				}
			})
		}
	}
}

func TestReadSensorInventoryUnchangedFleet(t *testing.T) {
	for _, concurrency := range []int{1, 3} {
		t.Run(fmt.Sprintf("concurrency %d", concurrency), func(t *testing.T) {
			run := readChangingInventory(t, 950, 100, concurrency, nil)

			if !run.check.Complete || run.check.Pages != 10 || run.check.Recovered != 0 {
				t.Errorf("check = %+v, want complete over 10 pages with nothing recovered", run.check)
			}
			if len(run.handed) != 950 {
				t.Errorf("fn received %d distinct sensors, want 950", len(run.handed))
			}
			for id, times := range run.handed {
				if times != 1 {
					t.Errorf("fn received sensor %s %d times, want once", id, times)
				}
			}
		})
	}
}

func TestReadSensorInventoryRecoversShiftedSensors(t *testing.T) {
	// With one page at a time, page 2 is read before the removal and page 3 after it, so the
	// two sensors that moved from page 3 to page 2 come from the seam probe.
	run := readChangingInventory(t, 1000, 100, 1, &fleetChange{atPage: 3, apply: removeSorted(0, 1)})

	if !run.check.Complete {
		t.Fatalf("check = %+v, want complete", run.check)
	}
	if run.check.Recovered != 2 {
		t.Errorf("check recovered %d sensors, want 2", run.check.Recovered)
	}
	for _, id := range run.order[300:302] {
		if run.handed[id] != 1 {
			t.Errorf("sensor %s, first of page 3 before the removal, was handed %d times, want once", id, run.handed[id])
		}
	}
}

func TestReadSensorInventoryGaps(t *testing.T) {
	tests := []struct {
		name       string
		change     *fleetChange
		wantReason string
		wantPage   int
	}{
		{"last sensor of a page removed", &fleetChange{atPage: 4, apply: removeSorted(399)}, cybereason.GapSeam, 4},
		{"list shrank past the last page", &fleetChange{atPage: 9, apply: removeRange(800, 150)}, cybereason.GapEndedEarly, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One page at a time, so that the change comes after the page before was read.
			run := readChangingInventory(t, 1000, 100, 1, tt.change)

			if run.check.Complete {
				t.Fatalf("check = %+v, want incomplete", run.check)
			}
			if run.check.Reason != tt.wantReason || run.check.Page != tt.wantPage {
				t.Errorf("check = %+v, want reason %q at page %d", run.check, tt.wantReason, tt.wantPage)
			}
		})
	}
}

func TestSeamMargin(t *testing.T) {
	tests := []struct{ pageSize, want int }{{1, 1}, {19, 1}, {20, 1}, {100, 5}, {1000, 50}}
	for _, tt := range tests {
		if got := cybereason.SeamMargin(tt.pageSize); got != tt.want {
			t.Errorf("SeamMargin(%d) = %d, want %d", tt.pageSize, got, tt.want)
		}
	}
}

func TestSeamProbePageStraddlesThePosition(t *testing.T) {
	for _, pageSize := range []int{1, 2, 7, 100, 999, 1000} {
		margin := cybereason.SeamMargin(pageSize)
		for page := 1; page <= 5000; page++ {
			position := page * pageSize
			limit, index := cybereason.SeamProbePage(position, pageSize)
			if limit < 2 || limit > cybereason.MaxPageSize {
				t.Fatalf("page size %d, position %d: limit %d, want 2 to %d", pageSize, position, limit, cybereason.MaxPageSize)
			}
			start, end := index*limit, (index+1)*limit
			if position-start < margin || end-position < margin {
				t.Fatalf("page size %d, position %d: probe holds positions %d to %d, want %d on each side", pageSize, position, start, end-1, margin)
			}
		}
	}
}
