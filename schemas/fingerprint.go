package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/oversoc/cybereason-connector/internal/jsonvalue"
)

// VolatileFields returns the JSON pointers of the fields that Fingerprint leaves out for a kind.
// These values change between polls of an unchanged entity: poll and processing times, last
// contact, online/offline flapping with the service status that follows it, machine load and
// signature versions. It returns nil for an unknown kind.
// README.md in this folder lists the same table; keep both in step.
func VolatileFields(kind Kind) []string {
	switch kind {
	case KindAsset:
		return []string{
			"/time",
			"/metadata/uid",
			"/metadata/processed_time",
			"/device/last_seen_time",
			"/protection/sensor_status",
			"/protection/service_status",
			"/protection/raw/status",
			"/protection/raw/serviceStatus",
			"/protection/raw/avDbVersion",
			"/unmapped/cybereason/actionsInProgress",
			"/unmapped/cybereason/avDbLastUpdateTime",
			"/unmapped/cybereason/avDbVersion",
			"/unmapped/cybereason/cpuUsage",
			"/unmapped/cybereason/deliveryTime",
			"/unmapped/cybereason/disconnected",
			"/unmapped/cybereason/disconnectionTime",
			"/unmapped/cybereason/externalIpAddress",
			"/unmapped/cybereason/fullScanStatus",
			"/unmapped/cybereason/lastFullScheduleScanSuccessTime",
			"/unmapped/cybereason/lastPylumInfoMsgUpdateTime",
			"/unmapped/cybereason/lastQuickScheduleScanSuccessTime",
			"/unmapped/cybereason/lastUpgradeSteps",
			"/unmapped/cybereason/memoryUsage",
			"/unmapped/cybereason/offlineTimeMS",
			"/unmapped/cybereason/onlineTimeMS",
			"/unmapped/cybereason/pendingActions",
			"/unmapped/cybereason/quickScanStatus",
			"/unmapped/cybereason/sensorLastUpdate",
			"/unmapped/cybereason/staleTimeMS",
			"/unmapped/cybereason/statusTimeMS",
			"/unmapped/cybereason/upTime",
		}
	case KindFinding:
		// The machines' connected and lastConnected values are volatile too, but enrich never
		// copies them into a finding, so they need no entry here. A device's uid and asset_uid
		// link it to an asset only when the enrich instance has seen that asset's sensor, which
		// depends on processing order, so they are left out: uid_alt identifies the device.
		return []string{
			"/metadata/uid",
			"/metadata/processed_time",
			"/devices/*/uid",
			"/devices/*/asset_uid",
		}
	case KindAssetSecurityState:
		return []string{
			"/time",
			"/metadata/uid",
			"/metadata/processed_time",
		}
	}
	return nil
}

// Fingerprint returns the first 16 hex digits of the SHA-256 of the record's canonical JSON with
// VolatileFields(kind) removed. Canonical JSON here is what encoding/json writes for the decoded
// record: object keys sorted, no insignificant whitespace, numbers as written in value, and no HTML
// escaping. Two records that differ only in volatile fields therefore get the same fingerprint.
func Fingerprint(kind Kind, value []byte) (string, error) {
	volatile := VolatileFields(kind)
	if volatile == nil {
		return "", fmt.Errorf("fingerprint: unknown record kind %q", kind)
	}
	buffer := canonicalBuffers.Get().(*[]byte)
	defer releaseCanonicalBuffer(buffer)

	canonical, err := jsonvalue.AppendCanonicalWithout((*buffer)[:0], value, volatileRemovals[kind])
	if err != nil {
		// The streaming encoder declined, for example on invalid JSON: decode, which words the error.
		if canonical, err = canonicalWithout(kind, value, volatile); err != nil {
			return "", err
		}
	}
	*buffer = canonical
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:8]), nil
}

// canonicalBuffers keeps the buffers of Fingerprint's canonical encodings between calls.
var canonicalBuffers = sync.Pool{New: func() any { return new([]byte) }}

// releaseCanonicalBuffer returns a buffer to canonicalBuffers, unless one large record made it
// larger than records usually are.
func releaseCanonicalBuffer(buffer *[]byte) {
	const maxPooled = 64 << 10
	if cap(*buffer) <= maxPooled {
		canonicalBuffers.Put(buffer)
	}
}

// volatileRemovals holds VolatileFields of each kind in the form AppendCanonicalWithout takes.
// Every kind that VolatileFields lists fields for must be here, or its fingerprint would keep
// the volatile fields. TestStreamingCanonicalOnExamples checks each kind with examples.
var volatileRemovals = map[Kind]*jsonvalue.Removal{
	KindAsset:              jsonvalue.NewRemoval(VolatileFields(KindAsset)),
	KindFinding:            jsonvalue.NewRemoval(VolatileFields(KindFinding)),
	KindAssetSecurityState: jsonvalue.NewRemoval(VolatileFields(KindAssetSecurityState)),
}

// canonicalWithout decodes the record, removes the volatile pointers and encodes the rest in
// canonical form. It is the definition that AppendCanonicalWithout follows without decoding.
func canonicalWithout(kind Kind, value []byte, volatile []string) ([]byte, error) {
	record, err := decodeObject(value)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s record: %w", kind, err)
	}
	for _, pointer := range volatile {
		removePointer(record, pointer)
	}
	canonical, err := jsonvalue.AppendCanonical(make([]byte, 0, len(value)), record)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s record: %w", kind, err)
	}
	return canonical, nil
}

// decodeObject decodes a JSON object, keeping numbers as json.Number so that they re-encode exactly.
// It tries jsonvalue.Parse first and words the errors with encoding/json.
func decodeObject(value []byte) (map[string]any, error) {
	if doc, err := jsonvalue.Parse(value); err == nil {
		if record, ok := doc.(map[string]any); ok {
			return record, nil
		}
	}
	decoder := json.NewDecoder(bytes.NewReader(value))
	decoder.UseNumber()
	var record map[string]any
	if err := decoder.Decode(&record); err != nil {
		return nil, fmt.Errorf("decode JSON object: %w", err)
	}
	if record == nil {
		return nil, errors.New("decode JSON object: value is null, expected an object")
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode JSON object: unexpected data after the object")
	}
	return record, nil
}

// removePointer deletes the member that a JSON pointer of object keys names, if it exists. A "*"
// token stands for every element of an array. Objects on the path that the removal leaves empty
// are removed too, so that a record which carried only volatile values in, say,
// unmapped/cybereason fingerprints like one without unmapped at all.
func removePointer(record map[string]any, pointer string) {
	tokens := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, token := range tokens {
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")
	}
	removeTokens(record, tokens)
}

// removeTokens deletes the member at tokens below object and reports whether it deleted one.
func removeTokens(object map[string]any, tokens []string) bool {
	name := tokens[0]
	if len(tokens) == 1 {
		_, ok := object[name]
		delete(object, name)
		return ok
	}

	switch child := object[name].(type) {
	case map[string]any:
		if !removeTokens(child, tokens[1:]) {
			return false
		}
		if len(child) == 0 {
			delete(object, name)
		}
		return true
	case []any:
		if tokens[1] != "*" || len(tokens) < 3 {
			return false
		}
		removed := false
		for _, element := range child {
			if elementObject, ok := element.(map[string]any); ok {
				removed = removeTokens(elementObject, tokens[2:]) || removed
			}
		}
		return removed
	}
	return false
}
