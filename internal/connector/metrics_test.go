package connector_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/pipeline/enrich"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

func TestMetricsCountUnknownVendorValues(t *testing.T) {
	validator, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	stage, err := enrich.New(enrich.Config{Validator: validator}, nil)
	if err != nil {
		t.Fatal(err)
	}

	const sensorID = "5f0c0ffee0000000000000aa:PYLUMCLIENT_ACME_WS-01_005056000001"
	event := sink.Event{
		ID: sensorID + "#1", Source: "https://acme.cybereason.example/rest/sensors/query", Type: enrich.RawSensorType,
		Subject: sensorID, Tenant: "acme.cybereason.example", Time: time.Now(),
	}
	msg := kafka.Message{
		Topic:   enrich.DefaultSensorsTopic,
		Key:     []byte(sensorID),
		Value:   []byte(`{"sensorId": "` + sensorID + `", "machineName": "ws-01", "status": "Online", "preventionStatus": "HALF_ON"}`),
		Headers: event.Headers(),
	}
	if _, err := stage.Process(context.Background(), msg); err != nil {
		t.Fatalf("Process: %v", err)
	}

	registry := (&connector.Stages{Enrich: stage}).NewRegistry("test")
	assertMetric(t, registry, "cybereason_connector_enrich_unknown_vendor_values_total", map[string]string{"field": "sensor.preventionStatus"}, 1)
}
