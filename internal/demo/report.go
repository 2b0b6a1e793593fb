package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// record is one line of the --records file.
type record struct {
	Topic   string            `json:"topic"`
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Value   json.RawMessage   `json:"value"` // null for a tombstone
}

func newRecord(msg kafka.Message) record {
	headers := make(map[string]string, len(msg.Headers))
	for _, header := range msg.Headers {
		headers[header.Key] = string(header.Value)
	}
	value := json.RawMessage("null")
	if msg.Value != nil {
		value = msg.Value
	}
	return record{Topic: msg.Topic, Key: string(msg.Key), Headers: headers, Value: value}
}

// report reads the final topics, validates every record against its schema,
// prints one record of each kind and writes the records file.
func report(ctx context.Context, cfg *config.Config, opts Options, out io.Writer) error {
	validator, err := schemas.NewValidator()
	if err != nil {
		return err
	}

	finals := []struct {
		topic string
		kind  schemas.Kind
	}{
		{cfg.Kafka.Topics.Assets, schemas.KindAsset},
		{cfg.Kafka.Topics.Findings, schemas.KindFinding},
		{cfg.Kafka.Topics.AssetSecurityState, schemas.KindAssetSecurityState},
	}

	var all []record
	var invalid []error
	fmt.Fprintf(out, "\nFinal topics\n")
	for _, final := range finals {
		msgs, err := embeddedkafka.ReadAll(ctx, cfg.Kafka.Brokers, final.topic)
		if err != nil {
			return fmt.Errorf("read %s: %w", final.topic, err)
		}

		for _, msg := range msgs {
			all = append(all, newRecord(msg))
			if err := checkRecord(validator, final.kind, msg); err != nil {
				invalid = append(invalid, fmt.Errorf("%s key %s: %w", final.topic, msg.Key, err))
			}
		}
		fmt.Fprintf(out, "  %-28s %s, validated against %s\n", final.topic, plural(len(msgs), "record"), schemas.SchemaID(final.kind))
	}
	if len(invalid) > 0 {
		return fmt.Errorf("%d records are not valid against their schema: %w", len(invalid), errors.Join(invalid...))
	}

	printExamples(out, all, finals[0].topic, finals[1].topic, finals[2].topic)
	printLifecycle(out, all, finals[0].topic)
	if opts.RecordsFile != "" {
		if err := writeRecords(opts.RecordsFile, all); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nWrote %s to %s\n", plural(len(all), "record"), opts.RecordsFile)
	}
	return nil
}

// checkRecord validates a record against the schema of kind and checks that
// its ce_dataschema header names that schema. A tombstone carries no
// ce_dataschema, because it has no value to validate.
func checkRecord(validator *schemas.Validator, kind schemas.Kind, msg kafka.Message) error {
	dataSchema, hasSchema := sink.HeaderValue(msg.Headers, sink.HeaderDataSchema)
	if msg.Value == nil {
		if hasSchema {
			return fmt.Errorf("tombstone carries ce_dataschema %q", dataSchema)
		}
		return nil
	}
	if dataSchema != schemas.SchemaID(kind) {
		return fmt.Errorf("ce_dataschema is %q, expected %q", dataSchema, schemas.SchemaID(kind))
	}
	return validator.Validate(kind, msg.Value)
}

// printLifecycle prints the first removed asset of topic and its tombstone.
func printLifecycle(out io.Writer, records []record, topic string) {
	for i, rec := range records {
		var asset schemas.Asset
		if rec.Topic != topic || string(rec.Value) == "null" || json.Unmarshal(rec.Value, &asset) != nil {
			continue
		}
		if asset.Protection.LifecycleState != schemas.LifecycleRemoved {
			continue
		}
		fmt.Fprintf(out, "\nRemoved asset %s: lifecycle_state %q (ce_id %s)\n", rec.Key, asset.Protection.LifecycleState, rec.Headers[sink.HeaderID])
		for _, next := range records[i+1:] {
			if next.Topic == topic && next.Key == rec.Key && string(next.Value) == "null" {
				fmt.Fprintf(out, "  followed by its tombstone (ce_id %s)\n", next.Headers[sink.HeaderID])
				break
			}
		}
		return
	}
}

func printExamples(out io.Writer, records []record, topics ...string) {
	for _, topic := range topics {
		for _, rec := range records {
			if rec.Topic != topic || string(rec.Value) == "null" {
				continue
			}
			var pretty bytes.Buffer
			encoder := newRecordEncoder(&pretty)
			encoder.SetIndent("", "  ")
			if err := encoder.Encode(rec); err != nil {
				continue
			}
			fmt.Fprintf(out, "\nOne record of %s:\n%s", topic, pretty.Bytes())
			break
		}
	}
}

func writeRecords(path string, records []record) (err error) {
	// O_EXCL keeps the promise of checkRecordsFile if the file appeared since.
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create records file: %w", err)
	}
	defer func() {
		if closeErr := file.Close(); closeErr != nil && err == nil {
			err = fmt.Errorf("close records file: %w", closeErr)
		}
	}()

	buffered := bufio.NewWriter(file)
	encoder := newRecordEncoder(buffered)
	for _, rec := range records {
		if err := encoder.Encode(rec); err != nil {
			return fmt.Errorf("write records file: %w", err)
		}
	}
	if err := buffered.Flush(); err != nil {
		return fmt.Errorf("write records file: %w", err)
	}
	return nil
}

// newRecordEncoder returns an encoder that writes the values' text as the
// topics hold it. encoding/json escapes <, > and & by default, even inside a
// json.RawMessage, while enrich and dedupe write them unescaped.
func newRecordEncoder(w io.Writer) *json.Encoder {
	encoder := json.NewEncoder(w)
	encoder.SetEscapeHTML(false)
	return encoder
}
