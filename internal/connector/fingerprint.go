package connector

import (
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
)

// fingerprintByTopic returns dedupe's fingerprint function: the record's
// content hash without volatile fields, chosen by the record kind its input
// topic carries.
func fingerprintByTopic(kinds map[string]schemas.Kind) func(string, kafka.Message) (string, error) {
	return func(topic string, msg kafka.Message) (string, error) {
		kind, ok := kinds[topic]
		if !ok {
			return "", fmt.Errorf("no record kind configured for topic %q", topic)
		}
		return schemas.Fingerprint(kind, msg.Value)
	}
}
