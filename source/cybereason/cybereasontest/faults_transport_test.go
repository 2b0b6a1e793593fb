package cybereasontest_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

const testTOTPSecret = "JBSWY3DPEHPK3PXP"

// postTOTP posts a TOTP code for the pending login of session.
func (c *console) postTOTP(t *testing.T, session *http.Cookie, code string) response {
	t.Helper()
	form := url.Values{"totpCode": {code}, "submit": {"Login"}}
	req, err := http.NewRequest(http.MethodPost, c.URL+"/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(session)
	return c.send(t, req)
}

func TestRequireTOTP(t *testing.T) {
	now := time.Now()
	current, err := cybereasontest.TOTPCode(testTOTPSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	previous, _ := cybereasontest.TOTPCode(testTOTPSecret, now.Add(-30*time.Second))
	tooOld, _ := cybereasontest.TOTPCode(testTOTPSecret, now.Add(-5*time.Minute))
	tests := []struct {
		name     string
		code     string
		accepted bool
	}{
		{"current code", current, true},
		{"previous code", previous, true},
		{"old code", tooOld, false},
		{"no code", "", false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			c := startConsole(t, cybereasontest.GenerateTenant(60, 5, 0, testNow))
			if err := c.RequireTOTP(testTOTPSecret); err != nil {
				t.Fatal(err)
			}

			prompt := c.login(t, testUser, testPassword)
			pending := findCookie(prompt.cookies, "JSESSIONID")
			if prompt.status != http.StatusOK || !bytes.Contains(prompt.body, []byte("Two factor authentication")) || pending == nil {
				t.Fatalf("login: status %d, want 200 with the two-factor prompt and a cookie", prompt.status)
			}
			resp := c.postTOTP(t, pending, test.code)

			location := resp.header.Get("Location")
			if test.accepted {
				session := findCookie(resp.cookies, "JSESSIONID")
				if resp.status != http.StatusFound || location != "/#/current?" || session == nil {
					t.Fatalf("TOTP post: status %d, Location %q; want 302 to /#/current? with a session", resp.status, location)
				}
				if c.post(t, "/rest/sensors/query", session, `{}`).status != http.StatusOK {
					t.Error("the session of the two-factor login does not work")
				}
				return
			}
			if resp.status != http.StatusFound || !strings.Contains(location, "error") {
				t.Errorf("TOTP post: status %d, Location %q; want 302 to an error URL", resp.status, location)
			}
			if stats := c.Stats(); stats.RejectedTOTPCodes != 1 || stats.Logins != 0 {
				t.Errorf("Stats: %d rejected codes, %d logins; want 1, 0", stats.RejectedTOTPCodes, stats.Logins)
			}
		})
	}
}

func TestRequireTOTPRejectsInvalidSecret(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(61, 5, 0, testNow))
	if err := c.RequireTOTP("not base32!"); err == nil {
		t.Error("RequireTOTP accepted an invalid secret")
	}
}

func TestRequirePasswordChange(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(62, 5, 0, testNow))
	c.RequirePasswordChange(true)

	resp := c.login(t, testUser, testPassword)

	if location := resp.header.Get("Location"); resp.status != http.StatusFound || !strings.HasPrefix(location, "/reset.html") {
		t.Fatalf("login: status %d, Location %q; want 302 to /reset.html", resp.status, location)
	}
	if page := c.get(t, "/reset.html", nil); !bytes.Contains(page.body, []byte("newPassword")) {
		t.Error("the password change page has no newPassword field")
	}
	if stats := c.Stats(); stats.PasswordChangeRedirects != 1 || stats.Logins != 0 {
		t.Errorf("Stats: %d password change redirects, %d logins; want 1, 0", stats.PasswordChangeRedirects, stats.Logins)
	}
}

