package dedupe

import (
	"encoding/json"
	"errors"
	"fmt"
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
	// lastEnd contains, per tenant, the start time (epoch ms) of the
	// inventory of the last end event processed, complete or not. Several
	// consoles can share the topics, and each tenant's inventories start on
	// their own schedule.
	lastEnd map[string]int64
}

func newPartitionAssets() *partitionAssets {
	return &partitionAssets{
		snapshots: make(map[string]*schemas.Asset),
		seen:      make(map[string]string),
		misses:    make(map[string]int),
		lastEnd:   make(map[string]int64),
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
