// Package config reads the connector's settings from environment variables
// and validates all of them at once.
package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// Stage names accepted by STAGES.
const (
	StageSource = "source"
	StageEnrich = "enrich"
	StageDedupe = "dedupe"
)

// Config is the whole `run` configuration. The env tags are the reference for
// variable names and defaults; README.md lists them for operators.
type Config struct {
	Cybereason Cybereason `env:", prefix=CYBEREASON_"`
	Kafka      Kafka      `env:", prefix=KAFKA_"`
	Source     Source     `env:", prefix=SOURCE_"`

	// Stages lists the stages this process runs. Default: all three.
	Stages []string `env:"STAGES, default=source,enrich,dedupe"`

	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel slog.Level `env:"LOG_LEVEL, default=info"`

	// LogFormat is auto (colored text on a terminal, JSON otherwise), text or json.
	LogFormat string `env:"LOG_FORMAT, default=auto"`

	// ShutdownTimeout bounds the drain after SIGTERM. Default: 30s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT, default=30s"`

	// MetricsAddr is the host:port of the Prometheus /metrics endpoint; "off"
	// disables it. Default: :9090.
	MetricsAddr string `env:"METRICS_ADDR, default=:9090"`
}

// Cybereason holds the console connection settings.
type Cybereason struct {
	// URL is the console base URL, e.g. https://acme.cybereason.net. Required.
	URL string `env:"URL"`

	// Username is the API user, normally an e-mail address. Required.
	Username string `env:"USERNAME"`

	// Password is set from CYBEREASON_PASSWORD or, read at every login, from
	// the file named by CYBEREASON_PASSWORD_FILE. Exactly one is required.
	Password     Secret `env:"PASSWORD"`
	PasswordFile string `env:"PASSWORD_FILE"`

	// TOTPSecret is the base32 secret of a two-factor account, from
	// CYBEREASON_TOTP_SECRET or, read at every login, the file named by
	// CYBEREASON_TOTP_SECRET_FILE. Optional: a TFA-exempt API user needs none.
	TOTPSecret     Secret `env:"TOTP_SECRET"`
	TOTPSecretFile string `env:"TOTP_SECRET_FILE"`

	// CAFile is a PEM file of certificate authorities trusted for the console,
	// besides the system ones. Optional.
	CAFile string `env:"CA_FILE"`

	// Tenant is the tenant id in record keys. Default: the URL's host name.
	Tenant string `env:"TENANT"`

	// PageSize is the number of sensors per page, 1 to 1000. Default: 1000.
	PageSize int `env:"PAGE_SIZE, default=1000"`

	// PageConcurrency is the number of sensor pages requested at a time, 1 to 16, and the
	// number of requests the client sends to the console at a time. Pages are still published in
	// order. 1 requests each page after the one before was published. Default: 3.
	PageConcurrency int `env:"PAGE_CONCURRENCY, default=3"`

	// MaxPages stops a sensor listing that never ends. Default: 10000.
	MaxPages int `env:"MAX_PAGES, default=10000"`

	// RequestTimeout bounds each HTTP request. Default: 60s.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT, default=60s"`
}

