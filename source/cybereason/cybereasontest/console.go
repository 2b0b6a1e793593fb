package cybereasontest

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultUsername        = "api-reader@example.com"
	DefaultPassword        = "fake-console-password"
	DefaultSessionLifetime = 8 * time.Hour // the lifetime of a real console's session cookie
)

// Console paths.
const (
	loginPath    = "/login.html"
	logoutPath   = "/logout"
	sensorsPath  = "/rest/sensors/query"
	inboxPath    = "/rest/detection/inbox"
	restPrefix   = "/rest/"
	cookieName   = "JSESSIONID"
	successPath  = "/#/current?"
	loginFailure = "/login.html?error"
)

// Options configures a Console.
type Options struct {
	// Username and Password are the only credentials the console accepts. Empty values select
	// DefaultUsername and DefaultPassword.
	Username, Password string
	// PageDelay is added before each sensors page response and each inbox response, to simulate
	// the console's own response time.
	PageDelay time.Duration
	// SessionLifetime is how long a session stays valid after login. Default 8h.
	SessionLifetime time.Duration
	// Logger receives one record per login and Debug records per request. Nil discards them.
	Logger *slog.Logger
	// DisableV2 makes the console respond with 400 to POST /rest/mmng/v2/malops, as consoles without
	// the MalOp management API do. Console.DropV2 changes it later.
	DisableV2 bool
	// BeforeSensorsQuery, when set, is called with the limit and offset of each valid sensors
	// query before the console reads the tenant's sensors for it, so that a test can change the
	// fleet between two page requests at a chosen point, as a console does while its sensors
	// register and leave.
	BeforeSensorsQuery func(limit, offset int)
}

// Console is an http.Handler that behaves like a Cybereason console serving a Tenant. It is safe
// for concurrent use, including its fault injection methods.
type Console struct {
	tenant   *Tenant
	username string
	password string
	delay    time.Duration
	lifetime time.Duration // guarded by mu, because SetSessionLifetime changes it
	logger   *slog.Logger
	// beforeSensorsQuery is Options.BeforeSensorsQuery.
	beforeSensorsQuery func(limit, offset int)

	mu       sync.Mutex
	sessions map[string]time.Time // JSESSIONID value to expiry time
	faults   faults
	stats    Stats
	// twoFactor is the state of two-factor logins, set by RequireTOTP.
	twoFactor twoFactor
	feeds     feedState

	cache sensorsCache
}

// NewHandler returns a console that serves t.
func NewHandler(t *Tenant, opts Options) *Console {
	c := &Console{
		tenant:   t,
		username: opts.Username,
		password: opts.Password,
		delay:    opts.PageDelay,
		lifetime: opts.SessionLifetime,
		logger:   opts.Logger,
		sessions: make(map[string]time.Time),
		stats:    newStats(),

		beforeSensorsQuery: opts.BeforeSensorsQuery,
	}
	if c.username == "" {
		c.username = DefaultUsername
	}
	if c.password == "" {
		c.password = DefaultPassword
	}
	if c.lifetime <= 0 {
		c.lifetime = DefaultSessionLifetime
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if opts.DisableV2 {
		c.feeds.v2Status = http.StatusBadRequest
	}
	return c
}

// ServeHTTP routes a request: the login form and page, logout, the application page and the
// /rest endpoints.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.countRequest(r)
	c.logger.Debug("fake Cybereason console request", "method", r.Method, "path", r.URL.Path)
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !c.slowDown(w, r) {
		return
	}

	switch {
	case r.URL.Path == loginPath:
		c.serveLogin(w, r)
	case r.URL.Path == logoutPath:
		c.serveLogout(w, r)
	case r.URL.Path == passwordChangePath:
		writeBody(w, r, http.StatusOK, htmlType, []byte(passwordChangePage))
	case strings.HasPrefix(r.URL.Path, restPrefix):
		c.serveRESTWithFaults(w, r)
	case r.URL.Path == twoFactorPath && r.Method == http.MethodPost:
		c.serveTwoFactor(w, r)
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		writeBody(w, r, http.StatusOK, htmlType, []byte(appPage))
	default:
		writeBody(w, r, http.StatusNotFound, htmlType, []byte(notFoundPage))
	}
}

