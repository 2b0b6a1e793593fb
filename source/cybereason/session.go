package cybereason

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	loginPath  = "/login.html"
	logoutPath = "/logout"

	sessionCookie = "JSESSIONID"

	// loginPageLimit bounds how much of an HTML response to a login is read to recognise it.
	loginPageLimit = 256 << 10
)

// ErrCredentialsRejected is the errors.Is target of a login that the console rejected: a wrong
// user name or password, a rejected TOTP code, or an account locked by the console.
// ErrTOTPRequired and ErrPasswordExpired match it too, because repeating such a login cannot
// succeed either.
var ErrCredentialsRejected = errors.New("console rejected the credentials")

// Login failures that need a change of the account or of the configuration.
var (
	// ErrLoginRedirectedAway is a login that got a permanent redirect, or a redirect to
	// another origin than the console URL, in response. It does not match ErrCredentialsRejected, because
	// the console URL is wrong, not the credentials.
	ErrLoginRedirectedAway = errors.New("login redirected away from the console URL")
	// ErrTOTPRequired is a two-factor login without a configured TOTP secret.
	ErrTOTPRequired error = &loginRejection{"the account requires two-factor authentication: set " +
		"CYBEREASON_TOTP_SECRET (or CYBEREASON_TOTP_SECRET_FILE) to its TOTP secret, or use an API user " +
		"that is exempt from two-factor authentication"}
	// ErrPasswordExpired is a login that the console redirected to its password change page.
	ErrPasswordExpired error = &loginRejection{"the password has expired and the console requires a password change: " +
		"change it in the console, then update the configured password"}
)

// loginRejection is a login failure that also matches ErrCredentialsRejected.
type loginRejection struct{ text string }

func (e *loginRejection) Error() string { return e.text }

// Is makes errors.Is(err, ErrCredentialsRejected) true, so callers that stop on rejected
// credentials stop on this failure too.
func (e *loginRejection) Is(target error) bool { return target == ErrCredentialsRejected }

// errNotLoggedIn marks a response that means the session is missing or expired: a redirect to the
// login page, or an HTML page where JSON was expected.
var errNotLoggedIn = errors.New("not logged in")

// Login logs in with the configured credentials and keeps the session cookies for later calls.
// It returns an error wrapping ErrCredentialsRejected when the console rejected the credentials.
// Success is judged by the redirect target only: the console sets a JSESSIONID cookie on failed
// logins too.
func (c *Client) Login(ctx context.Context) error {
	if err := acquire(ctx, c.loginSlot); err != nil {
		return fmt.Errorf("log in to Cybereason console as %q: %w", c.username, err)
	}
	defer release(c.loginSlot)

	return c.login(ctx)
}

// Logout ends the console session with GET /logout. The next call logs in again. Logout without a
// session, including a second Logout, does nothing and returns nil.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	current := c.session
	c.session.active = false
	c.session.cookies = nil
	c.mu.Unlock()

	if !current.active {
		return nil
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+logoutPath, nil)
	if err != nil {
		return fmt.Errorf("log out of Cybereason console: %w", err)
	}
	addCookies(req, current.cookies)

	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("log out of Cybereason console: %w", describeTransportError(ctx, err, c.timeout))
	}
	defer discardAndClose(resp.Body)

	if resp.StatusCode >= 400 {
		return fmt.Errorf("log out of Cybereason console: GET %s returned %s", logoutPath, resp.Status)
	}
	c.logger.Info("logged out of Cybereason console", "user", c.username)
	return nil
}

// ensureSession logs in unless a session is active and younger than SessionRenewAfter. Renewing
// early keeps a call from meeting the end of the console's 8-hour session cookie.
func (c *Client) ensureSession(ctx context.Context) error {
	c.mu.Lock()
	current := c.session
	c.mu.Unlock()

	if !current.active {
		return c.relogin(ctx, current.generation)
	}
	age := c.now().Sub(current.started)
	if age < c.renewAfter {
		return nil
	}
	c.logger.Info("renewing the Cybereason session before it expires", "user", c.username, "age", age.Round(time.Second))
	return c.relogin(ctx, current.generation)
}