// Kafka holds the broker and topic settings.
type Kafka struct {
	// Brokers is a comma-separated list of host:port. Required.
	Brokers []string `env:"BROKERS"`

	Topics Topics `env:", prefix=TOPIC_"`

	// TLS, CAFile, CertFile and KeyFile set up TLS to the brokers. Setting a
	// file turns TLS on. CertFile and KeyFile are read at every handshake.
	TLS      bool   `env:"TLS, default=false"`
	CAFile   string `env:"CA_FILE"`
	CertFile string `env:"CERT_FILE"`
	KeyFile  string `env:"KEY_FILE"`

	// SASL sets up SASL authentication. Optional.
	SASL SASL `env:", prefix=SASL_"`

	// EnrichGroup and DedupeGroup are the consumer group ids of the stages.
	EnrichGroup string `env:"ENRICH_GROUP, default=cybereason-connector-enrich"`
	DedupeGroup string `env:"DEDUPE_GROUP, default=cybereason-connector-dedupe"`

	// DedupeResyncInterval is how often dedupe republishes an unchanged
	// entity, so consumers see it is still there; 0 never does. Default: 24h.
	DedupeResyncInterval time.Duration `env:"DEDUPE_RESYNC_INTERVAL, default=24h"`

	// GroupSessionTimeout is the consumer group session timeout of enrich
	// and dedupe: a member that sent no heartbeat for this long is removed,
	// and its partitions go to the other members. After a crash, a restarted
	// instance waits up to this long for its old member to be removed. The
	// broker rejects a value outside its group.min.session.timeout.ms and
	// group.max.session.timeout.ms (6s and 30m by default). Default: 30s.
	GroupSessionTimeout time.Duration `env:"GROUP_SESSION_TIMEOUT, default=30s"`

	// GroupRebalanceTimeout is how long a rebalance waits for every member
	// to finish its batch in flight and join again. Default: 30s.
	GroupRebalanceTimeout time.Duration `env:"GROUP_REBALANCE_TIMEOUT, default=30s"`

	// DedupeMissedInventories is the number of complete sensor inventories
	// in a row that an asset must be missing from before dedupe publishes
	// it as removed, then a tombstone for it. At least 1. Default: 1.
	DedupeMissedInventories int `env:"DEDUPE_MISSED_INVENTORIES, default=1"`
}

// SASL holds the Kafka SASL settings.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty turns SASL off.
	Mechanism string `env:"MECHANISM"`

	// Username is the Kafka user. Required with a mechanism.
	Username string `env:"USERNAME"`

	// Password is set from KAFKA_SASL_PASSWORD or, read at every new
	// connection, from the file named by KAFKA_SASL_PASSWORD_FILE. One is
	// required with a mechanism.
	Password     Secret `env:"PASSWORD"`
	PasswordFile string `env:"PASSWORD_FILE"`
}

// Topics names every topic the connector reads or writes.
type Topics struct {
	RawSensors         string `env:"RAW_SENSORS, default=cybereason.raw.sensors"`
	RawMalops          string `env:"RAW_MALOPS, default=cybereason.raw.malops"`
	RawMalware         string `env:"RAW_MALWARE, default=cybereason.raw.malware"`
	RawPolicies        string `env:"RAW_POLICIES, default=cybereason.raw.policies"`
	NormalizedAssets   string `env:"NORMALIZED_ASSETS, default=oversoc.normalized.assets"`
	NormalizedFindings string `env:"NORMALIZED_FINDINGS, default=oversoc.normalized.findings"`
	Assets             string `env:"ASSETS, default=oversoc.assets"`
	Findings           string `env:"FINDINGS, default=oversoc.findings"`
	// AssetSecurityState receives a record for each change of an asset's
	// protection posture.
	AssetSecurityState string `env:"ASSET_SECURITY_STATE, default=oversoc.asset-security-state"`
	// State is the compacted topic of the source's alert feed checkpoints.
	State string `env:"STATE, default=cybereason.connector.state"`
}

