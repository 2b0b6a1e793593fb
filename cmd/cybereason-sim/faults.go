package main

import (
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// faultOptions are the flags that make the fake console misbehave as a real one can.
type faultOptions struct {
	totpSecret      string
	passwordExpired bool
	sessionLifetime time.Duration
	throttle        int
	retryAfter      time.Duration
	fail            int
	failStatus      int
	slow            time.Duration
	envelopeFail    int
	envelopeStatus  string
	truncate        int
}

func (f *faultOptions) register(flags *flag.FlagSet) {
	flags.StringVar(&f.totpSecret, "totp-secret", "", "base32 TOTP secret; when set, logins must complete a two-factor step with its code")
	flags.BoolVar(&f.passwordExpired, "password-expired", false, "redirect every accepted login to the password change page, as for an expired password")
	flags.DurationVar(&f.sessionLifetime, "session-lifetime", 0, "how long a session stays valid after login, e.g. 10m; 0 selects the console's 8h")
	flags.IntVar(&f.throttle, "throttle", 0, "number of first /rest requests answered with 429 Too Many Requests")
	flags.DurationVar(&f.retryAfter, "retry-after", 0, "Retry-After of the --throttle responses, rounded up to whole seconds, e.g. 5s; 0 sends none")
	flags.IntVar(&f.fail, "fail", 0, "number of first /rest requests answered with --fail-status")
	flags.IntVar(&f.failStatus, "fail-status", http.StatusInternalServerError, "HTTP status of the --fail responses, 400 to 599; 500 sends the Tomcat error page")
	flags.DurationVar(&f.slow, "slow", 0, "delay added before every response, e.g. 2s")
	flags.IntVar(&f.envelopeFail, "envelope-failures", 0, "number of first /rest requests with a session answered with a 200 envelope whose status is --envelope-status")
	flags.StringVar(&f.envelopeStatus, "envelope-status", "FAILURE", "status of the --envelope-failures responses: FAILURE, PARTIAL_SUCCESS, QUERY_LIMIT_CROSSED, TIMEOUT_ERROR or NO_SERVERS_CONFIGURED")
	flags.IntVar(&f.truncate, "truncate", 0, "number of first successful /rest responses whose JSON body is cut in half")
}

// envelopeStatuses are the statuses of a failed query that a real console sends in a 200
// envelope, as the client recognises them.
var envelopeStatuses = []string{
	cybereason.StatusFailure,
	cybereason.StatusPartialSuccess,
	cybereason.StatusQueryLimitCrossed,
	cybereason.StatusTimeoutError,
	cybereason.StatusNoServersConfigured,
}

// validate names every invalid fault flag.
func (f faultOptions) validate() []error {
	var errs []error
	counts := []struct {
		name  string
		value int
	}{{"throttle", f.throttle}, {"fail", f.fail}, {"envelope-failures", f.envelopeFail}, {"truncate", f.truncate}}
	for _, count := range counts {
		if count.value < 0 {
			errs = append(errs, fmt.Errorf("--%s %d is negative", count.name, count.value))
		}
	}
	durations := []struct {
		name  string
		value time.Duration
	}{{"session-lifetime", f.sessionLifetime}, {"retry-after", f.retryAfter}, {"slow", f.slow}}
	for _, duration := range durations {
		if duration.value < 0 {
			errs = append(errs, fmt.Errorf("--%s %s is negative", duration.name, duration.value))
		}
	}
	if f.failStatus < 400 || f.failStatus > 599 {
		errs = append(errs, fmt.Errorf("--fail-status %d is not an error status; use 400 to 599", f.failStatus))
	}
	if !slices.Contains(envelopeStatuses, f.envelopeStatus) {
		errs = append(errs, fmt.Errorf("--envelope-status %q is not a status the console sends; use %s",
			f.envelopeStatus, strings.Join(envelopeStatuses, ", ")))
	}
	if f.totpSecret != "" {
		if _, err := cybereasontest.TOTPCode(f.totpSecret, time.Now()); err != nil {
			// The error names the position of the bad character, never the secret.
			errs = append(errs, fmt.Errorf("--totp-secret: %w", err))
		}
	}
	return errs
}

// apply sets the faults on console.
func (f faultOptions) apply(console *cybereasontest.Console) error {
	if err := console.RequireTOTP(f.totpSecret); err != nil {
		return fmt.Errorf("--totp-secret: %w", err)
	}
	console.RequirePasswordChange(f.passwordExpired)
	console.Throttle(f.throttle, f.retryAfter)
	console.FailRequests(f.fail, f.failStatus)
	console.SlowResponses(f.slow)
	console.FailEnvelopes(f.envelopeFail, f.envelopeStatus)
	console.TruncateResponses(f.truncate)
	return nil
}
