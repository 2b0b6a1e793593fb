package enrich

import (
	"bytes"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// recordMessage encodes a record, gives it its id and validates it. The id, used as metadata.uid and
// ce_id, is uid + "#" + the fingerprint of the record. Since metadata.uid is volatile, the fingerprint
// can be taken from the record encoded with a placeholder in its id, which is then replaced.
func (s *Stage) recordMessage(kind schemas.Kind, topic, eventType, uid string, record encodable, metadata *schemas.Metadata, env envelope) (kafka.Message, error) {
	metadata.UID = uid + "#" + fingerprintPlaceholder
	value, err := encodeRecord(record)
	if err != nil {
		return kafka.Message{}, err
	}
	fingerprint, err := schemas.Fingerprint(kind, value)
	if err != nil {
		return kafka.Message{}, err
	}
	id := uid + "#" + fingerprint
	metadata.UID = id
	if !replacePlaceholder(value, fingerprint) {
		if value, err = encodeRecord(record); err != nil {
			return kafka.Message{}, err
		}
	}
	if err := s.cfg.Validator.Validate(kind, value); err != nil {
		return kafka.Message{}, fmt.Errorf("record %s does not match its schema: %w", uid, err)
	}

	return kafka.Message{
		Topic: topic,
		Key:   []byte(uid),
		Value: value,
		Headers: []kafka.Header{
			{Key: sink.HeaderSpecVersion, Value: []byte(sink.SpecVersion)},
			{Key: sink.HeaderID, Value: []byte(id)},
			{Key: sink.HeaderSource, Value: []byte(env.source)},
			{Key: sink.HeaderType, Value: []byte(eventType)},
			{Key: sink.HeaderTime, Value: []byte(env.time)},
			{Key: sink.HeaderSubject, Value: []byte(uid)},
			{Key: sink.HeaderTenant, Value: []byte(env.tenant)},
			{Key: sink.HeaderDataSchema, Value: []byte(schemas.SchemaID(kind))},
			{Key: sink.HeaderContentType, Value: []byte(sink.ContentType)},
		},
	}, nil
}

// fingerprintPlaceholder stands for the fingerprint in metadata.uid while the fingerprint is taken,
// so that the record is encoded once: it has the fingerprint's 16 hex digits.
const fingerprintPlaceholder = "0000000000000000"

// replacePlaceholder writes fingerprint over the placeholder at the end of the encoded metadata.uid
// and reports whether it did. It does nothing when the placeholder's end of string occurs more than
// once, so that the caller encodes the record again instead.
func replacePlaceholder(value []byte, fingerprint string) bool {
	marker := []byte("#" + fingerprintPlaceholder + `"`)
	at := bytes.Index(value, marker)
	if at < 0 || len(fingerprint) != len(fingerprintPlaceholder) || bytes.Contains(value[at+1:], marker) {
		return false
	}
	copy(value[at+1:], fingerprint)
	return true
}

// encodable is a record that writes its own JSON: *schemas.Asset or *schemas.Finding.
type encodable interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// encodeRecord encodes a record as compact JSON without HTML escaping, so that vendor text such as
// "<version>" stays readable.
func encodeRecord(record encodable) ([]byte, error) {
	const typicalRecordSize = 4 << 10
	value, err := record.AppendJSON(make([]byte, 0, typicalRecordSize))
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return value, nil
}
