package dedupe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// DefaultMissedInventories is the number of complete inventories an asset
// must be missing from before dedupe publishes it as removed.
const DefaultMissedInventories = 1

// DefaultSecurityStateTopic is the output topic of asset security-state
// records.
const DefaultSecurityStateTopic = "oversoc.asset-security-state"

// AssetConfig turns on, for the route of the asset records, the asset
// lifecycle and the security-state records.
//
// Lifecycle: the input topic carries, besides asset records, the inventory end
// events of package inventory, each on the partition it closes. When an asset
// of a partition was missing from MissedInventories complete inventories in a
// row, the stage publishes its last record once more with lifecycle_state
// "removed", then a tombstone for its key. An asset that comes back later is
// new again and published as it is.
//
// Security state: when an asset record's protection posture (schemas.Posture,
// security level or security states) differs from the key's previous record,
// the stage also publishes an asset security-state record to
// SecurityStateTopic. The first record of a key publishes none.
type AssetConfig struct {
	// Topic is the input topic of the asset records, one of Config.Routes.
	// Required.
	Topic string
	// SecurityStateTopic receives the security-state records. Default:
	// DefaultSecurityStateTopic.
	SecurityStateTopic string
	// MissedInventories is the number of complete inventories in a row that
	// an asset must be missing from to be removed. Default:
	// DefaultMissedInventories.
	MissedInventories int
	// Validator checks every record the stage builds. Required.
	Validator *schemas.Validator
}

func (cfg *AssetConfig) validate(routes map[string]string) []error {
	var errs []error
	if cfg.SecurityStateTopic == "" {
		cfg.SecurityStateTopic = DefaultSecurityStateTopic
	}
	if cfg.MissedInventories == 0 {
		cfg.MissedInventories = DefaultMissedInventories
	}
	if _, ok := routes[cfg.Topic]; !ok {
		errs = append(errs, fmt.Errorf("assets: topic %q has no route", cfg.Topic))
	}
	for in, out := range routes {
		if cfg.SecurityStateTopic == in || cfg.SecurityStateTopic == out {
			errs = append(errs, fmt.Errorf("assets: security-state topic %q is also a route topic", cfg.SecurityStateTopic))
		}
	}
	if cfg.MissedInventories < 0 {
		errs = append(errs, fmt.Errorf("assets: missed inventories must be at least 1, got %d", cfg.MissedInventories))
	}
	if cfg.Validator == nil {
		errs = append(errs, errors.New("assets: validator is required (use schemas.NewValidator)"))
	}
	return errs
}

// partitionAssets is the asset state of one output partition besides the
// fingerprints.
type partitionAssets struct {
	// snapshots contains the last forwarded or restored record of each
	// present key, without unmapped and protection.raw, which the removed
	// record and the security-state record are built from.
	snapshots map[string]*schemas.Asset
	// seen contains, per key, the inventory id of the key's latest input
	// record that carried one.
	seen map[string]string
	// misses counts, per key, the complete inventories in a row that lacked
	// the key.
	misses map[string]int
	// lastEnd is the start time (epoch ms) of the inventory of the last end
	// event processed, complete or not, and 0 before the first.
	lastEnd int64
}

func newPartitionAssets() *partitionAssets {
	return &partitionAssets{
		snapshots: make(map[string]*schemas.Asset),
		seen:      make(map[string]string),
		misses:    make(map[string]int),
	}
}

// isAssetInput reports whether msg comes from the asset route with the asset
// features on.
func (s *Stage) isAssetInput(msg kafka.Message) bool {
	return s.assets != nil && msg.Topic == s.assets.Topic
}

// partitionAssets returns the asset state of an output partition, creating
// it. The caller holds s.mu.
func (s *Stage) partitionAssets(at topicPartition) *partitionAssets {
	state := s.assetState[at]
	if state == nil {
		state = newPartitionAssets()
		s.assetState[at] = state
	}
	return state
}

// noteSeen records the inventory id that an asset record carries.
func (s *Stage) noteSeen(at topicPartition, key string, headers []kafka.Header) {
	id, ok := sink.HeaderValue(headers, inventory.HeaderID)
	if !ok || id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	state := s.partitionAssets(at)
	previous, had := state.seen[key]
	if had && previous == id {
		return
	}
	state.seen[key] = id
	s.onRollback(func() {
		if had {
			state.seen[key] = previous
		} else {
			delete(state.seen, key)
		}
	})
}