// Source holds the collection schedule.
type Source struct {
	// Feeds lists the feeds to collect: sensors, malops, malware, policies. Default: all.
	Feeds []string `env:"FEEDS, default=sensors,malops,malware,policies"`

	// MalopDetails fetches each MalOp's details (machines, users, root cause).
	// Default: true.
	MalopDetails bool `env:"MALOP_DETAILS, default=true"`

	// SensorsInterval is the time between two sensor inventories. Default: 1h.
	SensorsInterval time.Duration `env:"SENSORS_INTERVAL, default=1h"`

	// MalopsInterval is the time between two MalOp polls. Default: 5m.
	MalopsInterval time.Duration `env:"MALOPS_INTERVAL, default=5m"`

	// MalopsLookback is how far back the first MalOp window starts. Default: 24h.
	MalopsLookback time.Duration `env:"MALOPS_LOOKBACK, default=24h"`

	// MalopsOverlap is re-read at the start of every later window, so MalOps
	// that the console indexes late are not missed. Default: 10m.
	MalopsOverlap time.Duration `env:"MALOPS_OVERLAP, default=10m"`

	// MalwareInterval, MalwareLookback and MalwareOverlap do the same for
	// malware alerts. Defaults: 5m, 24h, 10m.
	MalwareInterval time.Duration `env:"MALWARE_INTERVAL, default=5m"`
	MalwareLookback time.Duration `env:"MALWARE_LOOKBACK, default=24h"`
	MalwareOverlap  time.Duration `env:"MALWARE_OVERLAP, default=10m"`

	// PoliciesInterval is the time between two policy listings. Default: 1h.
	PoliciesInterval time.Duration `env:"POLICIES_INTERVAL, default=1h"`
}

// Load reads the configuration from lookuper (envconfig.OsLookuper() in
// production) and returns an error that names every invalid or missing
// setting, not only the first one.
func Load(ctx context.Context, lookuper envconfig.Lookuper) (*Config, error) {
	cfg, problems := decode(ctx, lookuper)
	problems = append(problems, cfg.validate()...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}

	if cfg.Cybereason.PasswordFile != "" {
		cfg.Cybereason.Password = Secret{file: cfg.Cybereason.PasswordFile}
	}
	if cfg.Kafka.SASL.PasswordFile != "" {
		cfg.Kafka.SASL.Password = Secret{file: cfg.Kafka.SASL.PasswordFile}
	}
	cfg.Kafka.SASL.Mechanism = strings.ToUpper(cfg.Kafka.SASL.Mechanism)
	if cfg.Cybereason.TOTPSecretFile != "" {
		cfg.Cybereason.TOTPSecret = Secret{file: cfg.Cybereason.TOTPSecretFile}
	}
	if cfg.Cybereason.Tenant == "" {
		parsed, _ := url.Parse(cfg.Cybereason.URL) // validated above
		cfg.Cybereason.Tenant = parsed.Hostname()
	}
	return cfg, nil
}

// Error lists every configuration problem found.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration: " + strings.Join(e.Problems, "; ")
}

// decode runs envconfig until it succeeds. envconfig stops at the first value
// it cannot parse, so each round records that variable, hides it from the next
// round (its default then applies) and tries again.
func decode(ctx context.Context, lookuper envconfig.Lookuper) (*Config, []string) {
	recorder := &recordingLookuper{base: lookuper, hidden: map[string]bool{}}
	var problems []string

	for {
		cfg := &Config{}
		err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: cfg, Lookuper: recorder})
		if err == nil {
			return cfg, problems
		}

		key := recorder.last
		if key == "" || recorder.hidden[key] {
			// Not a value problem: the struct tags themselves are wrong.
			return cfg, append(problems, err.Error())
		}
		value, _ := recorder.base.Lookup(key)
		problems = append(problems, fmt.Sprintf("%s: invalid value %q: %v", key, value, rootCause(err)))
		recorder.hidden[key] = true
	}
}

// rootCause drops envconfig's Go field path so that a message names only the
// variable and what is wrong with its value.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

type recordingLookuper struct {
	base   envconfig.Lookuper
	hidden map[string]bool
	last   string
}

func (l *recordingLookuper) Lookup(key string) (string, bool) {
	l.last = key
	if l.hidden[key] {
		return "", false
	}
	return l.base.Lookup(key)
}

