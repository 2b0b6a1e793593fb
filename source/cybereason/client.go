// Package cybereason is a client for the REST API of a Cybereason EDR console. It uses the API
// the way existing integrations do. A form login yields a JSESSIONID session cookie, the sensor
// inventory comes page by page from POST /rest/sensors/query, and MalOps come from the detection
// inbox, POST /rest/detection/inbox.
//
// The console never responds 401. It reports a missing or expired session with a redirect to
// /login.html, or, behind a proxy that follows redirects, with a 200 HTML login page. The client
// follows no redirects, treats both responses as "not logged in", logs in again once and repeats the
// call once. HTML is never passed to the caller. It also logs in again before the session cookie's
// 8 hours run out, completes a two-factor login with a TOTP secret, and retries 429 and 5xx
// responses with backoff.
package cybereason

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and limits of Config.
const (
	DefaultTimeout          = 60 * time.Second
	DefaultPageSize         = 1000
	MaxPageSize             = 1000 // the console rejects a sensors query with a larger limit
	DefaultMaxPages         = 10000
	DefaultPageConcurrency  = 3
	MaxPageConcurrency      = 16
	DefaultMaxResponseBytes = 64 << 20
	DefaultMaxRetries       = 4
	DefaultRetryBackoffMin  = 1 * time.Second
	DefaultRetryBackoffMax  = 60 * time.Second
	// DefaultSessionRenewAfter is 10 minutes short of the 8 hours for which the console's session
	// cookie is valid (Max-Age=28800).
	DefaultSessionRenewAfter = 7*time.Hour + 50*time.Minute
)

// Config configures a Client. Zero values of the optional fields select their defaults.
type Config struct {
	// BaseURL is the console URL, e.g. "https://acme.cybereason.net:8443". Required, https or http.
	// A path is kept as a prefix of every endpoint.
	BaseURL string
	// Username is the console user, normally an e-mail address. Required.
	Username string
	// Password returns the password. Required. It is called at each login, so a secret mounted
	// from a file can rotate.
	Password func() (string, error)
	// TOTPSecret returns the base32 TOTP secret of a two-factor account. Optional: without it, a
	// two-factor login fails with ErrTOTPRequired. It is called at each two-factor login.
	TOTPSecret func() (string, error)
	// CAFile is a PEM file of CA certificates that the client trusts in addition to the system
	// roots, for on-premises consoles with a private CA. Optional.
	CAFile string
	// HTTPClient is copied, with redirects disabled and its cookie jar removed, because the client
	// keeps the session cookies itself. A *http.Transport is cloned and given TLS 1.2 as minimum
	// version and the CAFile roots. Default: a clone of http.DefaultTransport, which takes its
	// proxy from HTTPS_PROXY and NO_PROXY (http.ProxyFromEnvironment).
	HTTPClient *http.Client
	// Timeout bounds each HTTP request, including reading its response. Default 60s.
	Timeout time.Duration
	// PageSize is the number of sensors or malware alerts per page, 1 to 1000. Default 1000.
	PageSize int
	// MaxPages is the number of pages after which QuerySensors, QueryMalware and MalopsV2 give up
	// while the console still reports more results. Default 10000.
	MaxPages int
	// PageConcurrency is the number of sensor pages that QuerySensors requests at a time, 1 to
	// MaxPageConcurrency, and also the number of /rest requests the client sends at a time.
	// Pages are still handed to the caller one at a time, in order, and at most PageConcurrency
	// pages are held in memory. 1 requests each page after the one before was handled. Default 3.
	PageConcurrency int
	// MalopsV2 configures MalopsV2.
	MalopsV2 MalopV2Options
	// MaxResponseBytes bounds the decompressed size of one response body. Default 64 MiB.
	MaxResponseBytes int64
	// MaxRetries is the number of times a call is repeated after a 429 or 5xx response. Default 4;
	// a negative value disables the retries.
	MaxRetries int
	// RetryBackoffMin and RetryBackoffMax bound the wait before a retry, which doubles from the
	// minimum with each retry, with random jitter. A Retry-After header raises the wait, and one
	// longer than RetryBackoffMax ends the retries. Defaults 1s and 60s.
	RetryBackoffMin, RetryBackoffMax time.Duration
	// SessionRenewAfter is the session age after which the client logs in again before its next
	// call. Default 7h50m, because the console's session cookie is valid for 8 hours.
	SessionRenewAfter time.Duration
	// ObserveLogin, when set, is called after every login with its result:
	// LoginSucceeded, LoginRejected, LoginFailed or LoginNotSent. Optional.
	ObserveLogin func(result string)
}

// Login results passed to Config.ObserveLogin.
const (
	// LoginSucceeded is a login the console accepted.
	LoginSucceeded = "success"
	// LoginRejected is a login whose credentials or TOTP code the console rejected.
	LoginRejected = "rejected"
	// LoginFailed is a login that failed for another reason, such as a timeout.
	LoginFailed = "error"
	// LoginNotSent is a login not sent because the console already rejected
	// the same credentials.
	LoginNotSent = "not_sent"
)