// relogin logs in again unless another call already did so after the session of generation stale
// was rejected. Concurrent calls that saw the same expired session thus cause one login.
func (c *Client) relogin(ctx context.Context, stale uint64) error {
	if err := acquire(ctx, c.loginSlot); err != nil {
		return fmt.Errorf("log in to Cybereason console as %q: %w", c.username, err)
	}
	defer release(c.loginSlot)

	c.mu.Lock()
	current := c.session
	c.mu.Unlock()
	if current.active && current.generation != stale {
		return nil
	}
	return c.login(ctx)
}

// rejectedLogin is a login the console rejected: a salted hash of the credentials it was sent
// with, and the rejection.
type rejectedLogin struct {
	salt        [16]byte
	credentials [sha256.Size]byte
	err         error
}

// credentialsHash returns the salted hash of the current password and TOTP secret, read from
// their sources as a login would read them.
func (c *Client) credentialsHash(salt [16]byte) ([sha256.Size]byte, error) {
	password, err := c.password()
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	secret := ""
	if c.totpSecret != nil {
		if secret, err = c.totpSecret(); err != nil {
			return [sha256.Size]byte{}, err
		}
	}
	hash := sha256.New()
	hash.Write(salt[:])
	fmt.Fprintf(hash, "%d:%s%d:%s", len(password), password, len(secret), secret)
	return [sha256.Size]byte(hash.Sum(nil)), nil
}

// login posts the credentials form, completes a two-factor login when the console requests one,
// and stores the session. The caller holds loginSlot.
//
// Credentials the console rejected are not sent again until the password or TOTP secret changes:
// every poll retrying them would only move the account towards a lockout. A rotated secret file
// is picked up at the next login.
func (c *Client) login(ctx context.Context) error {
	if c.rejected != nil {
		if hash, err := c.credentialsHash(c.rejected.salt); err == nil && hash == c.rejected.credentials {
			c.observeLogin(LoginNotSent)
			return fmt.Errorf("log in to %s: not sent again until the password or TOTP secret changes: %w", c.baseURL, c.rejected.err)
		}
	}

	cookies, err := c.authenticate(ctx)
	if err != nil {
		c.logger.Warn("Cybereason login failed", "user", c.username, "error", err)
		if errors.Is(err, ErrCredentialsRejected) || errors.Is(err, errTOTPCodeRejected) {
			c.observeLogin(LoginRejected)
		} else {
			c.observeLogin(LoginFailed)
		}
		c.rememberRejection(err)
		return fmt.Errorf("log in to %s: %w", c.baseURL, err)
	}
	c.rejected = nil

	c.mu.Lock()
	c.session = session{generation: c.session.generation + 1, active: true, cookies: cookies, started: c.now()}
	c.mu.Unlock()

	c.logger.Info("logged in to Cybereason console", "user", c.username)
	c.observeLogin(LoginSucceeded)
	return nil
}

func (c *Client) observeLogin(result string) {
	if c.onLogin != nil {
		c.onLogin(result)
	}
}

// rememberRejection keeps err when the console rejected the credentials themselves. A rejected
// TOTP code is not kept, because the next code may be accepted.
func (c *Client) rememberRejection(err error) {
	if !errors.Is(err, ErrCredentialsRejected) || errors.Is(err, ErrTOTPRequired) || errors.Is(err, errTOTPCodeRejected) {
		return
	}
	rejected := &rejectedLogin{err: err}
	if _, randErr := rand.Read(rejected.salt[:]); randErr != nil {
		return
	}
	hash, hashErr := c.credentialsHash(rejected.salt)
	if hashErr != nil {
		return
	}
	rejected.credentials = hash
	c.rejected = rejected
}

// authenticate runs the login steps and returns the cookies of the new session.
func (c *Client) authenticate(ctx context.Context) ([]*http.Cookie, error) {
	first, err := c.postLoginForm(ctx)
	if err != nil {
		return nil, err
	}
	if !first.twoFactor {
		return first.cookies, nil
	}
	return c.completeTwoFactor(ctx, first.cookies)
}

// loginStep is the outcome of an accepted login form: the session cookies, and whether the
// console requests a TOTP code before the session is valid.
type loginStep struct {
	cookies   []*http.Cookie
	twoFactor bool
}