func (c *Config) validate() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if c.Runs(StageSource) {
		problems = append(problems, c.Cybereason.validate()...)
	}

	if len(c.Kafka.Brokers) == 0 {
		add("KAFKA_BROKERS: missing; set a comma-separated list of host:port")
	}
	for _, broker := range c.Kafka.Brokers {
		if !strings.Contains(broker, ":") {
			add("KAFKA_BROKERS: invalid broker %q; expected host:port", broker)
		}
	}
	problems = append(problems, c.Kafka.validateSecurity()...)
	for name, topic := range c.Kafka.Topics.byVariable() {
		if topic == "" {
			add("%s: must not be empty", name)
		}
	}

	// Polls more often than this only load the console.
	const minInterval = 10 * time.Second
	intervals := map[string]time.Duration{
		"SOURCE_SENSORS_INTERVAL":  c.Source.SensorsInterval,
		"SOURCE_MALOPS_INTERVAL":   c.Source.MalopsInterval,
		"SOURCE_MALWARE_INTERVAL":  c.Source.MalwareInterval,
		"SOURCE_POLICIES_INTERVAL": c.Source.PoliciesInterval,
	}
	for name, value := range intervals {
		if value < minInterval {
			add("%s: must be at least %s, got %s", name, minInterval, value)
		}
	}
	positive := map[string]time.Duration{
		"SOURCE_MALOPS_LOOKBACK":  c.Source.MalopsLookback,
		"SOURCE_MALWARE_LOOKBACK": c.Source.MalwareLookback,
		"SHUTDOWN_TIMEOUT":        c.ShutdownTimeout,
	}
	for name, value := range positive {
		if value <= 0 {
			add("%s: must be positive, got %s", name, value)
		}
	}
	// The heartbeat interval is a third of the session timeout, so a
	// shorter session would only load the broker with heartbeats.
	if c.Kafka.GroupSessionTimeout < time.Second {
		add("KAFKA_GROUP_SESSION_TIMEOUT: must be at least 1s, got %s", c.Kafka.GroupSessionTimeout)
	}
	if c.Kafka.GroupRebalanceTimeout < time.Second {
		add("KAFKA_GROUP_REBALANCE_TIMEOUT: must be at least 1s, got %s", c.Kafka.GroupRebalanceTimeout)
	}
	if c.Kafka.DedupeResyncInterval < 0 {
		add("KAFKA_DEDUPE_RESYNC_INTERVAL: must not be negative, got %s", c.Kafka.DedupeResyncInterval)
	}
	if c.Kafka.DedupeMissedInventories < 1 {
		add("KAFKA_DEDUPE_MISSED_INVENTORIES: must be at least 1, got %d", c.Kafka.DedupeMissedInventories)
	}
	if c.Source.MalopsOverlap < 0 {
		add("SOURCE_MALOPS_OVERLAP: must not be negative, got %s", c.Source.MalopsOverlap)
	}
	if c.Source.MalwareOverlap < 0 {
		add("SOURCE_MALWARE_OVERLAP: must not be negative, got %s", c.Source.MalwareOverlap)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(c.Source.Feeds)))) != len(c.Source.Feeds) {
		add("SOURCE_FEEDS: a feed is listed twice")
	}
	for _, feed := range c.Source.Feeds {
		if !slices.Contains([]string{"sensors", "malops", "malware", "policies"}, feed) {
			add("SOURCE_FEEDS: unknown feed %q; expected sensors, malops, malware or policies", feed)
		}
	}

	if c.MetricsAddr != "off" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			add("METRICS_ADDR: invalid value %q; expected host:port, :port or off", c.MetricsAddr)
		}
	}
	problems = append(problems, c.validateStages()...)
	if !slices.Contains([]string{"auto", "text", "json"}, c.LogFormat) {
		add("LOG_FORMAT: invalid value %q; expected auto, text or json", c.LogFormat)
	}

	slices.Sort(problems)
	return slices.Compact(problems)
}

