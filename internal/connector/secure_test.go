package connector_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/internal/connector"
	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn/kafkaconntest"
	"github.com/oversoc/cybereason-connector/internal/kafkaread"
	"github.com/oversoc/cybereason-connector/internal/kafkatest"
	"github.com/oversoc/cybereason-connector/pipeline/enrich"
	"github.com/oversoc/cybereason-connector/sink"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

const (
	kafkaUser     = "cybereason-connector"
	kafkaPassword = "kafka pa$$word"
)

// saslConfig returns the configuration of every stage against console and a
// broker that requires SCRAM-SHA-512, with the Kafka password read from a
// file holding password. With pki set, the broker also requires TLS, and the
// configuration trusts pki's CA and sends its client certificate.
func saslConfig(t *testing.T, consoleURL, password string, pki *kafkaconntest.PKI) *config.Config {
	t.Helper()
	cfg := testConfigWithoutBroker(consoleURL, cybereasontest.DefaultPassword)
	brokerConfig := embeddedkafka.Config{
		Topics: testTopicSpecs(cfg.Kafka.Topics, 2),
		Users:  []embeddedkafka.User{{Mechanism: kafkaconn.MechanismScramSHA512, Name: kafkaUser, Password: kafkaPassword}},
	}
	if pki != nil {
		brokerConfig.TLS = pki.Broker.Clone()
		brokerConfig.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.Kafka.CAFile, cfg.Kafka.CertFile, cfg.Kafka.KeyFile = pki.CAFile, pki.ClientCertFile, pki.ClientKeyFile
	}
	broker := startBroker(t, brokerConfig)
	t.Cleanup(broker.Close)

	path := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.Brokers = broker.Addrs()
	cfg.Kafka.SASL = config.SASL{Mechanism: kafkaconn.MechanismScramSHA512, Username: kafkaUser, Password: config.NewSecretFile(path), PasswordFile: path}
	return cfg
}