// Client calls one Cybereason console. It is safe for concurrent use. It sends at most
// PageConcurrency /rest requests at a time, so it never runs more heavy queries (sensor pages, inbox
// windows, MalOp details) than that on the console at once. Concurrent calls queue for a request
// slot. A call waiting to retry after a 429 or 5xx response releases its slot during the wait, so
// other calls are not held behind it.
type Client struct {
	baseURL         string
	username        string
	password        func() (string, error)
	totpSecret      func() (string, error)
	http            *http.Client
	timeout         time.Duration
	pageSize        int
	maxPages        int
	pageConcurrency int
	maxBody         int64
	malopsV2        MalopV2Options
	logger          *slog.Logger
	retry           retryPolicy
	renewAfter      time.Duration
	onLogin         func(result string)

	// now and sleep are time.Now and sleepContext, replaced by tests.
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	// sensorsBodySize is the size of the last sensors response, which sizes the next one's buffer.
	sensorsBodySize atomic.Int64

	requestSlot chan struct{} // one element held per /rest request in flight
	loginSlot   chan struct{} // held while a login is in flight

	// rejected remembers the last credentials the console rejected; loginSlot guards it.
	rejected *rejectedLogin

	mu      sync.Mutex
	session session
}

// session is the state of the last login.
type session struct {
	generation uint64 // increases with each successful login
	active     bool
	cookies    []*http.Cookie // set by the login response, sent with every call
	started    time.Time      // time of the login
}

// NewClient validates cfg, applies its defaults and returns a client that is not logged in yet.
// The first call logs in when Login was not called before. A nil logger discards the logs.
func NewClient(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	httpClient, err := newHTTPClient(cfg.HTTPClient, cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("invalid Cybereason client config: %w", err)
	}

	return &Client{
		baseURL:         strings.TrimRight(cfg.BaseURL, "/"),
		username:        cfg.Username,
		password:        cfg.Password,
		totpSecret:      cfg.TOTPSecret,
		http:            httpClient,
		timeout:         cfg.Timeout,
		pageSize:        cfg.PageSize,
		maxPages:        cfg.MaxPages,
		pageConcurrency: cfg.PageConcurrency,
		maxBody:         cfg.MaxResponseBytes,
		malopsV2:        cfg.MalopsV2.withDefaults(),
		logger:          logger.With("console", cfg.BaseURL),
		retry:           retryPolicy{maxRetries: max(cfg.MaxRetries, 0), minWait: cfg.RetryBackoffMin, maxWait: cfg.RetryBackoffMax},
		renewAfter:      cfg.SessionRenewAfter,
		onLogin:         cfg.ObserveLogin,
		now:             time.Now,
		sleep:           sleepContext,
		requestSlot:     make(chan struct{}, cfg.PageConcurrency),
		loginSlot:       make(chan struct{}, 1),
	}, nil
}

// validate names every invalid field of cfg.
func (cfg Config) validate() error {
	var errs []error
	if err := validateBaseURL(cfg.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if cfg.Username == "" {
		errs = append(errs, errors.New("Username is missing"))
	}
	if cfg.Password == nil {
		errs = append(errs, errors.New("Password is missing"))
	}

	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Timeout %s is negative; use 0 for the default %s", cfg.Timeout, DefaultTimeout))
	}
	if cfg.PageSize < 0 || cfg.PageSize > MaxPageSize {
		errs = append(errs, fmt.Errorf("PageSize %d is out of range; use 1 to %d, or 0 for %d", cfg.PageSize, MaxPageSize, DefaultPageSize))
	}
	if cfg.MaxPages < 0 {
		errs = append(errs, fmt.Errorf("MaxPages %d is negative; use 0 for the default %d", cfg.MaxPages, DefaultMaxPages))
	}
	if cfg.PageConcurrency < 0 || cfg.PageConcurrency > MaxPageConcurrency {
		errs = append(errs, fmt.Errorf("PageConcurrency %d is out of range; use 1 to %d, or 0 for %d", cfg.PageConcurrency, MaxPageConcurrency, DefaultPageConcurrency))
	}
	if cfg.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxResponseBytes %d is negative; use 0 for the default %d", cfg.MaxResponseBytes, DefaultMaxResponseBytes))
	}

	if err := cfg.MalopsV2.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.validateRetries()...)
	if cfg.SessionRenewAfter < 0 {
		errs = append(errs, fmt.Errorf("SessionRenewAfter %s is negative; use 0 for the default %s", cfg.SessionRenewAfter, DefaultSessionRenewAfter))
	}

	if len(errs) > 0 {
		return fmt.Errorf("invalid Cybereason client config: %w", errors.Join(errs...))
	}
	return nil
}

func validateBaseURL(raw string) error {
	if raw == "" {
		return errors.New("BaseURL is missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("BaseURL is not a valid URL: %w", err)
	}
	switch {
	case u.User != nil:
		// The URL is not repeated here, because it contains a secret.
		return errors.New("BaseURL must not contain credentials; set Username and Password instead")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("BaseURL %q must start with https:// or http://", raw)
	case u.Host == "":
		return fmt.Errorf("BaseURL %q has no host", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("BaseURL %q must not have a query or a fragment", raw)
	}
	return nil
}

func (cfg Config) withDefaults() Config {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxPages == 0 {
		cfg.MaxPages = DefaultMaxPages
	}
	if cfg.PageConcurrency == 0 {
		cfg.PageConcurrency = DefaultPageConcurrency
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.RetryBackoffMin == 0 {
		cfg.RetryBackoffMin = DefaultRetryBackoffMin
	}
	if cfg.RetryBackoffMax == 0 {
		cfg.RetryBackoffMax = max(DefaultRetryBackoffMax, cfg.RetryBackoffMin)
	}
	if cfg.SessionRenewAfter == 0 {
		cfg.SessionRenewAfter = DefaultSessionRenewAfter
	}
	return cfg
}

// CloseIdleConnections closes the idle connections of the HTTP transport. Call it when the client
// is no longer used.
func (c *Client) CloseIdleConnections() {
	c.http.CloseIdleConnections()
}

// acquire takes one element of the semaphore slot, or returns ctx's error.
func acquire(ctx context.Context, slot chan struct{}) error {
	select {
	case slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(slot chan struct{}) {
	<-slot
}
