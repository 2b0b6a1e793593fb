package cybereasontest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason/internal/totp"
)

const (
	twoFactorPath      = "/"
	passwordChangePath = "/reset.html"
	// twoFactorTimeout is how long a login waits for its TOTP code.
	twoFactorTimeout = 5 * time.Minute
)

// The two-factor prompt and the password change page. Clients recognise the prompt by the text
// "Two factor authentication" or "Authentication Code", and the password change page by its
// newPassword field.
const (
	twoFactorPage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Cybereason | Login</title></head>
<body>
<h2>Two factor authentication</h2>
<form method="post" action="/">
<label for="totpCode">Authentication Code</label>
<input type="text" id="totpCode" name="totpCode" autocomplete="one-time-code">
<input type="submit" name="submit" value="Login">
</form>
</body>
</html>
`
	passwordChangePage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Cybereason | Password reset</title></head>
<body>
<p>Your password has expired.</p>
<form method="post" action="/reset.html?originalurl=/current?">
<input type="password" name="oldPassword">
<input type="password" name="newPassword">
<input type="password" name="confirmNewPassword">
<input type="submit" name="submit" value="Login">
</form>
</body>
</html>
`
)

// twoFactor is the state of two-factor logins.
type twoFactor struct {
	key     []byte               // decoded TOTP secret; nil when logins need no code
	pending map[string]time.Time // JSESSIONID of a login waiting for its code, to its expiry
}

// RequireTOTP makes logins with the right credentials request a TOTP code of the base32 secret,
// as a two-factor account does. The console then accepts the code of the current 30-second step
// and of the step before. An empty secret turns two-factor logins off.
func (c *Console) RequireTOTP(secret string) error {
	var key []byte
	if secret != "" {
		var err error
		if key, err = totp.DecodeSecret(secret); err != nil {
			return fmt.Errorf("require TOTP: %w", err)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.twoFactor = twoFactor{key: key, pending: make(map[string]time.Time)}
	return nil
}

// TOTPCode returns the TOTP code of the base32 secret at time t, as an authenticator app shows
// it. Tests use it to complete a two-factor login by hand.
func TOTPCode(secret string, t time.Time) (string, error) {
	key, err := totp.DecodeSecret(secret)
	if err != nil {
		return "", err
	}
	return totp.Code(key, t), nil
}

// redirectToPasswordChange redirects an accepted login to the password change page when
// RequirePasswordChange is on, and reports whether it did.
func (c *Console) redirectToPasswordChange(w http.ResponseWriter, r *http.Request, username string) bool {
	c.mu.Lock()
	expired := c.faults.passwordExpired
	if expired {
		c.stats.PasswordChangeRedirects++
	}
	c.mu.Unlock()
	if !expired {
		return false
	}

	c.logger.Info("fake Cybereason console requires a password change (fault injection)", "user", username)
	c.setAnonymousCookie(w, r)
	redirect(w, passwordChangePath+"?originalurl=/current?")
	return true
}

// promptForTOTP responds to an accepted login with the two-factor prompt when RequireTOTP is on, and
// reports whether it did. The JSESSIONID it sets becomes a session once the code is posted.
func (c *Console) promptForTOTP(w http.ResponseWriter, r *http.Request, username string) bool {
	id := newSessionID()
	c.mu.Lock()
	required := c.twoFactor.key != nil
	if required {
		c.twoFactor.pending[id] = time.Now().Add(twoFactorTimeout)
		c.stats.TwoFactorPrompts++
	}
	c.mu.Unlock()
	if !required {
		return false
	}

	c.logger.Info("fake Cybereason console requested a TOTP code", "user", username)
	c.setSessionCookie(w, r, id, twoFactorTimeout)
	writeBody(w, r, http.StatusOK, htmlType, []byte(twoFactorPage))
	return true
}

// serveTwoFactor checks the TOTP code posted to the site root for a pending login. A right code
// starts a session with a new JSESSIONID, and anything else redirects to the login error URL.
func (c *Console) serveTwoFactor(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, r, http.StatusBadRequest, "invalid two-factor form")
		return
	}
	if !c.takePendingLogin(r, r.PostForm.Get("totpCode")) {
		c.logger.Info("fake Cybereason console rejected a TOTP code")
		c.setAnonymousCookie(w, r)
		redirect(w, loginFailure)
		return
	}
	c.startSession(w, r, "two-factor login")
}

// takePendingLogin ends the pending login of r's cookie and reports whether code is right for
// it. A login gets one try.
func (c *Console) takePendingLogin(r *http.Request, code string) bool {
	cookie, err := r.Cookie(cookieName)
	now := time.Now()

	c.mu.Lock()
	defer c.mu.Unlock()
	ok := err == nil && c.twoFactor.key != nil
	if ok {
		expiry, pending := c.twoFactor.pending[cookie.Value]
		delete(c.twoFactor.pending, cookie.Value)
		ok = pending && now.Before(expiry) && c.validCode(code, now)
	}
	if !ok {
		c.stats.RejectedTOTPCodes++
	}
	return ok
}

// validCode reports whether code is the code of the current or of the previous time step, so a
// code typed just before a step ends still counts. The caller holds c.mu.
func (c *Console) validCode(code string, now time.Time) bool {
	for _, t := range []time.Time{now, now.Add(-totp.Step)} {
		if subtle.ConstantTimeCompare([]byte(code), []byte(totp.Code(c.twoFactor.key, t))) == 1 {
			return true
		}
	}
	return false
}
