// Package cybereason is a client for the REST API of a Cybereason EDR console. It uses the API
// the way existing integrations do. A form login yields a JSESSIONID session cookie, the sensor
// inventory comes page by page from POST /rest/sensors/query, and MalOps come from the detection
// inbox, POST /rest/detection/inbox.
//
// The console never responds 401. It reports a missing or expired session with a redirect to
// /login.html, or, behind a proxy that follows redirects, with a 200 HTML login page. The client
// follows no redirects, treats both responses as "not logged in", logs in again once and repeats the
// call once. HTML is never passed to the caller.
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
	"time"
)

// Defaults and limits of Config.
const (
	DefaultTimeout          = 60 * time.Second
	DefaultPageSize         = 1000
	MaxPageSize             = 1000 // the console rejects a sensors query with a larger limit
	DefaultMaxPages         = 10000
	DefaultMaxResponseBytes = 64 << 20
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
	// HTTPClient is copied, with redirects disabled and its cookie jar removed, because the client
	// keeps the session cookies itself. Default: a client with a clone of http.DefaultTransport.
	HTTPClient *http.Client
	// Timeout bounds each HTTP request, including reading its response. Default 60s.
	Timeout time.Duration
	// PageSize is the number of sensors per page, 1 to 1000. Default 1000.
	PageSize int
	// MaxPages is the number of sensors pages after which QuerySensors gives up while the console
	// still reports more results. Default 10000.
	MaxPages int
	// MaxResponseBytes bounds the decompressed size of one response body. Default 64 MiB.
	MaxResponseBytes int64
}

// Client calls one Cybereason console. It is safe for concurrent use. It sends one request at a
// time, so it never runs two heavy queries (sensor pages, inbox windows) on the console at once.
type Client struct {
	baseURL  string
	username string
	password func() (string, error)
	http     *http.Client
	timeout  time.Duration
	pageSize int
	maxPages int
	maxBody  int64
	logger   *slog.Logger

	requestSlot chan struct{} // held while a request is in flight
	loginSlot   chan struct{} // held while a login is in flight

	mu      sync.Mutex
	session session
}

// session is the state of the last login.
type session struct {
	generation uint64 // increases with each successful login
	active     bool
	cookies    []*http.Cookie // set by the login response, sent with every call
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

	var httpClient http.Client
	if cfg.HTTPClient != nil {
		httpClient = *cfg.HTTPClient
	} else {
		httpClient.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	httpClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	httpClient.Jar = nil

	return &Client{
		baseURL:     strings.TrimRight(cfg.BaseURL, "/"),
		username:    cfg.Username,
		password:    cfg.Password,
		http:        &httpClient,
		timeout:     cfg.Timeout,
		pageSize:    cfg.PageSize,
		maxPages:    cfg.MaxPages,
		maxBody:     cfg.MaxResponseBytes,
		logger:      logger.With("console", cfg.BaseURL),
		requestSlot: make(chan struct{}, 1),
		loginSlot:   make(chan struct{}, 1),
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
	if cfg.MaxResponseBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxResponseBytes %d is negative; use 0 for the default %d", cfg.MaxResponseBytes, DefaultMaxResponseBytes))
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
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return cfg
}

// CloseIdleConnections closes the idle connections of the HTTP transport. Call it when the client
// is no longer used.
func (c *Client) CloseIdleConnections() {
	c.http.CloseIdleConnections()
}

// acquire takes the one-element semaphore slot, or returns ctx's error.
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
