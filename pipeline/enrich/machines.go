package enrich

import (
	"container/list"
	"strings"
	"sync"
)

// machineIndex maps (tenant, machine guid) to the sensorId of the last sensor seen with that guid,
// so that a finding can name the asset records of its machines. It keeps at most max entries and
// drops the least recently used one when full.
//
// It is best effort: the index lives in memory only, starts empty, and receives only the sensors
// that reach this Stage instance. A MalOp processed before its machine's sensor, after a restart, or by
// another consumer of the group gets no uid or asset_uid for that machine. Since those fields are
// part of the fingerprint, the same MalOp can be re-emitted once its machines become known.
type machineIndex struct {
	mu      sync.Mutex
	max     int
	entries map[machineKey]*list.Element // value: *machineEntry
	recency *list.List                   // front: most recently used
}

type machineKey struct{ tenant, guid string }

type machineEntry struct {
	key      machineKey
	sensorID string
}

func newMachineIndex(max int) *machineIndex {
	return &machineIndex{max: max, entries: make(map[machineKey]*list.Element), recency: list.New()}
}

// store records that the sensor sensorID runs on the machine guid. Empty values are ignored.
func (m *machineIndex) store(tenant, guid, sensorID string) {
	if guid == "" || sensorID == "" {
		return
	}
	// The strings may share memory with the whole decoded message, which the index must not keep.
	guid, sensorID = strings.Clone(guid), strings.Clone(sensorID)
	key := machineKey{tenant, guid}
	m.mu.Lock()
	defer m.mu.Unlock()
	if element, ok := m.entries[key]; ok {
		element.Value.(*machineEntry).sensorID = sensorID
		m.recency.MoveToFront(element)
		return
	}
	m.entries[key] = m.recency.PushFront(&machineEntry{key: key, sensorID: sensorID})
	for m.recency.Len() > m.max {
		oldest := m.recency.Back()
		m.recency.Remove(oldest)
		delete(m.entries, oldest.Value.(*machineEntry).key)
	}
}

// lookup returns the sensorId last stored for the machine guid.
func (m *machineIndex) lookup(tenant, guid string) (string, bool) {
	if guid == "" {
		return "", false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	element, ok := m.entries[machineKey{tenant, guid}]
	if !ok {
		return "", false
	}
	m.recency.MoveToFront(element)
	return element.Value.(*machineEntry).sensorID, true
}

// len returns the number of machines in the index.
func (m *machineIndex) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recency.Len()
}