// postLoginForm sends the login form and returns the cookies of an accepted login.
func (c *Client) postLoginForm(ctx context.Context) (loginStep, error) {
	password, err := c.password()
	if err != nil {
		return loginStep{}, fmt.Errorf("read the password of user %q: %w", c.username, err)
	}
	form := url.Values{"username": {c.username}, "password": {password}}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+loginPath, strings.NewReader(form.Encode()))
	if err != nil {
		return loginStep{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Encoding", "gzip")

	resp, err := c.http.Do(req)
	if err != nil {
		return loginStep{}, fmt.Errorf("POST %s as user %q: %w", loginPath, c.username, describeTransportError(ctx, err, c.timeout))
	}
	defer discardAndClose(resp.Body)

	return c.checkLoginResponse(resp)
}

// checkLoginResponse accepts a redirect away from the login page, or the 200 two-factor prompt,
// and returns the cookies the response sets. A redirect back to the login page or to an error URL,
// or a 200 login page, means the console rejected the credentials.
func (c *Client) checkLoginResponse(resp *http.Response) (loginStep, error) {
	if isRedirect(resp.StatusCode) {
		location := resp.Header.Get("Location")
		if err := c.checkLoginRedirect(loginPath, resp.StatusCode, location); err != nil {
			return loginStep{}, err
		}
		cookies, err := sessionCookies(resp, loginPath, "a redirect to "+location, nil)
		return loginStep{cookies: cookies}, err
	}

	if resp.StatusCode != http.StatusOK {
		return loginStep{}, fmt.Errorf("POST %s: %w", loginPath, newStatusError(http.MethodPost, loginPath, resp, c.maxBody))
	}
	page, err := c.readLoginPage(resp, loginPath)
	if err != nil {
		return loginStep{}, err
	}
	switch {
	case isPasswordChangePage(page):
		return loginStep{}, fmt.Errorf("%w (user %q, POST %s returned a password change page)", ErrPasswordExpired, c.username, loginPath)
	case isTwoFactorPrompt(page):
		// Checked before the login page, because the prompt may be part of the login application.
		cookies, err := sessionCookies(resp, loginPath, "the two-factor prompt", nil)
		return loginStep{cookies: cookies, twoFactor: true}, err
	case isLoginPage(page):
		return loginStep{}, fmt.Errorf("%w for user %q: POST %s returned the login page again", ErrCredentialsRejected, c.username, loginPath)
	}
	return loginStep{}, fmt.Errorf("POST %s returned 200 %s without a redirect, but a console responds to a login with a 302; "+
		"check that the console URL %s (CYBEREASON_URL in the connector) is the console's", loginPath, resp.Header.Get("Content-Type"), c.baseURL)
}

// readLoginPage reads the start of an HTML response to a login step.
func (c *Client) readLoginPage(resp *http.Response, endpoint string) (string, error) {
	body, err := readBounded(resp, min(c.maxBody, loginPageLimit))
	if err != nil && !errors.Is(err, errResponseTooLarge) {
		return "", fmt.Errorf("POST %s: read the response: %w", endpoint, err)
	}
	return string(body), nil
}

// checkLoginRedirect judges the redirect target of a login step. A permanent redirect or one to
// another origin than the console URL fails with ErrLoginRedirectedAway, because the console
// URL is wrong. A password reset page, the login page or an error URL fail as rejected
// credentials, and any other target is the console.
func (c *Client) checkLoginRedirect(endpoint string, status int, location string) error {
	if location == "" {
		return fmt.Errorf("POST %s returned a redirect without a Location header", endpoint)
	}
	if err := c.checkRedirectOrigin(endpoint, status, location); err != nil {
		return err
	}

	lower := strings.ToLower(location)
	switch {
	case strings.Contains(lower, "reset"):
		return fmt.Errorf("%w (user %q, redirected to %s)", ErrPasswordExpired, c.username, redactSessionID(location))
	case isLoginLocation(location) || strings.Contains(lower, "error"):
		return fmt.Errorf("%w for user %q (redirected to %s)", ErrCredentialsRejected, c.username, redactSessionID(location))
	}
	return nil
}

// checkRedirectOrigin fails a permanent redirect (301 or 308) and a redirect to another scheme,
// host or port than the console URL. The console responds to a login with a 302 on its own origin,
// so either one means that the console URL points at a proxy or at the wrong address.
func (c *Client) checkRedirectOrigin(endpoint string, status int, location string) error {
	base, err := url.Parse(c.baseURL)
	if err != nil {
		return fmt.Errorf("parse the console URL %q: %w", c.baseURL, err)
	}
	target, err := base.Parse(location)
	if err != nil {
		return fmt.Errorf("POST %s returned a redirect to an invalid Location %q: %w", endpoint, redactSessionID(location), err)
	}

	var problem string
	switch {
	case !sameOrigin(base, target):
		problem = "another origin than"
	case status == http.StatusMovedPermanently || status == http.StatusPermanentRedirect:
		problem = "a permanent redirect away from"
	default:
		return nil
	}
	return fmt.Errorf("%w: POST %s returned %d %s with Location %s, %s the console URL %s; "+
		"check the scheme, host and port of the console URL (CYBEREASON_URL in the connector)",
		ErrLoginRedirectedAway, endpoint, status, http.StatusText(status), redactSessionID(location), problem, c.baseURL)
}

// sameOrigin reports whether two absolute URLs have the same scheme, host and port, taking the
// default port of http and https into account.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		originPort(a) == originPort(b)
}

