package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/oversoc/cybereason-connector/internal/kafkaconn/kafkaconntest"
)

func TestLoadKafkaSecurity(t *testing.T) {
	pki := kafkaconntest.NewPKI(t)
	passwordPath := filepath.Join(t.TempDir(), "kafka-password")
	writeFile(t, passwordPath, "first kafka password\n")

	env := validEnv()
	env["KAFKA_CA_FILE"] = pki.CAFile
	env["KAFKA_CERT_FILE"] = pki.ClientCertFile
	env["KAFKA_KEY_FILE"] = pki.ClientKeyFile
	env["KAFKA_SASL_MECHANISM"] = "scram-sha-512"
	env["KAFKA_SASL_USERNAME"] = "cybereason-connector"
	env["KAFKA_SASL_PASSWORD_FILE"] = passwordPath

	cfg, err := load(t, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}

	if cfg.Kafka.SASL.Mechanism != "SCRAM-SHA-512" {
		t.Errorf("mechanism = %q, want SCRAM-SHA-512", cfg.Kafka.SASL.Mechanism)
	}
	assertPassword(t, cfg.Kafka.SASL.Password, "first kafka password")
	writeFile(t, passwordPath, "rotated kafka password")
	assertPassword(t, cfg.Kafka.SASL.Password, "rotated kafka password")
}

func TestLoadRejectsBadKafkaSecurity(t *testing.T) {
	pki := kafkaconntest.NewPKI(t)
	missing := filepath.Join(t.TempDir(), "missing")

	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"unknown mechanism", map[string]string{"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
			[]string{`KAFKA_SASL_MECHANISM: invalid value "GSSAPI"`}},
		{"mechanism without credentials", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN"},
			[]string{"KAFKA_SASL_USERNAME: missing", "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE: missing"}},
		{"credentials without mechanism", map[string]string{"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
			[]string{"KAFKA_SASL_MECHANISM: missing"}},
		{"both password settings", map[string]string{"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_SASL_PASSWORD_FILE": missing},
			[]string{"KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE: both set"}},
		{"unreadable password file", map[string]string{"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD_FILE": missing},
			[]string{"KAFKA_SASL_PASSWORD_FILE: read secret file"}},
		{"CA file not PEM", map[string]string{"KAFKA_CA_FILE": pki.ClientKeyFile},
			[]string{"KAFKA_CA_FILE: " + pki.ClientKeyFile + " contains no PEM certificate"}},
		{"certificate without key", map[string]string{"KAFKA_CERT_FILE": pki.ClientCertFile},
			[]string{"KAFKA_CERT_FILE and KAFKA_KEY_FILE: set both"}},
		{"key does not match", map[string]string{"KAFKA_CERT_FILE": pki.CAFile, "KAFKA_KEY_FILE": pki.ClientKeyFile},
			[]string{"KAFKA_CERT_FILE and KAFKA_KEY_FILE: invalid client certificate or key"}},
		{"TLS not a boolean", map[string]string{"KAFKA_TLS": "maybe"},
			[]string{`KAFKA_TLS: invalid value "maybe"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := validEnv()
			for key, value := range tt.env {
				env[key] = value
			}

			_, err := load(t, env)
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Load error = %v, want one containing %q", err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), `"p"`) {
				t.Errorf("Load error reveals the password: %v", err)
			}
		})
	}
}
