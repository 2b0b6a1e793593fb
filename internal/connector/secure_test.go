package connector_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
	"github.com/oversoc/cybereason-connector/internal/kafkaread"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

const (
	kafkaUser     = "cybereason-connector"
	kafkaPassword = "kafka pa$$word"
)

// saslConfig returns the configuration of every stage against console and a
// broker that requires SCRAM-SHA-512, with the Kafka password read from a
// file holding password.
func saslConfig(t *testing.T, consoleURL, password string) *config.Config {
	t.Helper()
	cfg := testConfigWithoutBroker(consoleURL, cybereasontest.DefaultPassword)
	broker := startBroker(t, embeddedkafka.Config{
		Topics: testTopicSpecs(cfg.Kafka.Topics, 2),
		Users:  []embeddedkafka.User{{Mechanism: kafkaconn.MechanismScramSHA512, Name: kafkaUser, Password: kafkaPassword}},
	})
	t.Cleanup(broker.Close)

	path := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.Brokers = broker.Addrs()
	cfg.Kafka.SASL = config.SASL{Mechanism: kafkaconn.MechanismScramSHA512, Username: kafkaUser, Password: config.NewSecretFile(path), PasswordFile: path}
	return cfg
}

// readSASL reads every message of topic as kafkaUser.
func readSASL(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	security, err := kafkaconn.New(kafkaconn.Config{
		Mechanism: kafkaconn.MechanismScramSHA512,
		Username:  kafkaUser,
		Password:  func() (string, error) { return kafkaPassword, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var msgs []kafka.Message
	err = kafkaread.ScanWithDialer(ctx, security.Dialer(), brokers, topic, func(msg kafka.Message) error {
		msgs = append(msgs, msg)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return msgs
}

// TestRunOverSASLSCRAM runs every stage against a broker that requires
// SCRAM-SHA-512: the writer, the readers and consumer groups, the dedupe
// restore, the checkpoint store and the topic check all authenticate.
func TestRunOverSASLSCRAM(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(5, 40, 4, time.Now())
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
	defer console.Close()
	cfg := saslConfig(t, console.URL, kafkaPassword)

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stages.Run(ctx, cfg.ShutdownTimeout) }()

	kafkatest.WaitFor(t, func() bool {
		return len(readSASL(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.Assets)) >= 40 &&
			len(readSASL(t, cfg.Kafka.Brokers, cfg.Kafka.Topics.State)) >= 2
	})
	kafkatest.WaitFor(t, func() bool { ready, _ := stages.Ready(); return ready })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	results := connector.Check(context.Background(), cfg, nil)
	if !results[0].OK {
		t.Errorf("check of kafka failed: %s", results[0].Detail)
	}
}

func TestRunReportsWrongKafkaPassword(t *testing.T) {
	const wrong = "an old kafka password"
	cfg := saslConfig(t, "http://127.0.0.1:1", wrong)
	cfg.Stages = []string{config.StageEnrich, config.StageDedupe}

	stages, err := connector.Build(cfg, connector.Options{}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	runErr := stages.Run(context.Background(), cfg.ShutdownTimeout)
	checkErr := connector.Check(context.Background(), cfg, nil)[0]

	for name, message := range map[string]string{"Run": errorText(runErr), "Check": checkErr.Detail} {
		for _, want := range []string{"kafka authentication failed", kafkaconn.MechanismScramSHA512, kafkaUser} {
			if !strings.Contains(message, want) {
				t.Errorf("%s error %q does not contain %q", name, message, want)
			}
		}
		if strings.Contains(message, wrong) {
			t.Errorf("%s error reveals the password: %q", name, message)
		}
	}
	var authErr *kafkaconn.AuthError
	if !errors.As(runErr, &authErr) {
		t.Errorf("Run error = %v, want a *kafkaconn.AuthError", runErr)
	}
	if checkErr.OK {
		t.Error("check of kafka passed with a wrong password")
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