// originPort returns the port of u, or the default port of its scheme.
func originPort(u *url.URL) string {
	if port := u.Port(); port != "" {
		return port
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// isTwoFactorPrompt reports whether an HTML body is the console's prompt for a TOTP code.
func isTwoFactorPrompt(page string) bool {
	return strings.Contains(page, "Two factor authentication") || strings.Contains(page, "Authentication Code")
}

// isPasswordChangePage reports whether an HTML body is a form to replace an expired password.
func isPasswordChangePage(page string) bool {
	return strings.Contains(page, "newPassword") || strings.Contains(page, "reset.html")
}

// sessionCookies returns the cookies of earlier, replaced or deleted by those a login step sets.
// A cookie with an empty value or a negative Max-Age (such as rememberMe=deleteMe) deletes one.
// The result must contain a session cookie. target names the redirect target or page in the
// error.
func sessionCookies(resp *http.Response, endpoint, target string, earlier []*http.Cookie) ([]*http.Cookie, error) {
	cookies := slices.Clone(earlier)
	for _, cookie := range resp.Cookies() {
		cookies = slices.DeleteFunc(cookies, func(kept *http.Cookie) bool { return kept.Name == cookie.Name })
		if cookie.Value != "" && cookie.MaxAge >= 0 {
			cookies = append(cookies, &http.Cookie{Name: cookie.Name, Value: cookie.Value})
		}
	}

	if !slices.ContainsFunc(cookies, func(cookie *http.Cookie) bool { return cookie.Name == sessionCookie }) {
		return nil, fmt.Errorf("POST %s returned %s but set no %s cookie", endpoint, redactSessionID(target), sessionCookie)
	}
	return cookies, nil
}

// redactSessionID hides the session ids that a servlet console may append to the path of a
// redirect target as ";jsessionid=<id>" (URL rewriting), so that the target can be quoted in
// errors and logs.
func redactSessionID(location string) string {
	const parameter = ";jsessionid="
	start := strings.Index(strings.ToLower(location), parameter)
	if start < 0 {
		return location
	}
	valueStart := start + len(parameter)
	valueEnd := len(location)
	if n := strings.IndexAny(location[valueStart:], "?#;/"); n >= 0 {
		valueEnd = valueStart + n
	}
	return location[:valueStart] + "REDACTED" + redactSessionID(location[valueEnd:])
}

// isLoginLocation reports whether a redirect target is the console's login page.
func isLoginLocation(location string) bool {
	u, err := url.Parse(location)
	if err != nil {
		return strings.Contains(strings.ToLower(location), "login")
	}
	return strings.Contains(strings.ToLower(u.Path), "login")
}

// isLoginPage reports whether an HTML body is the console's login page.
func isLoginPage(body string) bool {
	return strings.Contains(body, "<app-login") || strings.Contains(body, "Cybereason | Login")
}

func isRedirect(status int) bool {
	return status >= 300 && status < 400
}

func addCookies(req *http.Request, cookies []*http.Cookie) {
	for _, cookie := range cookies {
		req.AddCookie(cookie)
	}
}

// discardAndClose reads a little of what is left of a body, so the connection can be reused,
// and closes it.
func discardAndClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	_ = body.Close()
}