// readSASL reads every message of topic as kafkaUser, over mutual TLS when
// cfg sets a CA file.
func readSASL(t *testing.T, cfg *config.Config, topic string) []kafka.Message {
	t.Helper()
	security, err := kafkaconn.New(kafkaconn.Config{
		CAFile:    cfg.Kafka.CAFile,
		CertFile:  cfg.Kafka.CertFile,
		KeyFile:   cfg.Kafka.KeyFile,
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
	err = kafkaread.ScanWithDialer(ctx, security.Dialer(), cfg.Kafka.Brokers, topic, func(msg kafka.Message) error {
		msgs = append(msgs, msg)
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	return msgs
}

// TestRunOverTLSAndSCRAM runs every stage against a broker that requires
// mutual TLS and SCRAM-SHA-512: the writer, the readers and consumer groups,
// the dedupe restore, the checkpoint store and the topic check all connect.
func TestRunOverTLSAndSCRAM(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(5, 40, 4, time.Now())
	console := cybereasontest.NewServer(tenant, cybereasontest.Options{})
	defer console.Close()
	cfg := saslConfig(t, console.URL, kafkaPassword, kafkaconntest.NewPKI(t))

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stages.Run(ctx, cfg.ShutdownTimeout) }()

	kafkatest.WaitFor(t, func() bool {
		return len(readSASL(t, cfg, cfg.Kafka.Topics.Assets)) >= 40 &&
			len(readSASL(t, cfg, cfg.Kafka.Topics.State)) >= 2
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
	cfg := saslConfig(t, "http://127.0.0.1:1", wrong, nil)
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

// TestRunUsesRotatedKafkaPassword changes the Kafka password while the
// stages run, as the Strimzi User Operator does, and updates the password
// file. After a broker restart closes every connection, the stages connect
// again with the new password, without a restart of their own.
func TestRunUsesRotatedKafkaPassword(t *testing.T) {
	cfg := testConfigWithoutBroker("http://127.0.0.1:1", "unused")
	cfg.Stages = []string{config.StageEnrich, config.StageDedupe}
	passwordPath := filepath.Join(t.TempDir(), "kafka-password")
	writeKafkaPassword(t, passwordPath, "first password")
	cfg.Kafka.SASL = config.SASL{Mechanism: kafkaconn.MechanismScramSHA256, Username: kafkaUser,
		Password: config.NewSecretFile(passwordPath), PasswordFile: passwordPath}

	brokerConfig := embeddedkafka.Config{
		Port:    freeLoopbackPort(t),
		DataDir: t.TempDir(),
		Topics:  testTopicSpecs(cfg.Kafka.Topics, 2),
		Users:   []embeddedkafka.User{{Mechanism: kafkaconn.MechanismScramSHA256, Name: kafkaUser, Password: "first password"}},
	}
	broker := startBroker(t, brokerConfig)
	t.Cleanup(func() { broker.Close() })
	cfg.Kafka.Brokers = broker.Addrs()

	stages, err := connector.Build(cfg, connector.Options{ProductVersion: "test"}, nil)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- stages.Run(ctx, cfg.ShutdownTimeout) }()
	stopRun := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { stopRun() })

	produceSensor(t, cfg, "first password", "5f0c0ffee0000000000000aa:PYLUMCLIENT_ACME_WS-01_005056000001")
	waitForAssets(t, cfg, 1, "first password")

	changeScramPassword(t, cfg.Kafka.Brokers, "first password", "second password")
	writeKafkaPassword(t, passwordPath, "second password")
	broker.Close()
	broker = startBroker(t, brokerConfig) // it keeps the changed password in its DataDir

	produceSensor(t, cfg, "second password", "5f0c0ffee0000000000000aa:PYLUMCLIENT_ACME_WS-02_005056000002")
	waitForAssets(t, cfg, 2, "second password")
	kafkatest.WaitFor(t, func() bool { ready, _ := stages.Ready(); return ready })
	if err := stopRun(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// changeScramPassword sets the SCRAM-SHA-256 password of kafkaUser on the
// broker with an AlterUserScramCredentials request.
func changeScramPassword(t *testing.T, brokers []string, oldPassword, newPassword string) {
	t.Helper()
	const iterations = 4096
	salt := []byte("rotation test salt")
	salted, err := pbkdf2.Key(sha256.New, newPassword, salt, iterations, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}

	transport := scramSecurity(t, oldPassword).Transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := client.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{
		Upsertions: []kafka.UserScramCredentialsUpsertion{{
			Name: kafkaUser, Mechanism: kafka.ScramMechanismSha256, Iterations: iterations, Salt: salt, SaltedPassword: salted,
		}},
	})
	if err != nil {
		t.Fatalf("change the password of %s: %v", kafkaUser, err)
	}
	for _, result := range resp.Results {
		if result.Error != nil {
			t.Fatalf("change the password of %s: %v", result.User, result.Error)
		}
	}
}

func writeKafkaPassword(t *testing.T, path, password string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func scramSecurity(t *testing.T, password string) *kafkaconn.Security {
	t.Helper()
	security, err := kafkaconn.New(kafkaconn.Config{
		Mechanism: kafkaconn.MechanismScramSHA256,
		Username:  kafkaUser,
		Password:  func() (string, error) { return password, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return security
}

// produceSensor publishes one raw sensor as the source would.
func produceSensor(t *testing.T, cfg *config.Config, password, sensorID string) {
	t.Helper()
	event := sink.Event{
		ID: sensorID + "#1", Source: "https://acme.cybereason.example/rest/sensors/query", Type: enrich.RawSensorType,
		Subject: sensorID, Tenant: "acme.cybereason.example", Time: time.Now(),
	}
	transport := scramSecurity(t, password).Transport()
	defer transport.CloseIdleConnections()
	writer := &kafka.Writer{Addr: kafka.TCP(cfg.Kafka.Brokers...), Transport: transport, RequiredAcks: kafka.RequireAll}
	defer writer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := writer.WriteMessages(ctx, kafka.Message{
		Topic:   cfg.Kafka.Topics.RawSensors,
		Key:     []byte(sensorID),
		Value:   []byte(`{"sensorId": "` + sensorID + `", "machineName": "ws", "status": "Online"}`),
		Headers: event.Headers(),
	})
	if err != nil {
		t.Fatalf("produce sensor %s: %v", sensorID, err)
	}
}

// waitForAssets waits until the assets topic has want distinct keys, read
// with password.
func waitForAssets(t *testing.T, cfg *config.Config, want int, password string) {
	t.Helper()
	security := scramSecurity(t, password)
	kafkatest.WaitFor(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		keys := map[string]bool{}
		err := kafkaread.ScanWithDialer(ctx, security.Dialer(), cfg.Kafka.Brokers, cfg.Kafka.Topics.Assets, func(msg kafka.Message) error {
			keys[string(msg.Key)] = true
			return nil
		})
		return err == nil && len(keys) >= want
	})
}
