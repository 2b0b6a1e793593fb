package cybereason

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

const (
	loginPath  = "/login.html"
	logoutPath = "/logout"

	sessionCookie = "JSESSIONID"

	// loginPageLimit bounds how much of an HTML response to a login is read to recognise it.
	loginPageLimit = 256 << 10
)

// ErrCredentialsRejected is the errors.Is target of a login that the console rejected: a wrong
// user name or password, an expired password, or an account locked by the console.
var ErrCredentialsRejected = errors.New("console rejected the credentials")

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

// Logout ends the console session. The next call logs in again. Logout without a session does
// nothing.
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
		return fmt.Errorf("log out of Cybereason console: %w", err)
	}
	defer discardAndClose(resp.Body)

	if resp.StatusCode >= 400 {
		return fmt.Errorf("log out of Cybereason console: GET %s returned %s", logoutPath, resp.Status)
	}
	c.logger.Info("logged out of Cybereason console", "user", c.username)
	return nil
}

// ensureSession logs in unless a session is active.
func (c *Client) ensureSession(ctx context.Context) error {
	c.mu.Lock()
	current := c.session
	c.mu.Unlock()

	if current.active {
		return nil
	}
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

// login posts the credentials form and stores the session. The caller holds loginSlot.
func (c *Client) login(ctx context.Context) error {
	cookies, err := c.postLoginForm(ctx)
	if err != nil {
		c.logger.Warn("Cybereason login failed", "user", c.username, "error", err)
		return fmt.Errorf("log in to %s: %w", c.baseURL, err)
	}

	c.mu.Lock()
	c.session = session{generation: c.session.generation + 1, active: true, cookies: cookies}
	c.mu.Unlock()

	c.logger.Info("logged in to Cybereason console", "user", c.username)
	return nil
}

// postLoginForm sends the login form and returns the session cookies of a successful login.
func (c *Client) postLoginForm(ctx context.Context) ([]*http.Cookie, error) {
	password, err := c.password()
	if err != nil {
		return nil, fmt.Errorf("read the password of user %q: %w", c.username, err)
	}
	form := url.Values{"username": {c.username}, "password": {password}}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+loginPath, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Encoding", "gzip")

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s as user %q: %w", loginPath, c.username, describeTimeout(ctx, err, c.timeout))
	}
	defer discardAndClose(resp.Body)

	return c.checkLoginResponse(resp)
}

// checkLoginResponse accepts only a redirect away from the login page, and returns the cookies it
// sets. A redirect back to the login page or to an error URL, or a 200 login page, means the
// console rejected the credentials.
func (c *Client) checkLoginResponse(resp *http.Response) ([]*http.Cookie, error) {
	if isRedirect(resp.StatusCode) {
		location := resp.Header.Get("Location")
		if err := c.checkLoginRedirect(location); err != nil {
			return nil, err
		}
		return sessionCookies(resp, location)
	}

	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %w", loginPath, newStatusError(http.MethodPost, loginPath, resp, c.maxBody))
	}
	body, err := readBounded(resp, min(c.maxBody, loginPageLimit))
	if err != nil && !errors.Is(err, errResponseTooLarge) {
		return nil, fmt.Errorf("POST %s: read the response: %w", loginPath, err)
	}
	page := string(body)
	switch {
	case isLoginPage(page):
		return nil, fmt.Errorf("%w for user %q: POST %s returned the login page again", ErrCredentialsRejected, c.username, loginPath)
	case strings.Contains(page, "Two factor authentication") || strings.Contains(page, "Authentication Code"):
		return nil, fmt.Errorf("user %q has two-factor authentication enabled, which this client does not support; use an API user without it", c.username)
	}
	return nil, fmt.Errorf("POST %s returned 200 %s without a redirect; expected a 302 to the console (is BaseURL the console?)",
		loginPath, resp.Header.Get("Content-Type"))
}

func (c *Client) checkLoginRedirect(location string) error {
	switch {
	case location == "":
		return fmt.Errorf("POST %s returned a redirect without a Location header", loginPath)
	case strings.Contains(strings.ToLower(location), "reset"):
		return fmt.Errorf("%w for user %q: the password has expired and must be changed in the console (redirected to %s)",
			ErrCredentialsRejected, c.username, redactSessionID(location))
	case isLoginLocation(location) || strings.Contains(strings.ToLower(location), "error"):
		return fmt.Errorf("%w for user %q (redirected to %s)", ErrCredentialsRejected, c.username, redactSessionID(location))
	}
	return nil
}

// sessionCookies returns the cookies a successful login sets, without those it deletes
// (such as rememberMe=deleteMe with Max-Age=0).
func sessionCookies(resp *http.Response, location string) ([]*http.Cookie, error) {
	var cookies []*http.Cookie
	hasSession := false
	for _, cookie := range resp.Cookies() {
		if cookie.Value == "" || cookie.MaxAge < 0 {
			continue
		}
		cookies = append(cookies, &http.Cookie{Name: cookie.Name, Value: cookie.Value})
		hasSession = hasSession || cookie.Name == sessionCookie
	}
	if !hasSession {
		return nil, fmt.Errorf("POST %s redirected to %s but set no %s cookie", loginPath, redactSessionID(location), sessionCookie)
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