// validateSecurity checks the TLS and SASL settings. The password itself
// never appears in a message.
func (k *Kafka) validateSecurity() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if k.CAFile != "" {
		if err := checkPEMFile(k.CAFile); err != nil {
			add("KAFKA_CA_FILE: %v", err)
		}
	}
	switch {
	case (k.CertFile == "") != (k.KeyFile == ""):
		add("KAFKA_CERT_FILE and KAFKA_KEY_FILE: set both for mutual TLS, or neither")
	case k.CertFile != "":
		if _, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile); err != nil {
			add("KAFKA_CERT_FILE and KAFKA_KEY_FILE: invalid client certificate or key: %v", err)
		}
	}

	sasl := k.SASL
	if sasl.Mechanism == "" {
		if sasl.Username != "" || sasl.Password.IsSet() || sasl.PasswordFile != "" {
			add("KAFKA_SASL_MECHANISM: missing; set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or remove the other KAFKA_SASL_* settings")
		}
		return problems
	}
	if !slices.Contains([]string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, strings.ToUpper(sasl.Mechanism)) {
		add("KAFKA_SASL_MECHANISM: invalid value %q; expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", sasl.Mechanism)
	}
	if sasl.Username == "" {
		add("KAFKA_SASL_USERNAME: missing; KAFKA_SASL_MECHANISM is set")
	}
	switch {
	case sasl.Password.IsSet() && sasl.PasswordFile != "":
		add("KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE: both set; set only one")
	case !sasl.Password.IsSet() && sasl.PasswordFile == "":
		add("KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE: missing; set one of them")
	case sasl.PasswordFile != "":
		if _, err := (Secret{file: sasl.PasswordFile}).Value(); err != nil {
			add("KAFKA_SASL_PASSWORD_FILE: %v", err)
		}
	}
	return problems
}

func (c *Cybereason) validate() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	problems = append(problems, c.validateURL()...)
	if c.Username == "" {
		add("CYBEREASON_USERNAME: missing")
	}

	switch {
	case c.Password.IsSet() && c.PasswordFile != "":
		add("CYBEREASON_PASSWORD and CYBEREASON_PASSWORD_FILE: both set; set only one")
	case !c.Password.IsSet() && c.PasswordFile == "":
		add("CYBEREASON_PASSWORD or CYBEREASON_PASSWORD_FILE: missing; set one of them")
	case c.PasswordFile != "":
		// The file is read again at every login; reading it now catches a
		// wrong mount at start-up instead of at the first collection.
		if _, err := (Secret{file: c.PasswordFile}).Value(); err != nil {
			add("CYBEREASON_PASSWORD_FILE: %v", err)
		}
	}

	problems = append(problems, c.validateTOTPSecret()...)
	if c.CAFile != "" {
		if err := checkPEMFile(c.CAFile); err != nil {
			add("CYBEREASON_CA_FILE: %v", err)
		}
	}
	if strings.Contains(c.Tenant, ":") {
		add("CYBEREASON_TENANT: invalid value %q; it is part of record keys and must not contain ':'", c.Tenant)
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		add("CYBEREASON_PAGE_SIZE: must be between 1 and 1000, got %d", c.PageSize)
	}
	if c.PageConcurrency < 1 || c.PageConcurrency > 16 {
		add("CYBEREASON_PAGE_CONCURRENCY: must be between 1 and 16, got %d", c.PageConcurrency)
	}
	if c.MaxPages < 1 {
		add("CYBEREASON_MAX_PAGES: must be positive, got %d", c.MaxPages)
	}
	if c.RequestTimeout <= 0 {
		add("CYBEREASON_REQUEST_TIMEOUT: must be positive, got %s", c.RequestTimeout)
	}
	return problems
}

