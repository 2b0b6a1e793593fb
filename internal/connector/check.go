package connector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/oversoc/cybereason-connector/internal/config"
	"github.com/oversoc/cybereason-connector/source"
	"github.com/oversoc/cybereason-connector/source/cybereason"
)

// CheckResult is the outcome of one probe of Check.
type CheckResult struct {
	Name string
	// OK is false when the probe failed, and Detail then gives the reason.
	OK bool
	// Skipped marks a probe that had nothing to try, such as MalOp details
	// when no MalOp is recent; OK is true then.
	Skipped bool
	Detail  string
}

// probeWindow is how far back the alert probes look. It is short, so that a
// probe requests little from the console.
const probeWindow = time.Hour

// errProbeDone stops a paged listing after its first page.
var errProbeDone = errors.New("probe done")

// Check probes what cfg enables once: Kafka and every topic, then, when the
// source stage is enabled, the console login and each enabled feed. It never
// returns a secret in a result.
func Check(ctx context.Context, cfg *config.Config, logger *slog.Logger) []CheckResult {
	results := []CheckResult{checkKafka(ctx, cfg)}
	if !cfg.Runs(config.StageSource) {
		return results
	}

	probeCfg := *cfg
	probeCfg.Cybereason.PageSize = 1 // a probe needs one item, not a page of 1000
	// The probe stops after page 0, so pages requested ahead of it would be sent for nothing.
	probeCfg.Cybereason.PageConcurrency = 1
	client, err := NewClient(&probeCfg, logger)
	if err != nil {
		return append(results, CheckResult{Name: "console", Detail: err.Error()})
	}
	defer client.CloseIdleConnections()

	if err := client.Login(ctx); err != nil {
		return append(results, CheckResult{Name: "console login", Detail: describe(err)})
	}
	results = append(results, CheckResult{Name: "console login", OK: true, Detail: fmt.Sprintf("%s at %s", cfg.Cybereason.Username, cfg.Cybereason.URL)})

	results = append(results, probeFeeds(ctx, client, cfg)...)
	if err := client.Logout(ctx); err != nil {
		logger.Warn("log out after the check failed", "error", err)
	}
	return results
}

func checkKafka(ctx context.Context, cfg *config.Config) CheckResult {
	topics := requiredTopics(cfg)
	security, err := newSecurity(cfg)
	if err != nil {
		return CheckResult{Name: "kafka", Detail: err.Error()}
	}
	if err := checkTopics(ctx, security, cfg.Kafka.Brokers, topics); err != nil {
		return CheckResult{Name: "kafka", Detail: err.Error()}
	}
	if cfg.Runs(config.StageEnrich) {
		if err := checkCopartitioned(ctx, security, cfg.Kafka.Brokers, cfg.Kafka.Topics.RawSensors, cfg.Kafka.Topics.NormalizedAssets); err != nil {
			return CheckResult{Name: "kafka", Detail: err.Error()}
		}
	}
	return CheckResult{Name: "kafka", OK: true, Detail: fmt.Sprintf("%d topics present", len(topics))}
}

// probeFeeds requests one page of recent data from each enabled feed's endpoint.
func probeFeeds(ctx context.Context, client *cybereason.Client, cfg *config.Config) []CheckResult {
	now := time.Now()
	var results []CheckResult
	enabled := func(feed string) bool {
		for _, f := range cfg.Source.Feeds {
			if f == feed {
				return true
			}
		}
		return false
	}

	if enabled(source.FeedSensors) {
		err := client.QuerySensors(ctx, func(cybereason.SensorPage) error { return errProbeDone })
		results = append(results, probeResult(source.FeedSensors, err, ""))
	}
	if enabled(source.FeedMalops) {
		results = append(results, probeMalops(ctx, client, cfg, now)...)
	}
	if enabled(source.FeedMalware) {
		err := client.QueryMalware(ctx, now.Add(-probeWindow), now, func(cybereason.MalwarePage) error { return errProbeDone })
		results = append(results, probeResult(source.FeedMalware, err, ""))
	}
	if enabled(source.FeedPolicies) {
		policies, err := client.Policies(ctx)
		results = append(results, probeResult(source.FeedPolicies, err, fmt.Sprintf("%d policies", len(policies))))
	}
	return results
}

// probeMalops tries the MalOp management API, then the detection inbox, and
// the details of one recent MalOp when details are enabled.
func probeMalops(ctx context.Context, client *cybereason.Client, cfg *config.Config, now time.Time) []CheckResult {
	from := now.Add(-probeWindow)
	api := "MalOp management API"
	malops, err := client.MalopsV2(ctx, from, now)
	if errors.Is(err, cybereason.ErrNotSupported) {
		api = "detection inbox; this console has no MalOp management API"
		malops, err = client.MalopsInbox(ctx, from, now)
	}
	results := []CheckResult{probeResult(source.FeedMalops, err, api)}
	if err != nil || !cfg.Source.MalopDetails {
		return results
	}

	if len(malops) == 0 {
		return append(results, CheckResult{Name: "malop details", OK: true, Skipped: true, Detail: "no MalOp in the last hour to fetch details for"})
	}
	fetch := client.EPPMalopDetails
	if malops[0].EDR {
		fetch = client.EDRMalopDetails
	}
	_, err = fetch(ctx, malops[0].GUID)
	return append(results, probeResult("malop details", err, "MalOp "+malops[0].GUID))
}

func probeResult(name string, err error, detail string) CheckResult {
	if err != nil && !errors.Is(err, errProbeDone) {
		return CheckResult{Name: name, Detail: describe(err)}
	}
	return CheckResult{Name: name, OK: true, Detail: detail}
}

// describe names the kind of failure first, so an operator sees at once
// whether to fix credentials, roles, certificates or the network.
func describe(err error) string {
	var (
		status      *cybereason.StatusError
		envelope    *cybereason.EnvelopeError
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		certificate *tls.CertificateVerificationError
		netErr      net.Error
	)
	kind := "failed"
	switch {
	// The two-factor and expired-password errors also match
	// ErrCredentialsRejected, so they come first.
	case errors.Is(err, cybereason.ErrTOTPRequired):
		kind = "TOTP needed"
	case errors.Is(err, cybereason.ErrPasswordExpired):
		kind = "password expired"
	case errors.Is(err, cybereason.ErrCredentialsRejected):
		kind = "credentials refused"
	case errors.Is(err, cybereason.ErrLoginRedirectedAway):
		kind = "wrong console URL"
	case errors.Is(err, cybereason.ErrNotSupported):
		kind = "API not supported by this console"
	case errors.As(err, &status) && status.StatusCode == 403:
		kind = "role missing"
	case errors.As(err, &status) && status.StatusCode == 429:
		kind = "throttled by the console"
	case errors.As(err, &status) && status.StatusCode >= 500:
		kind = "console error"
	case errors.As(err, &envelope):
		kind = "console query failed"
	case errors.As(err, &certificate), errors.As(err, &unknownCA), errors.As(err, &hostname):
		kind = "TLS"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		kind = "timeout"
	}
	return kind + ": " + err.Error()
}
