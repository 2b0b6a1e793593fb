package cybereason

import (
	"fmt"
	"strings"
)

// Envelope statuses that the console returns with HTTP 200 when a query failed in whole or in
// part. A result that comes with one of them is incomplete and must not be used.
const (
	StatusFailure             = "FAILURE"
	StatusPartialSuccess      = "PARTIAL_SUCCESS"
	StatusQueryLimitCrossed   = "QUERY_LIMIT_CROSSED"
	StatusTimeoutError        = "TIMEOUT_ERROR"
	StatusNoServersConfigured = "NO_SERVERS_CONFIGURED"
)

// EnvelopeError is a 200 response whose JSON status member reports a failed query, for example
// FAILURE or QUERY_LIMIT_CROSSED. Endpoints that wrap their result in a
// {"data": ..., "status": ..., "message": ...} envelope return it instead of a partial result.
type EnvelopeError struct {
	Endpoint string // "METHOD /path", e.g. "POST /rest/crimes/unified"
	Status   string // the status member, e.g. "TIMEOUT_ERROR"
	Message  string // the message member, whitespace collapsed, at most 300 bytes
}

func (e *EnvelopeError) Error() string {
	text := fmt.Sprintf("%s: the console reported query status %s instead of SUCCESS", e.Endpoint, e.Status)
	if e.Message != "" {
		text += fmt.Sprintf(": %q", e.Message)
	}
	return text
}

// envelope is the status part of a response envelope. Endpoint code embeds it in its response
// type and calls check after decoding.
type envelope struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// check returns an *EnvelopeError when the envelope reports a failed query.
func (e envelope) check(endpoint string) error {
	return checkEnvelope(endpoint, e.Status, e.Message)
}

// checkEnvelope returns an *EnvelopeError for endpoint ("METHOD /path") when status is anything
// but SUCCESS (in any case) or empty. Settings endpoints, which send an outcome member instead, have an empty
// status and pass.
func checkEnvelope(endpoint, status, message string) error {
	if status == "" || strings.EqualFold(status, "SUCCESS") {
		return nil
	}
	message = excerpt([]byte(message))
	if len(message) > excerptLimit {
		message = strings.ToValidUTF8(message[:excerptLimit], "")
	}
	return &EnvelopeError{Endpoint: endpoint, Status: status, Message: message}
}
