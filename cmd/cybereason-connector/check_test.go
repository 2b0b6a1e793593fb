package main

import (
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func TestCheckCommand(t *testing.T) {
	console := cybereasontest.NewServer(cybereasontest.GenerateTenant(9, 10, 2, time.Now()), cybereasontest.Options{})
	defer console.Close()

	var topics []embeddedkafka.Topic
	for _, name := range []string{"cybereason.raw.sensors", "cybereason.raw.malops", "cybereason.raw.malware", "cybereason.raw.policies"} {
		topics = append(topics, embeddedkafka.Topic{Name: name}, embeddedkafka.Topic{Name: name + ".dlq"})
	}
	topics = append(topics, embeddedkafka.Topic{Name: "cybereason.connector.state", Compacted: true})
	brokers := kafkatest.NewBroker(t, topics...)

	tests := []struct {
		name     string
		password string
		wantCode int
		want     string
	}{
		{"right password", cybereasontest.DefaultPassword, 0, "console login"},
		{"wrong password", "wr0ng $ecret, with spaces", exitFailure, "credentials refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"STAGES":              "source",
				"CYBEREASON_URL":      console.URL,
				"CYBEREASON_USERNAME": cybereasontest.DefaultUsername,
				"CYBEREASON_PASSWORD": tt.password,
				"KAFKA_BROKERS":       strings.Join(brokers, ","),
				"LOG_LEVEL":           "debug",
			}

			code, stdout, stderr := runCLI(t, env, "check")

			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.want) {
				t.Errorf("stdout lacks %q:\n%s", tt.want, stdout)
			}
			if strings.Contains(stdout+stderr, tt.password) {
				t.Errorf("output contains the password:\n%s%s", stdout, stderr)
			}
		})
	}
}