// setSnapshot stores the key's last record, or deletes it when asset is nil.
// The caller holds s.mu.
func (s *Stage) setSnapshot(at topicPartition, key string, asset *schemas.Asset) {
	state := s.partitionAssets(at)
	previous, had := state.snapshots[key]
	if asset == nil {
		delete(state.snapshots, key)
	} else {
		state.snapshots[key] = asset
	}
	s.onRollback(func() {
		if had {
			state.snapshots[key] = previous
		} else {
			delete(state.snapshots, key)
		}
	})
}

// forgetAsset deletes the lifecycle state of a key. The caller holds s.mu.
func (s *Stage) forgetAsset(at topicPartition, key string) {
	s.setSnapshot(at, key, nil)
	state := s.partitionAssets(at)
	seen, hadSeen := state.seen[key]
	misses, hadMisses := state.misses[key]
	delete(state.seen, key)
	delete(state.misses, key)
	s.onRollback(func() {
		if hadSeen {
			state.seen[key] = seen
		}
		if hadMisses {
			state.misses[key] = misses
		}
	})
}

// onRollback adds an undo step for RollbackBatch. The caller holds s.mu.
func (s *Stage) onRollback(undo func()) {
	s.undoSteps = append(s.undoSteps, undo)
}

// decodeSnapshot decodes an asset record and drops the parts that the
// lifecycle never republishes, to keep the memory per key small.
func decodeSnapshot(value []byte) (*schemas.Asset, error) {
	var asset schemas.Asset
	if err := json.Unmarshal(value, &asset); err != nil {
		return nil, fmt.Errorf("decode asset record: %w", err)
	}
	if asset.AssetUID == "" {
		return nil, errors.New("decode asset record: asset_uid is missing")
	}
	asset.Unmapped = nil
	asset.Protection.Raw = nil
	return &asset, nil
}

// trackAsset stores a forwarded asset record as its key's snapshot and
// returns the security-state record of its posture change, or nil. A record
// that cannot be decoded, or a security-state record that cannot be built, is
// logged and counted: the asset record is forwarded either way.
//
// NOTE: the two records go out in one write but are not atomic. When the
// process stops after the asset record was written and before the
// security-state record was, the replayed input is older than the restored
// output, so that security-state record is never built.
func (s *Stage) trackAsset(at topicPartition, key string, msg kafka.Message, now time.Time) *kafka.Message {
	asset, err := decodeSnapshot(msg.Value)
	if err != nil {
		// The key keeps its previous snapshot, so a later record still
		// reports a change against it.
		s.securityStateErrors.Add(1)
		s.logger.Error("asset record cannot be decoded; no security-state record is built for it",
			"key", key, "partition", at.partition, "offset", msg.Offset, "error", err)
		return nil
	}

	s.mu.Lock()
	previous := s.partitionAssets(at).snapshots[key]
	s.setSnapshot(at, key, asset)
	s.mu.Unlock()

	if previous == nil {
		return nil
	}
	out, err := s.securityStateMessage(previous, asset, msg, now)
	if err != nil {
		s.securityStateErrors.Add(1)
		s.logger.Error("security-state record not published", "key", key, "partition", at.partition, "offset", msg.Offset, "error", err)
		return nil
	}
	if out != nil {
		s.securityStates.Add(1)
	}
	return out
}

// changedFields returns what differs between two assets' protection, sorted:
// the posture fields, security_level_id and security_states.
func changedFields(previous, next *schemas.Asset) []string {
	changed := previous.Protection.Posture().ChangedFields(next.Protection.Posture())
	if previous.Protection.SecurityLevelID != next.Protection.SecurityLevelID {
		changed = append(changed, "security_level_id")
	}
	if !schemas.SameSecurityStates(previous.Protection.SecurityStates, next.Protection.SecurityStates) {
		changed = append(changed, "security_states")
	}
	slices.Sort(changed)
	return changed
}