// validateTOTPSecret checks that the TOTP secret, when set, is base32 as
// authenticator apps show it: spaces, lower case and padding are tolerated.
// The secret itself never appears in a message.
func (c *Cybereason) validateTOTPSecret() []string {
	secret, name := c.TOTPSecret, "CYBEREASON_TOTP_SECRET"
	switch {
	case c.TOTPSecret.IsSet() && c.TOTPSecretFile != "":
		return []string{"CYBEREASON_TOTP_SECRET and CYBEREASON_TOTP_SECRET_FILE: both set; set only one"}
	case c.TOTPSecretFile != "":
		secret, name = Secret{file: c.TOTPSecretFile}, "CYBEREASON_TOTP_SECRET_FILE"
	case !c.TOTPSecret.IsSet():
		return nil
	}

	value, err := secret.Value()
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	normalized := strings.TrimRight(strings.ToUpper(strings.ReplaceAll(value, " ", "")), "=")
	if _, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(normalized); err != nil || normalized == "" {
		return []string{name + ": the secret is not base32 (letters A-Z and digits 2-7); copy it again from the account's two-factor setup"}
	}
	return nil
}

// checkPEMFile checks that path holds at least one PEM certificate.
func checkPEMFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Errorf("%s contains no PEM certificate", path)
	}
	return nil
}

// validateURL checks CYBEREASON_URL. A URL with a user or password is
// rejected and never echoed, because it would put the credential in logs.
func (c *Cybereason) validateURL() []string {
	if c.URL == "" {
		return []string{"CYBEREASON_URL: missing; set the console base URL, e.g. https://acme.cybereason.net"}
	}

	parsed, err := url.Parse(c.URL)
	switch {
	case err == nil && parsed.User != nil:
		return []string{"CYBEREASON_URL: must not contain a user or password; set CYBEREASON_USERNAME and CYBEREASON_PASSWORD_FILE instead"}
	case err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "":
		return []string{fmt.Sprintf("CYBEREASON_URL: invalid value %q; expected an absolute http or https URL", c.URL)}
	case parsed.RawQuery != "" || parsed.Fragment != "" || strings.HasSuffix(c.URL, "?") || strings.HasSuffix(c.URL, "#"):
		return []string{fmt.Sprintf("CYBEREASON_URL: invalid value %q; expected the console base URL without a query or fragment", c.URL)}
	case c.Tenant == "" && strings.Contains(parsed.Hostname(), ":"):
		return []string{fmt.Sprintf("CYBEREASON_TENANT: missing; the console host %s is an IPv6 address, which cannot be a tenant id, so set one", parsed.Hostname())}
	}
	return nil
}

func (c *Config) validateStages() []string {
	if len(c.Stages) == 0 {
		return []string{"STAGES: must name at least one of source, enrich, dedupe"}
	}

	var problems []string
	for _, stage := range c.Stages {
		if !slices.Contains([]string{StageSource, StageEnrich, StageDedupe}, stage) {
			problems = append(problems, fmt.Sprintf("STAGES: unknown stage %q; expected source, enrich or dedupe", stage))
		}
	}
	return problems
}

// Runs reports whether the process runs the named stage.
func (c *Config) Runs(stage string) bool { return slices.Contains(c.Stages, stage) }

func (t Topics) byVariable() map[string]string {
	return map[string]string{
		"KAFKA_TOPIC_RAW_SENSORS":          t.RawSensors,
		"KAFKA_TOPIC_RAW_MALOPS":           t.RawMalops,
		"KAFKA_TOPIC_RAW_MALWARE":          t.RawMalware,
		"KAFKA_TOPIC_RAW_POLICIES":         t.RawPolicies,
		"KAFKA_TOPIC_NORMALIZED_ASSETS":    t.NormalizedAssets,
		"KAFKA_TOPIC_NORMALIZED_FINDINGS":  t.NormalizedFindings,
		"KAFKA_TOPIC_ASSETS":               t.Assets,
		"KAFKA_TOPIC_FINDINGS":             t.Findings,
		"KAFKA_TOPIC_ASSET_SECURITY_STATE": t.AssetSecurityState,
		"KAFKA_TOPIC_STATE":                t.State,
	}
}
