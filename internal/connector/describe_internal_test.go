package connector

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/oversoc/cybereason-connector/source/cybereason"
)

func TestDescribeNamesTheKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("log in: %w", cybereason.ErrCredentialsRejected), "credentials refused: "},
		{fmt.Errorf("log in: %w", cybereason.ErrTOTPRequired), "TOTP needed: "},
		{fmt.Errorf("log in: %w", cybereason.ErrPasswordExpired), "password expired: "},
		{fmt.Errorf("log in: %w", cybereason.ErrLoginRedirectedAway), "wrong console URL: "},
		{fmt.Errorf("malops: %w", cybereason.ErrNotSupported), "API not supported by this console: "},
		{&cybereason.StatusError{StatusCode: 403, Endpoint: "POST /rest/malware/query"}, "role missing: "},
		{&cybereason.StatusError{StatusCode: 429, Endpoint: "POST /rest/sensors/query"}, "throttled by the console: "},
		{&cybereason.StatusError{StatusCode: 503, Endpoint: "POST /rest/sensors/query"}, "console error: "},
		{&cybereason.EnvelopeError{Endpoint: "POST /rest/malware/query", Status: "FAILURE"}, "console query failed: "},
		{fmt.Errorf("sensors: %w", context.DeadlineExceeded), "timeout: "},
		{fmt.Errorf("something else"), "failed: "},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := describe(tt.err); !strings.HasPrefix(got, tt.want) {
				t.Errorf("describe(%v) = %q, want the prefix %q", tt.err, got, tt.want)
			}
		})
	}
}