func (c *Console) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeBody(w, r, http.StatusOK, htmlType, []byte(loginPage))
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeJSONError(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, r, http.StatusBadRequest, "invalid login form")
		return
	}
	username := r.PostForm.Get("username")
	if c.takeFault(&c.faults.loginPages) {
		c.logger.Info("fake Cybereason console returned the login page for a login (fault injection)", "user", username)
		writeBody(w, r, http.StatusOK, htmlType, []byte(loginPage))
		return
	}

	if !c.credentialsMatch(username, r.PostForm.Get("password")) {
		c.mu.Lock()
		c.stats.RejectedLogins++
		c.mu.Unlock()
		c.logger.Info("fake Cybereason console rejected a login", "user", username)
		c.setAnonymousCookie(w, r)
		redirect(w, loginFailure)
		return
	}

	if c.redirectToPasswordChange(w, r, username) || c.promptForTOTP(w, r, username) {
		return
	}
	c.startSession(w, r, username)
}

// startSession completes a login: it sets the cookie of a new session and redirects to the
// application.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, username string) {
	id := c.newSession()
	c.logger.Info("fake Cybereason console accepted a login", "user", username)
	c.setSessionCookie(w, r, id, c.currentLifetime())
	http.SetCookie(w, &http.Cookie{Name: "rememberMe", Value: "deleteMe", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0)})
	redirect(w, successPath)
}

func (c *Console) credentialsMatch(username, password string) bool {
	userOK := subtle.ConstantTimeCompare([]byte(username), []byte(c.username)) == 1
	passwordOK := subtle.ConstantTimeCompare([]byte(password), []byte(c.password)) == 1
	return userOK && passwordOK
}

func (c *Console) serveLogout(w http.ResponseWriter, r *http.Request) {
	if cookie, err := r.Cookie(cookieName); err == nil {
		c.mu.Lock()
		if _, ok := c.sessions[cookie.Value]; ok {
			delete(c.sessions, cookie.Value)
			c.stats.Logouts++
		}
		c.mu.Unlock()
	}
	redirect(w, loginPath)
}

// serveREST handles /rest requests. Injected faults come first, then the redirect to the login
// page for requests without a valid session, then the endpoints.
func (c *Console) serveREST(w http.ResponseWriter, r *http.Request) {
	if c.takeFault(&c.faults.htmlResponses) {
		c.mu.Lock()
		c.stats.HTMLResponses++
		c.mu.Unlock()
		writeBody(w, r, http.StatusOK, htmlType, []byte(loginPage))
		return
	}
	if status, ok := c.takeFailure(); ok {
		writeFailure(w, r, status)
		return
	}
	if !c.validSession(r) {
		c.mu.Lock()
		c.stats.LoginRedirects++
		c.mu.Unlock()
		c.setAnonymousCookie(w, r)
		redirect(w, loginPath)
		return
	}

	var serve func(http.ResponseWriter, *http.Request)
	method := http.MethodPost
	switch r.URL.Path {
	case sensorsPath:
		serve = c.serveSensorsQuery
	case inboxPath:
		serve = c.serveInbox
	default:
		if serve, method = c.feedHandler(r.URL.Path); serve == nil {
			writeJSONError(w, r, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
			return
		}
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeJSONError(w, r, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	serve(w, r)
}

func (c *Console) validSession(r *http.Request) bool {
	cookie, err := r.Cookie(cookieName)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()

	expiry, ok := c.sessions[cookie.Value]
	if !ok {
		return false
	}
	if time.Now().After(expiry) {
		delete(c.sessions, cookie.Value)
		return false
	}
	return true
}

func (c *Console) newSession() string {
	id := newSessionID()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions[id] = time.Now().Add(c.lifetime)
	c.stats.Logins++
	return id
}

// setAnonymousCookie sets a new JSESSIONID that belongs to no login, as the console does on
// failed logins and on redirects to the login page.
func (c *Console) setAnonymousCookie(w http.ResponseWriter, r *http.Request) {
	c.setSessionCookie(w, r, newSessionID(), c.currentLifetime())
}

// setSessionCookie sets the JSESSIONID cookie. It is Secure over TLS only, so that clients also
// send it back to a plain-HTTP console that is not on loopback.
func (c *Console) setSessionCookie(w http.ResponseWriter, r *http.Request, id string, lifetime time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    id,
		Path:     "/",
		MaxAge:   int(lifetime.Seconds()),
		Expires:  time.Now().Add(lifetime),
		Secure:   r.TLS != nil,
		HttpOnly: true,
	})
}

// newSessionID returns 32 upper-case hex digits, the form of the console's JSESSIONID.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// wait sleeps for the page delay, or until the request ends.
func (c *Console) wait(ctx context.Context) {
	if c.delay <= 0 {
		return
	}
	timer := time.NewTimer(c.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusFound)
}
