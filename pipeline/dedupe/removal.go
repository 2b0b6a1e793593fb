package dedupe

import (
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/source/inventory"
)

// The ce_id of a removed record and of its tombstone is the key, one of these
// markers and the inventory's start time. Restore uses them to tell the
// records whose input offset is that of an inventory end event.
const (
	removedIDMarker   = "#removed-"
	tombstoneIDMarker = "#tombstone-"
)

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
// event that is not newer than the last processed one is a replay and ignored.
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
	tenant := end.Tenant()
	lastEnd, hadEnd := state.lastEnd[tenant]
	if end.StartTime <= lastEnd {
		s.endsIgnored.Add(1)
		s.logger.Debug("inventory end event replayed; ignored", "inventory_id", end.InventoryID, "partition", msg.Partition, "offset", msg.Offset)
		return nil, nil
	}
	state.lastEnd[tenant] = end.StartTime
	s.onRollback(func() {
		if hadEnd {
			state.lastEnd[tenant] = lastEnd
		} else {
			delete(state.lastEnd, tenant)
		}
	})

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
// assets that reached MissedInventories. Only the assets of the inventory's
// tenant are counted, because the assets of other consoles that share the
// topics are not in it. The caller holds s.mu.
func (s *Stage) applyInventoryEnd(at topicPartition, state *partitionAssets, end inventory.End, msg kafka.Message, now time.Time) ([]kafka.Message, error) {
	tenant := end.Tenant()
	keys := make([]string, 0, len(state.snapshots))
	for key, snapshot := range state.snapshots {
		if snapshot.Metadata.TenantUID == tenant {
			keys = append(keys, key)
		}
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
	removed.Metadata.UID = fmt.Sprintf("%s%s%d", key, removedIDMarker, end.StartTime)
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
		Headers: recordHeaders(msg.Headers, fmt.Sprintf("%s%s%d", key, tombstoneIDMarker, end.StartTime), schemas.KindAsset, key, false),
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
