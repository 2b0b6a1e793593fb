package kafkaconn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/internal/embeddedkafka"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn"
	"github.com/oversoc/cybereason-connector/internal/kafkaconn/kafkaconntest"
)

const (
	testTopic    = "connections"
	testUser     = "connector-enrich"
	testPassword = "s3cret pa$$word"
)

func startBroker(t *testing.T, mechanism string, cfg embeddedkafka.Config) *embeddedkafka.Broker {
	t.Helper()
	cfg.Topics = []embeddedkafka.Topic{{Name: testTopic}}
	cfg.Users = []embeddedkafka.User{{Mechanism: mechanism, Name: testUser, Password: testPassword}}
	broker, err := embeddedkafka.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	return broker
}

func passwordFile(t *testing.T, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "password")
	writePassword(t, path, password)
	return path
}

func writePassword(t *testing.T, path, password string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func fromFile(path string) func() (string, error) {
	return func() (string, error) {
		data, err := os.ReadFile(path)
		return strings.TrimSuffix(string(data), "\n"), err
	}
}

func newSecurity(t *testing.T, cfg kafkaconn.Config) *kafkaconn.Security {
	t.Helper()
	security, err := kafkaconn.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return security
}

// readMetadata makes a kafka.Client request through a new transport, as the
// writer, the topic checks and the dedupe restore do.
func readMetadata(ctx context.Context, security *kafkaconn.Security, brokers []string) error {
	transport := security.Transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport}
	_, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{testTopic}})
	return err
}