func TestThrottle(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		want       string
	}{
		{"with Retry-After", 1500 * time.Millisecond, "2"},
		{"without Retry-After", 0, ""},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			c := startConsole(t, cybereasontest.GenerateTenant(63, 5, 0, testNow))
			session := c.session(t)

			c.Throttle(1, test.retryAfter)
			first := c.post(t, "/rest/sensors/query", session, `{}`)
			second := c.post(t, "/rest/sensors/query", session, `{}`)

			if first.status != http.StatusTooManyRequests || first.header.Get("Retry-After") != test.want {
				t.Errorf("first response: status %d, Retry-After %q; want 429, %q", first.status, first.header.Get("Retry-After"), test.want)
			}
			if second.status != http.StatusOK {
				t.Errorf("second response: status %d, want 200", second.status)
			}
			if stats := c.Stats(); stats.ThrottledResponses != 1 {
				t.Errorf("Stats().ThrottledResponses = %d, want 1", stats.ThrottledResponses)
			}
		})
	}
}

func TestFailRequestsServerErrorPage(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(64, 5, 0, testNow))
	session := c.session(t)

	c.FailRequests(1, http.StatusInternalServerError)
	resp := c.post(t, "/rest/sensors/query", session, `{}`)

	if resp.status != http.StatusInternalServerError || !bytes.Contains(resp.body, []byte("HTTP Status 500")) {
		t.Errorf("status %d, body %.80q; want 500 with the Tomcat error page", resp.status, resp.body)
	}
}

func TestFailEnvelopes(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(65, 5, 0, testNow))
	session := c.session(t)

	c.FailEnvelopes(1, "QUERY_LIMIT_CROSSED")
	first := c.post(t, "/rest/sensors/query", session, `{}`)
	second := c.post(t, "/rest/sensors/query", session, `{}`)

	var envelope struct {
		Status  string          `json:"status"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(first.body, &envelope); err != nil {
		t.Fatalf("first response is not JSON: %v", err)
	}
	if first.status != http.StatusOK || envelope.Status != "QUERY_LIMIT_CROSSED" || envelope.Message == "" {
		t.Errorf("first response: status %d, envelope %+v; want 200 with status QUERY_LIMIT_CROSSED and a message", first.status, envelope)
	}
	if second.status != http.StatusOK || bytes.Contains(second.body, []byte("QUERY_LIMIT_CROSSED")) {
		t.Errorf("second response: status %d, want a normal 200", second.status)
	}
}

func TestTruncateResponses(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(66, 5, 0, testNow))
	session := c.session(t)

	c.TruncateResponses(1)
	first := c.post(t, "/rest/sensors/query", session, sensorsPageBody(0))
	second := c.post(t, "/rest/sensors/query", session, sensorsPageBody(0))

	if first.status != http.StatusOK || json.Valid(first.body) || len(first.body) == 0 {
		t.Errorf("first response: status %d, %d bytes, valid JSON %t; want 200 with cut JSON", first.status, len(first.body), json.Valid(first.body))
	}
	if !json.Valid(second.body) {
		t.Error("second response is not valid JSON")
	}
	if stats := c.Stats(); stats.TruncatedResponses != 1 {
		t.Errorf("Stats().TruncatedResponses = %d, want 1", stats.TruncatedResponses)
	}
}

func TestSetSessionLifetime(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(67, 5, 0, testNow))
	c.SetSessionLifetime(time.Nanosecond)
	session := c.session(t)

	if resp := c.post(t, "/rest/sensors/query", session, `{}`); resp.status != http.StatusFound {
		t.Errorf("status %d, want 302 to the login page after the session expired", resp.status)
	}
}

func TestTLSServerCertificatePEM(t *testing.T) {
	server := cybereasontest.NewTLSServer(cybereasontest.GenerateTenant(68, 5, 0, testNow), cybereasontest.Options{})
	t.Cleanup(server.Close)

	block, _ := pem.Decode(server.CertificatePEM())
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatal("CertificatePEM returned no PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.IsCA {
		t.Error("the certificate cannot serve as a CA file")
	}
	if !strings.HasPrefix(server.URL, "https://127.0.0.1:") {
		t.Errorf("URL %q, want https on 127.0.0.1", server.URL)
	}
}
