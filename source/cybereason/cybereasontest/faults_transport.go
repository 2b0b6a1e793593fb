package cybereasontest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

// tomcatErrorPage is the body of a 500 response, in the form of the error page of the Tomcat
// server behind the console.
const tomcatErrorPage = `<!doctype html><html lang="en"><head><title>HTTP Status 500 – Internal Server Error</title>` +
	`<style type="text/css">body {font-family:Tahoma,Arial,sans-serif;}</style></head><body>` +
	`<h1>HTTP Status 500 – Internal Server Error</h1><hr class="line" /><p><b>Type</b> Exception Report</p>` +
	`<p><b>Description</b> The server encountered an unexpected condition that prevented it from fulfilling the request.</p>` +
	`<hr class="line" /><h3>Apache Tomcat</h3></body></html>`

// maxBufferedBody bounds the request body that SlowResponses reads before its delay.
const maxBufferedBody = 1 << 20

// Throttle responds to the next n /rest requests with 429 Too Many Requests. A positive
// retryAfter adds a Retry-After header with that wait in whole seconds, rounded up. n <= 0
// cancels pending throttling.
func (c *Console) Throttle(n int, retryAfter time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.throttles = max(n, 0)
	c.faults.retryAfter = retryAfter
}

// FailEnvelopes responds to the next n /rest requests that have a valid session with a 200 JSON
// envelope whose status is status (for example FAILURE or QUERY_LIMIT_CROSSED) and whose data is
// null. n <= 0 cancels pending failures.
func (c *Console) FailEnvelopes(n int, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.envelopeFailures = max(n, 0)
	c.faults.envelopeStatus = status
}

// TruncateResponses cuts the JSON body of the next n successful /rest responses in half, as a
// proxy that drops a connection might. The response is sent uncompressed and its Content-Length
// matches the cut body. n <= 0 cancels pending truncations.
func (c *Console) TruncateResponses(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.truncations = max(n, 0)
}

// SlowResponses adds delay before every response, or until the request ends. 0 removes it.
func (c *Console) SlowResponses(delay time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.delay = max(delay, 0)
}

// RequirePasswordChange makes every login with the right credentials redirect to the password
// change page, as the console does when the password has expired. false restores normal logins.
func (c *Console) RequirePasswordChange(required bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.passwordExpired = required
}

// SetSessionLifetime sets how long the sessions of later logins stay valid. A lifetime <= 0
// selects DefaultSessionLifetime. Sessions that exist keep their expiry time.
func (c *Console) SetSessionLifetime(lifetime time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lifetime <= 0 {
		lifetime = DefaultSessionLifetime
	}
	c.lifetime = lifetime
}

func (c *Console) currentLifetime() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lifetime
}

// slowDown waits for the delay set by SlowResponses and reports whether the request is still
// wanted. It reads the request body first, because net/http notices a client that went away, and
// cancels the request context, only once the body has been read.
func (c *Console) slowDown(w http.ResponseWriter, r *http.Request) bool {
	c.mu.Lock()
	delay := c.faults.delay
	c.mu.Unlock()
	if delay <= 0 {
		return true
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBufferedBody))
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// serveRESTWithFaults applies the throttling, envelope and truncation faults, then serves the
// /rest request.
func (c *Console) serveRESTWithFaults(w http.ResponseWriter, r *http.Request) {
	if retryAfter, ok := c.takeThrottle(); ok {
		if retryAfter > 0 {
			seconds := (retryAfter + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(seconds), 10))
		}
		writeJSONError(w, r, http.StatusTooManyRequests, "too many requests")
		return
	}
	if c.validSession(r) {
		if status, ok := c.takeEnvelopeFailure(); ok {
			writeEnvelopeFailure(w, r, status)
			return
		}
	}
	if c.truncationPending() {
		c.serveTruncated(w, r)
		return
	}
	c.serveREST(w, r)
}

func (c *Console) takeThrottle() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.faults.throttles <= 0 {
		return 0, false
	}
	c.faults.throttles--
	c.stats.ThrottledResponses++
	return c.faults.retryAfter, true
}

func (c *Console) takeEnvelopeFailure() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.faults.envelopeFailures <= 0 {
		return "", false
	}
	c.faults.envelopeFailures--
	c.stats.EnvelopeFailures++
	return c.faults.envelopeStatus, true
}

func (c *Console) truncationPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults.truncations > 0
}

// serveTruncated serves r into a buffer and sends the first half of a 200 JSON body. Other
// responses pass unchanged and leave the fault pending.
func (c *Console) serveTruncated(w http.ResponseWriter, r *http.Request) {
	plain := r.Clone(r.Context())
	plain.Header.Del("Accept-Encoding")
	recorder := httptest.NewRecorder()
	c.serveREST(recorder, plain)

	body := recorder.Body.Bytes()
	if recorder.Code == http.StatusOK && json.Valid(body) && c.takeFault(&c.faults.truncations) {
		c.mu.Lock()
		c.stats.TruncatedResponses++
		c.mu.Unlock()
		body = body[:len(body)/2]
	}
	for name, values := range recorder.Header() {
		w.Header()[name] = values
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(recorder.Code)
	_, _ = w.Write(body)
}

// writeFailure writes an error response: the Tomcat error page for 500, a JSON error otherwise.
func writeFailure(w http.ResponseWriter, r *http.Request, status int) {
	if status == http.StatusInternalServerError {
		writeBody(w, r, status, htmlType, []byte(tomcatErrorPage))
		return
	}
	writeJSONError(w, r, status, http.StatusText(status))
}

// writeEnvelopeFailure writes a 200 envelope that reports a failed query.
func writeEnvelopeFailure(w http.ResponseWriter, r *http.Request, status string) {
	body, _ := json.Marshal(struct {
		Data    any    `json:"data"`
		Status  string `json:"status"`
		Message string `json:"message"`
	}{nil, status, fmt.Sprintf("fake console: query ended with status %s", status)})
	writeBody(w, r, http.StatusOK, jsonType, body)
}