// dialLeader connects through the dialer, as the readers and consumer
// groups do.
func dialLeader(ctx context.Context, security *kafkaconn.Security, brokers []string) error {
	conn, err := security.Dialer().DialLeader(ctx, "tcp", brokers[0], testTopic, 0)
	if err != nil {
		return err
	}
	return conn.Close()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestSASLMechanismsConnect(t *testing.T) {
	for _, mechanism := range []string{kafkaconn.MechanismPlain, kafkaconn.MechanismScramSHA256, kafkaconn.MechanismScramSHA512} {
		t.Run(mechanism, func(t *testing.T) {
			broker := startBroker(t, mechanism, embeddedkafka.Config{})
			security := newSecurity(t, kafkaconn.Config{
				Mechanism: strings.ToLower(mechanism),
				Username:  testUser,
				Password:  fromFile(passwordFile(t, testPassword)),
			})
			ctx := testContext(t)

			if err := readMetadata(ctx, security, broker.Addrs()); err != nil {
				t.Errorf("metadata through the transport: %v", err)
			}
			if err := dialLeader(ctx, security, broker.Addrs()); err != nil {
				t.Errorf("dial through the dialer: %v", err)
			}
			if failing, reason := security.AuthFailing(time.Now().Add(time.Hour)); failing {
				t.Errorf("AuthFailing after successful connections: %s", reason)
			}
		})
	}
}

func TestWrongPasswordIsAuthError(t *testing.T) {
	broker := startBroker(t, kafkaconn.MechanismScramSHA512, embeddedkafka.Config{})
	const wrong = "not-the-password"
	security := newSecurity(t, kafkaconn.Config{
		Mechanism: kafkaconn.MechanismScramSHA512,
		Username:  testUser,
		Password:  fromFile(passwordFile(t, wrong)),
	})
	ctx := testContext(t)

	paths := []struct {
		name    string
		connect func(context.Context, *kafkaconn.Security, []string) error
	}{
		{"transport", readMetadata},
		{"dialer", dialLeader},
	}
	for _, path := range paths {
		t.Run(path.name, func(t *testing.T) {
			err := security.Explain(path.connect(ctx, security, broker.Addrs()))

			var authErr *kafkaconn.AuthError
			if !errors.As(err, &authErr) {
				t.Fatalf("error = %v, want a *kafkaconn.AuthError", err)
			}
			for _, want := range []string{"kafka authentication failed", "SCRAM-SHA-512", testUser} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), wrong) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}

	failing, reason := security.AuthFailing(time.Now().Add(time.Hour))
	if !failing || !strings.Contains(reason, testUser) {
		t.Errorf("AuthFailing = %t, %q; want true naming the user", failing, reason)
	}
}

func TestRotatedPasswordUsedAtNextConnection(t *testing.T) {
	broker := startBroker(t, kafkaconn.MechanismScramSHA256, embeddedkafka.Config{})
	path := passwordFile(t, "old password")
	security := newSecurity(t, kafkaconn.Config{
		Mechanism: kafkaconn.MechanismScramSHA256,
		Username:  testUser,
		Password:  fromFile(path),
	})
	ctx := testContext(t)

	// One transport for the whole test, as a long-running writer has.
	transport := security.Transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(broker.Addrs()...), Transport: transport}
	metadata := func() error {
		_, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{testTopic}})
		return security.Explain(err)
	}

	var authErr *kafkaconn.AuthError
	if err := metadata(); !errors.As(err, &authErr) {
		t.Fatalf("with the old password: error = %v, want an authentication failure", err)
	}

	// The transport serves metadata from a cache that its background
	// refresh fills, reconnecting within its metadata TTL (6 s by default).
	writePassword(t, path, testPassword)
	deadline := time.Now().Add(45 * time.Second)
	for err := metadata(); err != nil; err = metadata() {
		if time.Now().After(deadline) {
			t.Fatalf("after the password file changed: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := dialLeader(ctx, security, broker.Addrs()); err != nil {
		t.Fatalf("dialer after the password file changed: %v", err)
	}
	if failing, reason := security.AuthFailing(time.Now().Add(time.Hour)); failing {
		t.Errorf("AuthFailing after the rotation: %s", reason)
	}
}

func TestTLSWithCAFileAndClientCertificate(t *testing.T) {
	pki := kafkaconntest.NewPKI(t)
	broker := startBroker(t, kafkaconn.MechanismScramSHA512, embeddedkafka.Config{TLS: pki.Broker})
	ctx := testContext(t)

	tests := []struct {
		name    string
		cfg     kafkaconn.Config
		wantErr string
	}{
		{"CA file", kafkaconn.Config{CAFile: pki.CAFile}, ""},
		{"mutual TLS", kafkaconn.Config{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}, ""},
		{"system CAs only", kafkaconn.Config{TLS: true}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Mechanism = kafkaconn.MechanismScramSHA512
			tt.cfg.Username = testUser
			tt.cfg.Password = func() (string, error) { return testPassword, nil }
			security := newSecurity(t, tt.cfg)

			err := readMetadata(ctx, security, broker.Addrs())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("metadata: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("metadata error = %v, want one about %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	pki := kafkaconntest.NewPKI(t)
	missing := filepath.Join(t.TempDir(), "missing")

	tests := []struct {
		name string
		cfg  kafkaconn.Config
		want string
	}{
		{"unknown mechanism", kafkaconn.Config{Mechanism: "GSSAPI", Username: "u", Password: func() (string, error) { return "p", nil }}, `SASL mechanism "GSSAPI"`},
		{"no username", kafkaconn.Config{Mechanism: "PLAIN", Password: func() (string, error) { return "p", nil }}, "SASL username: missing"},
		{"no password", kafkaconn.Config{Mechanism: "PLAIN", Username: "u"}, "SASL password: missing"},
		{"unreadable password", kafkaconn.Config{Mechanism: "PLAIN", Username: "u", Password: fromFile(missing)}, "SASL password:"},
		{"CA file missing", kafkaconn.Config{CAFile: missing}, "TLS CA file"},
		{"CA file not PEM", kafkaconn.Config{CAFile: pki.ClientKeyFile}, "contains no PEM certificate"},
		{"key without certificate", kafkaconn.Config{KeyFile: pki.ClientKeyFile}, "set both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kafkaconn.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestPlainSecurityHasNoTLSOrSASL(t *testing.T) {
	for name, security := range map[string]*kafkaconn.Security{"nil": nil, "zero config": newSecurity(t, kafkaconn.Config{})} {
		dialer, transport := security.Dialer(), security.Transport()
		if dialer.TLS != nil || dialer.SASLMechanism != nil || transport.TLS != nil || transport.SASL != nil {
			t.Errorf("%s: dialer or transport has TLS or SASL settings", name)
		}
		if err := errors.New("unexpected EOF"); security.Explain(err) != err {
			t.Errorf("%s: Explain changed an error without SASL", name)
		}
	}
}