// securityStateMessage builds the security-state record of the change from
// previous to next, or returns nil when the posture did not change.
func (s *Stage) securityStateMessage(previous, next *schemas.Asset, msg kafka.Message, now time.Time) (*kafka.Message, error) {
	changed := changedFields(previous, next)
	if len(changed) == 0 {
		return nil, nil
	}

	record := schemas.AssetSecurityState{
		SchemaVersion:       schemas.Version,
		ClassUID:            schemas.SecurityStateClassUID,
		CategoryUID:         schemas.SecurityStateCategoryUID,
		ActivityID:          schemas.SecurityStateActivityID,
		TypeUID:             schemas.SecurityStateTypeUID,
		Time:                next.Time,
		Metadata:            next.Metadata,
		AssetUID:            next.AssetUID,
		Device:              deviceRef(next),
		SecurityLevelID:     next.Protection.SecurityLevelID,
		SecurityLevel:       schemas.SecurityLevelName(next.Protection.SecurityLevelID),
		PrevSecurityLevelID: previous.Protection.SecurityLevelID,
		PrevSecurityLevel:   schemas.SecurityLevelName(previous.Protection.SecurityLevelID),
		SecurityStates:      nonNil(next.Protection.SecurityStates),
		PrevSecurityStates:  nonNil(previous.Protection.SecurityStates),
		Protection:          next.Protection.Posture(),
		PrevProtection:      previous.Protection.Posture(),
		ChangedFields:       changed,
	}
	record.SeverityID, record.Severity = stateSeverity(record.SecurityLevelID)
	record.Metadata.ProcessedTime = now.UnixMilli()
	record.Metadata.Profiles = nil

	// The asset's poll time is part of the id, so that a posture that goes
	// back and forth gets a new id at each change.
	fingerprintRecord := record
	fingerprintRecord.Metadata.UID = "-"
	value, err := encode(fingerprintRecord)
	if err != nil {
		return nil, err
	}
	fingerprint, err := schemas.Fingerprint(schemas.KindAssetSecurityState, value)
	if err != nil {
		return nil, err
	}
	record.Metadata.UID = fmt.Sprintf("%s#state-%d-%s", next.AssetUID, next.Time, fingerprint)
	value, err = encode(record)
	if err != nil {
		return nil, err
	}
	if err := s.assets.Validator.Validate(schemas.KindAssetSecurityState, value); err != nil {
		return nil, fmt.Errorf("security-state record of %s does not match its schema: %w", next.AssetUID, err)
	}

	headers := recordHeaders(msg.Headers, record.Metadata.UID, schemas.KindAssetSecurityState, next.AssetUID, true)
	return &kafka.Message{Topic: s.assets.SecurityStateTopic, Key: []byte(next.AssetUID), Value: value, Headers: headers, Time: now}, nil
}

// stateSeverity maps the new security level to the record's severity.
func stateSeverity(level int) (int, string) {
	switch level {
	case 1:
		return 1, "Informational"
	case 2:
		return 3, "Medium"
	case 3:
		return 4, "High"
	}
	return 0, "Unknown"
}

// deviceRef returns the device of an asset as a security-state record names
// it.
func deviceRef(asset *schemas.Asset) schemas.DeviceRef {
	agents := make([]schemas.Agent, 0, len(asset.Device.AgentList))
	for _, agent := range asset.Device.AgentList {
		agent.Policies = nil
		agents = append(agents, agent)
	}
	return schemas.DeviceRef{
		AssetUID:   asset.AssetUID,
		UID:        asset.Device.UID,
		UIDAlt:     asset.Device.UIDAlt,
		Name:       asset.Device.Name,
		Hostname:   asset.Device.Hostname,
		IP:         asset.Device.IP,
		OS:         asset.Device.OS,
		IsIsolated: asset.Protection.IsIsolated,
		AgentList:  agents,
	}
}

func nonNil(states []schemas.SecurityState) []schemas.SecurityState {
	if states == nil {
		return []schemas.SecurityState{}
	}
	return states
}

