package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// Event ids are deterministic, so the same observation always gets the same
// id: the entity key, the item's own version time where it has one, and a
// digest of the value.

func (s *Stage) sensorMessage(sensor cybereason.Sensor, polled time.Time) kafka.Message {
	event := sink.Event{
		ID:      sensor.ID + "#" + digest(sensor.Raw),
		Source:  s.cfg.ConsoleURL + "/rest/sensors/query",
		Type:    SensorEventType,
		Subject: sensor.ID,
		Tenant:  s.cfg.Tenant,
		Time:    polled,
	}
	return kafka.Message{Topic: s.cfg.SensorsTopic, Key: []byte(sensor.ID), Value: sensor.Raw, Headers: event.Headers()}
}

// malopMessage carries value, the MalOp itself or a DetailedMalop, as an
// event of eventType. malopType, the type of the MalOp alone, names the
// endpoint the MalOp came from in ce_source.
func (s *Stage) malopMessage(malop cybereason.Malop, malopType, eventType string, value json.RawMessage) kafka.Message {
	endpoint := inboxEndpoint
	if malopType == MalopV2EventType {
		endpoint = malopsV2Endpoint
	}
	updated := strconv.FormatInt(malop.LastUpdateTime.UnixMilli(), 10)
	event := sink.Event{
		ID:      malop.GUID + "#" + updated + "#" + digest(value),
		Source:  s.cfg.ConsoleURL + endpoint,
		Type:    eventType,
		Subject: malop.GUID,
		Tenant:  s.cfg.Tenant,
		Time:    malop.LastUpdateTime,
	}
	return kafka.Message{Topic: s.cfg.MalopsTopic, Key: []byte(malop.GUID), Value: value, Headers: event.Headers()}
}

func (s *Stage) malwareMessage(alert cybereason.Malware) kafka.Message {
	timestamp := strconv.FormatInt(alert.Timestamp.UnixMilli(), 10)
	event := sink.Event{
		ID:      alert.GUID + "#" + timestamp + "#" + digest(alert.Raw),
		Source:  s.cfg.ConsoleURL + "/rest/malware/query",
		Type:    MalwareEventType,
		Subject: alert.GUID,
		Tenant:  s.cfg.Tenant,
		Time:    alert.Timestamp,
	}
	return kafka.Message{Topic: s.cfg.MalwareTopic, Key: []byte(alert.GUID), Value: alert.Raw, Headers: event.Headers()}
}

func (s *Stage) policyMessage(policy cybereason.Policy, polled time.Time) kafka.Message {
	event := sink.Event{
		ID:      policy.ID + "#" + digest(policy.Raw),
		Source:  s.cfg.ConsoleURL + "/rest/policies",
		Type:    PolicyEventType,
		Subject: policy.ID,
		Tenant:  s.cfg.Tenant,
		Time:    polled,
	}
	return kafka.Message{Topic: s.cfg.PoliciesTopic, Key: []byte(policy.ID), Value: policy.Raw, Headers: event.Headers()}
}

// digest returns the first 16 hex characters of the SHA-256 of raw, so the
// same vendor object always gets the same event id.
func digest(raw json.RawMessage) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
