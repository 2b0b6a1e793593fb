// Package kafkaconn holds the TLS and SASL settings that every Kafka client
// of the connector uses: the sink writer, the pipeline readers and consumer
// groups, the dedupe restore, the checkpoint store and the topic checks.
//
// Secrets are read when a connection is made, not when the settings are
// built: the SASL password file at every SASL handshake and the client
// certificate and key files at every TLS handshake. A Kubernetes Secret
// mounted as files can therefore be rotated without a restart; connections
// already open keep working until they close.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms, as Kafka names them.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// clientID names the connector in the brokers' logs and quotas.
const clientID = "cybereason-connector"

// dialTimeout bounds the setup of each new connection. AuthFailing also
// waits this long before it takes an unfinished SASL exchange as a failure.
const dialTimeout = 10 * time.Second

// Config describes how to connect. The zero value is plain TCP without
// authentication.
type Config struct {
	// TLS turns TLS on. Setting CAFile or CertFile turns it on too.
	TLS bool
	// CAFile is a PEM file of the certificate authorities that sign the
	// brokers' certificates, trusted besides the system ones. Optional.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key for mutual
	// TLS, read at every TLS handshake. Optional; set both or neither.
	CertFile, KeyFile string

	// Mechanism is the SASL mechanism: PLAIN, SCRAM-SHA-256 or
	// SCRAM-SHA-512 (any case). Empty turns SASL off.
	Mechanism string
	// Username is the SASL user. Required with a mechanism.
	Username string
	// Password returns the SASL password. It is called at every SASL
	// handshake, so a password read from a file follows the file. Required
	// with a mechanism.
	Password func() (string, error)
}

// Security builds Kafka dialers and transports from a Config. A nil
// *Security connects over plain TCP without authentication.
type Security struct {
	tls       *tls.Config
	mechanism *freshMechanism
	username  string
}

// New checks cfg, loads the CA file and returns the settings. It also reads
// the client certificate and the password once, so a wrong file fails the
// start and not the first connection. Later handshakes read them again.
func New(cfg Config) (*Security, error) {
	var errs []error
	s := &Security{}

	tlsConfig, err := newTLSConfig(cfg)
	if err != nil {
		errs = append(errs, err)
	}
	s.tls = tlsConfig

	if cfg.Mechanism != "" {
		mechanism, err := newMechanism(cfg)
		if err != nil {
			errs = append(errs, err)
		}
		s.mechanism, s.username = mechanism, cfg.Username
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kafka connection settings: %w", errors.Join(errs...))
	}
	return s, nil
}

func newTLSConfig(cfg Config) (*tls.Config, error) {
	if !cfg.TLS && cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := loadCAPool(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tlsConfig.RootCAs = pool
	}

	switch {
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return nil, errors.New("TLS client certificate: set both the certificate and the key file, or neither")
	case cfg.CertFile != "":
		if _, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("load kafka client certificate: %w", err)
			}
			return &cert, nil
		}
	}
	return tlsConfig, nil
}

// loadCAPool returns the system pool plus the certificates of path.
func loadCAPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("TLS CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("TLS CA file: %s contains no PEM certificate", path)
	}
	return pool, nil
}

