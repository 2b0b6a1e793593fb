package cybereason

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason/internal/totp"
)

// twoFactorPath is the path that receives the TOTP code of a two-factor login, the site root.
const twoFactorPath = "/"

// errTOTPCodeRejected explains a rejected TOTP code. The usual causes are a secret that is not
// the account's current key and a host clock that is off by more than a time step.
var errTOTPCodeRejected = errors.New("the console rejected the TOTP code; check that the TOTP secret " +
	"is the account's current key and that this host's clock is correct")

// completeTwoFactor sends the TOTP code for the session that the login form started, and returns
// the cookies of the completed session. Neither the secret nor the code is logged or put in an
// error.
func (c *Client) completeTwoFactor(ctx context.Context, cookies []*http.Cookie) ([]*http.Cookie, error) {
	if c.totpSecret == nil {
		return nil, fmt.Errorf("%w (user %q)", ErrTOTPRequired, c.username)
	}
	secret, err := c.totpSecret()
	if err != nil {
		return nil, fmt.Errorf("read the TOTP secret of user %q: %w", c.username, err)
	}
	key, err := totp.DecodeSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("TOTP secret of user %q: %w", c.username, err)
	}
	// The console checks the code against its own clock, so the real time is used, never c.now.
	form := url.Values{"totpCode": {totp.Code(key, time.Now())}, "submit": {"Login"}}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+twoFactorPath, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Encoding", "gzip")
	addCookies(req, cookies)

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s with the TOTP code of user %q: %w", twoFactorPath, c.username, describeTransportError(ctx, err, c.timeout))
	}
	defer discardAndClose(resp.Body)

	return c.checkTwoFactorResponse(resp, cookies)
}

// checkTwoFactorResponse accepts a redirect to the console and returns the session cookies,
// updated by those the response sets. A redirect to an error URL or the login page, or the prompt
// again, means the console rejected the code.
func (c *Client) checkTwoFactorResponse(resp *http.Response, cookies []*http.Cookie) ([]*http.Cookie, error) {
	if isRedirect(resp.StatusCode) {
		location := resp.Header.Get("Location")
		if err := c.checkLoginRedirect(twoFactorPath, resp.StatusCode, location); err != nil {
			if errors.Is(err, ErrPasswordExpired) || errors.Is(err, ErrLoginRedirectedAway) {
				return nil, err
			}
			return nil, fmt.Errorf("%w for user %q: %w (redirected to %s)", ErrCredentialsRejected, c.username, errTOTPCodeRejected, redactSessionID(location))
		}
		return sessionCookies(resp, twoFactorPath, "a redirect to "+location, cookies)
	}

	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %w", twoFactorPath, newStatusError(http.MethodPost, twoFactorPath, resp, c.maxBody))
	}
	page, err := c.readLoginPage(resp, twoFactorPath)
	if err != nil {
		return nil, err
	}
	switch {
	case isPasswordChangePage(page):
		return nil, fmt.Errorf("%w (user %q, POST %s returned a password change page)", ErrPasswordExpired, c.username, twoFactorPath)
	case isTwoFactorPrompt(page) || isLoginPage(page):
		return nil, fmt.Errorf("%w for user %q: %w (POST %s returned the prompt again)", ErrCredentialsRejected, c.username, errTOTPCodeRejected, twoFactorPath)
	}
	return nil, fmt.Errorf("POST %s with the TOTP code returned 200 %s without a redirect; expected a 302 to the console",
		twoFactorPath, resp.Header.Get("Content-Type"))
}
