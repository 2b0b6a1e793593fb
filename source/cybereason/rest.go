package cybereason

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/klauspost/compress/gzip"
)

const (
	// htmlSniffLen is how much of a body is inspected to tell HTML from JSON.
	htmlSniffLen = 512
	// excerptLimit bounds the part of an error response body quoted in errors.
	excerptLimit = 300
)

var errResponseTooLarge = errors.New("response body is larger than MaxResponseBytes")

// StatusError is a response with an unexpected HTTP status. Temporary reports the statuses worth
// retrying later (429 and 5xx).
type StatusError struct {
	Method     string
	Endpoint   string // path below BaseURL, e.g. "/rest/sensors/query"
	StatusCode int
	Status     string // e.g. "403 Forbidden"
	Excerpt    string // start of the response body, whitespace collapsed, at most 300 bytes
	// RetryAfter is the wait that a Retry-After header requested, or 0 without one.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	var msg strings.Builder
	msg.WriteString("returned ")
	msg.WriteString(e.Status)
	if e.StatusCode == http.StatusForbidden {
		fmt.Fprintf(&msg, ": the console account lacks the role that %s %s requires", e.Method, e.Endpoint)
		if role := requiredRole(e.Endpoint); role != "" {
			fmt.Fprintf(&msg, " (%s)", role)
		}
	}
	if e.Excerpt != "" {
		msg.WriteString(": ")
		msg.WriteString(strconv.Quote(e.Excerpt))
	}
	return msg.String()
}

// Temporary reports whether the console may accept the same request later: 429 (throttled) and
// server errors.
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// requiredRole returns the console role an endpoint is known to require, or "".
func requiredRole(endpoint string) string {
	if endpoint == sensorsPath {
		return "System Admin, plus Sensor Admin L1 when sensor groups are used"
	}
	return ""
}

func newStatusError(method, endpoint string, resp *http.Response, maxBody int64) *StatusError {
	body, _ := readBounded(resp, min(maxBody, excerptLimit))
	return &StatusError{
		Method:     method,
		Endpoint:   endpoint,
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Excerpt:    excerpt(body),
	}
}

// excerpt collapses whitespace and drops control characters, so a body fits in one log line.
func excerpt(body []byte) string {
	fields := strings.FieldsFunc(string(body), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	})
	return strings.Join(fields, " ")
}

// restCall is one JSON request to a /rest endpoint.
type restCall struct {
	method   string
	endpoint string // path below BaseURL, e.g. "/rest/sensors/query"
	body     []byte // JSON request body
	// decode reads a 2xx JSON response body. It runs a second time when the call is repeated after
	// a new login, so it must replace its earlier results rather than add to them.
	decode func(io.Reader) error
}

func (call restCall) name() string {
	return call.method + " " + call.endpoint
}

// do sends call and decodes its response. It logs in first when there is no session or the session
// is older than SessionRenewAfter. When the console responds as if the session were missing or
// expired, do logs in again once and repeats the call once. A 429 or 5xx response is retried up to
// MaxRetries times with backoff, unless the wait would end after ctx's deadline. Each HTTP request
// is bounded by Timeout, and ctx bounds the whole call, including the waits before retries.
func (c *Client) do(ctx context.Context, call restCall) error {
	return c.doWithRetries(ctx, call)
}

// doWithSession sends call once, or twice when the first response shows an expired session.
func (c *Client) doWithSession(ctx context.Context, call restCall) error {
	if err := c.ensureSession(ctx); err != nil {
		return fmt.Errorf("%s: %w", call.name(), err)
	}

	generation, err := c.attempt(ctx, call)
	if !errors.Is(err, errNotLoggedIn) {
		return err
	}

	c.logger.Warn("Cybereason session is no longer valid; logging in again", "endpoint", call.name(), "reason", err)
	if err := c.relogin(ctx, generation); err != nil {
		return fmt.Errorf("%s: %w", call.name(), err)
	}
	if _, err = c.attempt(ctx, call); errors.Is(err, errNotLoggedIn) {
		return fmt.Errorf("%w, even right after a new login", err)
	}
	return err
}