func newMechanism(cfg Config) (*freshMechanism, error) {
	name := strings.ToUpper(cfg.Mechanism)
	var create func(user, password string) (sasl.Mechanism, error)
	switch name {
	case MechanismPlain:
		create = func(user, password string) (sasl.Mechanism, error) {
			return plain.Mechanism{Username: user, Password: password}, nil
		}
	case MechanismScramSHA256:
		create = func(user, password string) (sasl.Mechanism, error) {
			return scram.Mechanism(scram.SHA256, user, password)
		}
	case MechanismScramSHA512:
		create = func(user, password string) (sasl.Mechanism, error) {
			return scram.Mechanism(scram.SHA512, user, password)
		}
	default:
		return nil, fmt.Errorf("SASL mechanism %q: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", cfg.Mechanism)
	}

	var errs []error
	if cfg.Username == "" {
		errs = append(errs, errors.New("SASL username: missing"))
	}
	if cfg.Password == nil {
		errs = append(errs, errors.New("SASL password: missing"))
	} else if _, err := cfg.Password(); err != nil {
		errs = append(errs, fmt.Errorf("SASL password: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &freshMechanism{name: name, username: cfg.Username, password: cfg.Password, create: create}, nil
}

// freshMechanism is a sasl.Mechanism that reads the password at every
// handshake and builds the stock mechanism from it, because the stock ones
// keep the password they were created with. It also records whether the
// exchanges complete, because a broker may refuse credentials by closing the
// connection, which kafka-go's Transport reports as an unexpected EOF.
type freshMechanism struct {
	name     string
	username string
	password func() (string, error)
	create   func(user, password string) (sasl.Mechanism, error)
	tracker  exchangeTracker
}

func (m *freshMechanism) Name() string { return m.name }

// Start reads the password and starts the exchange. The password never
// appears in an error.
func (m *freshMechanism) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	password, err := m.password()
	if err != nil {
		return nil, nil, fmt.Errorf("read the %s password of kafka user %q: %w", m.name, m.username, err)
	}
	mechanism, err := m.create(m.username, password)
	if err != nil {
		return nil, nil, fmt.Errorf("prepare %s for kafka user %q: %w", m.name, m.username, err)
	}
	session, initial, err := mechanism.Start(ctx)
	if err != nil {
		return nil, nil, err
	}
	m.tracker.started(time.Now())
	return &trackedSession{StateMachine: session, tracker: &m.tracker}, initial, nil
}

// trackedSession marks its exchange complete when the broker accepted it.
type trackedSession struct {
	sasl.StateMachine
	tracker *exchangeTracker
}

func (s *trackedSession) Next(ctx context.Context, challenge []byte) (bool, []byte, error) {
	done, response, err := s.StateMachine.Next(ctx, challenge)
	if done && err == nil {
		s.tracker.completed()
	}
	return done, response, err
}

// exchangeTracker stores since when SASL exchanges have been started without
// one completing.
type exchangeTracker struct {
	mu           sync.Mutex
	pendingSince time.Time // zero when the last exchange completed
}

func (t *exchangeTracker) started(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pendingSince.IsZero() {
		t.pendingSince = now
	}
}

func (t *exchangeTracker) completed() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pendingSince = time.Time{}
}

func (t *exchangeTracker) pending() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pendingSince, !t.pendingSince.IsZero()
}

// TLS returns the TLS settings, nil for plain TCP.
func (s *Security) TLS() *tls.Config {
	if s == nil || s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// Mechanism returns the SASL mechanism, nil without SASL.
func (s *Security) Mechanism() sasl.Mechanism {
	if s == nil || s.mechanism == nil {
		return nil
	}
	return s.mechanism
}

// Dialer returns a new dialer for readers and consumer groups.
func (s *Security) Dialer() *kafka.Dialer {
	return &kafka.Dialer{
		ClientID:      clientID,
		Timeout:       dialTimeout,
		DualStack:     true,
		TLS:           s.TLS(),
		SASLMechanism: s.Mechanism(),
	}
}

// Transport returns a new transport for writers and kafka.Client requests.
// The caller closes its idle connections when done.
func (s *Security) Transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    clientID,
		DialTimeout: dialTimeout,
		TLS:         s.TLS(),
		SASL:        s.Mechanism(),
	}
}

// TransportFor returns a transport with the TLS and SASL settings of dialer,
// which may be nil for plain TCP.
func TransportFor(dialer *kafka.Dialer) *kafka.Transport {
	transport := &kafka.Transport{ClientID: clientID, DialTimeout: dialTimeout}
	if dialer != nil {
		transport.TLS = dialer.TLS
		transport.SASL = dialer.SASLMechanism
		if dialer.ClientID != "" {
			transport.ClientID = dialer.ClientID
		}
	}
	return transport
}

// AuthError is a connection whose SASL credentials the broker rejected.
type AuthError struct {
	Mechanism string
	Username  string
	Err       error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("kafka authentication failed: the broker rejected %s credentials of user %q; check the user name and the password file: %v",
		e.Mechanism, e.Username, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// Explain returns err as an *AuthError when it is a SASL authentication
// failure, or an end of connection while a SASL exchange has not completed,
// which is how some brokers reject credentials. Other errors are returned
// unchanged.
func (s *Security) Explain(err error) error {
	if err == nil || s == nil || s.mechanism == nil {
		return err
	}
	var authErr *AuthError
	if errors.As(err, &authErr) {
		return err
	}

	_, pending := s.mechanism.tracker.pending()
	refused := errors.Is(err, kafka.SASLAuthenticationFailed) || errors.Is(err, kafka.IllegalSASLState) ||
		(pending && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)))
	if !refused {
		return err
	}
	return &AuthError{Mechanism: s.mechanism.Name(), Username: s.username, Err: err}
}

// AuthFailing reports whether SASL exchanges have been started and none has
// completed for longer than a handshake may take, and if so names the
// mechanism and user. A broker that rejects the credentials looks like this.
func (s *Security) AuthFailing(now time.Time) (bool, string) {
	if s == nil || s.mechanism == nil {
		return false, ""
	}
	since, pending := s.mechanism.tracker.pending()
	if !pending || now.Sub(since) < dialTimeout {
		return false, ""
	}
	return true, fmt.Sprintf("kafka %s authentication of user %q has not succeeded since %s", s.mechanism.Name(), s.username, since.UTC().Format(time.RFC3339))
}
