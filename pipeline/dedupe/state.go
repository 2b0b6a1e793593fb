package dedupe

import "sync"

// State stores the fingerprint last forwarded per output topic and key.
// Implementations must be safe for concurrent use.
type State interface {
	Get(topic, key string) (fingerprint string, ok bool)
	Put(topic, key, fingerprint string)
	Delete(topic, key string)
}

// MemoryState is a State kept in memory. Its size grows with the number of
// distinct keys; nothing expires.
type MemoryState struct {
	mu           sync.RWMutex
	fingerprints map[stateKey]string
}

type stateKey struct{ topic, key string }

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState {
	return &MemoryState{fingerprints: make(map[stateKey]string)}
}

// Get returns the fingerprint stored for (topic, key).
func (m *MemoryState) Get(topic, key string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fingerprint, ok := m.fingerprints[stateKey{topic, key}]
	return fingerprint, ok
}

// Put stores fingerprint for (topic, key).
func (m *MemoryState) Put(topic, key, fingerprint string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fingerprints[stateKey{topic, key}] = fingerprint
}

// Delete removes the entry for (topic, key).
func (m *MemoryState) Delete(topic, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.fingerprints, stateKey{topic, key})
}

// Len returns the number of entries.
func (m *MemoryState) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.fingerprints)
}