// attempt sends call once and returns the generation of the session it used.
func (c *Client) attempt(ctx context.Context, call restCall) (uint64, error) {
	if err := acquire(ctx, c.requestSlot); err != nil {
		return 0, fmt.Errorf("%s: %w", call.name(), err)
	}
	defer release(c.requestSlot)

	c.mu.Lock()
	current := c.session
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, call.method, c.baseURL+call.endpoint, bytes.NewReader(call.body))
	if err != nil {
		return current.generation, fmt.Errorf("%s: %w", call.name(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	addCookies(req, current.cookies)

	resp, err := c.http.Do(req)
	if err != nil {
		return current.generation, fmt.Errorf("%s: %w", call.name(), describeTransportError(ctx, err, c.timeout))
	}
	defer discardAndClose(resp.Body)

	if err := c.readResponse(resp, call); err != nil {
		var envelopeErr *EnvelopeError
		if errors.As(err, &envelopeErr) {
			return current.generation, err // it names the endpoint already
		}
		return current.generation, fmt.Errorf("%s: %w", call.name(), describeTimeout(ctx, err, c.timeout))
	}
	return current.generation, nil
}

// readResponse checks the status and the body type, then decodes a JSON body with call.decode.
func (c *Client) readResponse(resp *http.Response, call restCall) error {
	switch {
	case isRedirect(resp.StatusCode):
		location := resp.Header.Get("Location")
		if isLoginLocation(location) {
			return fmt.Errorf("%w: redirected to %s", errNotLoggedIn, redactSessionID(location))
		}
		return fmt.Errorf("returned an unexpected redirect %s to %q", resp.Status, redactSessionID(location))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		statusErr := newStatusError(call.method, call.endpoint, resp, c.maxBody)
		statusErr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		return statusErr
	}

	body, err := bodyReader(resp, c.maxBody)
	if err != nil {
		return err
	}
	buffered := bufio.NewReaderSize(body, htmlSniffLen)
	if contentType := resp.Header.Get("Content-Type"); looksLikeHTML(contentType, buffered) {
		return fmt.Errorf("%w: returned an HTML page (Content-Type %q) instead of JSON", errNotLoggedIn, contentType)
	}
	if err := call.decode(buffered); err != nil {
		return describeDecodeError(err)
	}
	return nil
}

// describeDecodeError explains a failed decoding. An envelope failure is returned unchanged.
func describeDecodeError(err error) error {
	var envelopeErr *EnvelopeError
	switch {
	case errors.As(err, &envelopeErr):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("decode the JSON response: the body ended before the JSON was complete (truncated response): %w", err)
	}
	return fmt.Errorf("decode the JSON response: %w", err)
}

// looksLikeHTML reports whether a body is HTML, by its Content-Type or by its first non-blank byte.
func looksLikeHTML(contentType string, body *bufio.Reader) bool {
	if mediaType, _, err := mime.ParseMediaType(contentType); err == nil && mediaType == "text/html" {
		return true
	}
	start, _ := body.Peek(htmlSniffLen) // a shorter body returns what it has
	start = bytes.TrimPrefix(start, []byte("\xef\xbb\xbf"))
	start = bytes.TrimLeft(start, " \t\r\n")
	return len(start) > 0 && start[0] == '<'
}

// bodyReader returns the decompressed body, bounded to limit bytes. Reading past the limit fails
// with errResponseTooLarge instead of truncating the body silently.
func bodyReader(resp *http.Response, limit int64) (io.Reader, error) {
	var body io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		decompressed, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("decompress the gzip response: %w", err)
		}
		body = decompressed
	}
	return &boundedReader{source: body, remaining: limit, limit: limit}, nil
}

// readBounded reads the whole decompressed body up to limit bytes. A larger body returns the
// first limit bytes and errResponseTooLarge.
func readBounded(resp *http.Response, limit int64) ([]byte, error) {
	body, err := bodyReader(resp, limit)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(body)
}

type boundedReader struct {
	source    io.Reader
	remaining int64
	limit     int64
}

func (r *boundedReader) Read(p []byte) (int, error) {
	if r.remaining <= 0 {
		// Reading one more byte distinguishes a body of exactly limit bytes from a larger one.
		var probe [1]byte
		n, err := r.source.Read(probe[:])
		if n > 0 {
			return 0, fmt.Errorf("%w (%d bytes)", errResponseTooLarge, r.limit)
		}
		return 0, err
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.source.Read(p)
	r.remaining -= int64(n)
	return n, err
}

// describeTransportError explains a failed certificate check or a timeout of an HTTP request.
func describeTransportError(ctx context.Context, err error, timeout time.Duration) error {
	return describeCertificateError(describeTimeout(ctx, err, timeout))
}

// describeTimeout names the per-request timeout when a request ran out of time.
func describeTimeout(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s, the request timeout (CYBEREASON_REQUEST_TIMEOUT in the connector): %w", timeout, err)
	}
	return err
}