// recordHeaders returns the CloudEvents headers of a record that the stage
// builds from an input message: ce_source, ce_time and ce_tenant come from
// the input, the rest from the arguments. Only a record with a value
// (withData) gets ce_dataschema and content-type.
func recordHeaders(input []kafka.Header, id string, kind schemas.Kind, subject string, withData bool) []kafka.Header {
	copied := func(name string) kafka.Header {
		value, _ := sink.HeaderValue(input, name)
		return kafka.Header{Key: name, Value: []byte(value)}
	}
	headers := []kafka.Header{
		{Key: sink.HeaderSpecVersion, Value: []byte(sink.SpecVersion)},
		{Key: sink.HeaderID, Value: []byte(id)},
		copied(sink.HeaderSource),
		{Key: sink.HeaderType, Value: []byte(schemas.EventType(kind))},
		copied(sink.HeaderTime),
		{Key: sink.HeaderSubject, Value: []byte(subject)},
		copied(sink.HeaderTenant),
	}
	if withData {
		headers = append(headers,
			kafka.Header{Key: sink.HeaderDataSchema, Value: []byte(schemas.SchemaID(kind))},
			kafka.Header{Key: sink.HeaderContentType, Value: []byte(sink.ContentType)})
	}
	return headers
}

// encode encodes a record as compact JSON without HTML escaping, as enrich
// does.
func encode(record any) ([]byte, error) {
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(record); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// processInventoryEnd applies an inventory end event to the assets of its
// partition and returns the removed records and tombstones of the assets that
// were missing from MissedInventories complete inventories in a row.
//
// The stage applies an end event only when it saw, since its last restore of
// the partition, an asset record of the inventory for every sensor that the
// event counts on the partition. Otherwise the inventory is incomplete for it:
// after a restart or a rebalance it did not see the records processed before,
// and a sensor that enrich dead-lettered never arrived. An incomplete
// inventory changes nothing, so it delays a removal by one inventory but never
// causes a wrong one. The same holds for an inventory of zero sensors, which
// is more likely a console or permission fault than an empty fleet. An end
// event that is not newer than the last applied one is a replay and ignored.
func (s *Stage) processInventoryEnd(msg kafka.Message, out string, now time.Time) ([]kafka.Message, error) {
	end, err := inventory.Parse(msg.Value)
	if err != nil {
		s.invalidEnds.Add(1)
		return nil, fmt.Errorf("dedupe: %w", err)
	}
	if end.Partition != msg.Partition {
		s.invalidEnds.Add(1)
		return nil, fmt.Errorf("dedupe: inventory end event %s names partition %d but was read from partition %d", end.InventoryID, end.Partition, msg.Partition)
	}
	at := topicPartition{topic: out, partition: msg.Partition}

	s.mu.Lock()
	defer s.mu.Unlock()
	state := s.partitionAssets(at)
	if end.StartTime <= state.lastEnd {
		s.endsIgnored.Add(1)
		s.logger.Debug("inventory end event replayed; ignored", "inventory_id", end.InventoryID, "partition", msg.Partition, "offset", msg.Offset)
		return nil, nil
	}
	lastEnd := state.lastEnd
	state.lastEnd = end.StartTime
	s.onRollback(func() { state.lastEnd = lastEnd })

	seen := 0
	for _, id := range state.seen {
		if id == end.InventoryID {
			seen++
		}
	}
	if seen < end.PartitionCount || end.Count == 0 {
		s.incompleteEnds.Add(1)
		s.logger.Info("inventory not seen whole on this partition; no asset is marked removed",
			"inventory_id", end.InventoryID, "partition", msg.Partition, "seen", seen, "expected", end.PartitionCount, "inventory_count", end.Count)
		return nil, nil
	}
	s.inventoryEnds.Add(1)
	return s.applyInventoryEnd(at, state, end, msg, now)
}

// applyInventoryEnd counts the misses of a complete inventory and removes the
// assets that reached MissedInventories. The caller holds s.mu.
func (s *Stage) applyInventoryEnd(at topicPartition, state *partitionAssets, end inventory.End, msg kafka.Message, now time.Time) ([]kafka.Message, error) {
	keys := make([]string, 0, len(state.snapshots))
	for key := range state.snapshots {
		keys = append(keys, key)
	}
	slices.Sort(keys)

	var outs []kafka.Message
	for _, key := range keys {
		misses, hadMisses := state.misses[key]
		if s.presentIn(at, state, key, end) {
			if hadMisses {
				delete(state.misses, key)
				s.onRollback(func() { state.misses[key] = misses })
			}
			continue
		}
		state.misses[key] = misses + 1
		s.onRollback(func() {
			if hadMisses {
				state.misses[key] = misses
			} else {
				delete(state.misses, key)
			}
		})
		if misses+1 < s.assets.MissedInventories {
			continue
		}

		removal, err := s.removal(at, key, state.snapshots[key], end, msg, now)
		if err != nil {
			return nil, err
		}
		outs = append(outs, removal...)
	}
	return outs, nil
}

// presentIn reports whether the key was in the inventory: one of its records
// carried the inventory's id, or its last forwarded record is from the
// inventory or a later one, as after a replay of an older end event.
func (s *Stage) presentIn(at topicPartition, state *partitionAssets, key string, end inventory.End) bool {
	if state.seen[key] == end.InventoryID {
		return true
	}
	info, ok := s.keys[at][key]
	return ok && !info.eventTime.IsZero() && info.eventTime.UnixMilli() >= end.StartTime
}

// removal returns the removed record and the tombstone of a key, and deletes
// the key's state. The caller holds s.mu.
func (s *Stage) removal(at topicPartition, key string, snapshot *schemas.Asset, end inventory.End, msg kafka.Message, now time.Time) ([]kafka.Message, error) {
	removed := *snapshot
	removed.SchemaVersion = schemas.Version
	removed.Time = end.StartTime
	removed.Metadata.ProcessedTime = now.UnixMilli()
	removed.Metadata.UID = fmt.Sprintf("%s#removed-%d", key, end.StartTime)
	managed := false
	removed.Device.IsManaged = &managed
	removed.Protection.LifecycleState = schemas.LifecycleRemoved
	removed.Protection.IsEffective = false
	removed.Protection.SecurityLevelID = 0
	removed.Protection.SecurityLevel = schemas.SecurityLevelName(0)
	removed.Protection.SecurityStates = []schemas.SecurityState{{StateID: 99, State: "Sensor removed"}}

	value, err := encode(removed)
	if err != nil {
		return nil, err
	}
	if err := s.assets.Validator.Validate(schemas.KindAsset, value); err != nil {
		return nil, fmt.Errorf("dedupe: removed record of %s does not match its schema: %w", key, err)
	}

	eventTime := time.UnixMilli(end.StartTime)
	s.recordLocked(at, key, "", false, now, eventTime)
	s.forgetAsset(at, key)
	if len(s.brokers) > 0 {
		// As Restore does for a tombstone, keep the input offset, so that a
		// replayed record of the key from before the removal is dropped.
		s.setInfo(at, key, keyInfo{emitted: now, published: msg.Offset, eventTime: eventTime})
	}

	record := kafka.Message{
		Topic: at.topic, Partition: at.partition, Key: []byte(key), Value: value, Time: now,
		Headers: recordHeaders(msg.Headers, removed.Metadata.UID, schemas.KindAsset, key, true),
	}
	tombstone := kafka.Message{
		Topic: at.topic, Partition: at.partition, Key: []byte(key), Time: now,
		Headers: recordHeaders(msg.Headers, fmt.Sprintf("%s#tombstone-%d", key, end.StartTime), schemas.KindAsset, key, false),
	}
	if len(s.brokers) > 0 {
		record.Headers = withInputOffset(record.Headers, msg.Offset)
		tombstone.Headers = withInputOffset(tombstone.Headers, msg.Offset)
	}

	s.removed.Add(1)
	s.tombstones.Add(1)
	s.forwarded.Add(2)
	s.logger.Info("asset missing from complete inventories; published as removed, then a tombstone",
		"key", key, "partition", at.partition, "inventory_id", end.InventoryID, "missed_inventories", s.assets.MissedInventories)
	return []kafka.Message{record, tombstone}, nil
}

// withoutHeader returns headers without the ones named name.
func withoutHeader(headers []kafka.Header, name string) []kafka.Header {
	out := make([]kafka.Header, 0, len(headers))
	for _, h := range headers {
		if h.Key != name {
			out = append(out, h)
		}
	}
	return out
}
