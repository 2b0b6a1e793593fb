package dedupe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

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
