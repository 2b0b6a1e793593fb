package cybereason_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// testTOTPSecret is the base32 TOTP secret of the two-factor test account.
const testTOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func withTOTPSecret(secret string) func(*cybereason.Config) {
	return func(c *cybereason.Config) {
		c.TOTPSecret = func() (string, error) { return secret, nil }
	}
}

func TestTwoFactorLoginAccepted(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(40, 5, 0, testNow))
	if err := console.RequireTOTP(testTOTPSecret); err != nil {
		t.Fatal(err)
	}
	// Authenticator apps show the secret in lower-case groups, which must work as well.
	spaced := "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp"
	client := newClient(t, console.URL, testPassword, withTOTPSecret(spaced), nil)

	if err := client.Login(context.Background()); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if _, err := querySensors(t, client); err != nil {
		t.Fatalf("QuerySensors after the two-factor login: %v", err)
	}

	stats := console.Stats()
	if stats.TwoFactorPrompts != 1 {
		t.Errorf("console counted %d two-factor prompts, want 1", stats.TwoFactorPrompts)
	}
	if stats.Logins != 1 {
		t.Errorf("console counted %d logins, want 1", stats.Logins)
	}
	if stats.LoginRedirects != 0 {
		t.Errorf("console redirected %d calls to the login page, want 0", stats.LoginRedirects)
	}
}

func TestTwoFactorLoginFailures(t *testing.T) {
	tests := []struct {
		name         string
		change       func(*cybereason.Config)
		wantIs       error
		wantText     string
		wantRejected bool
	}{
		{"no TOTP secret", nil, cybereason.ErrTOTPRequired, "CYBEREASON_TOTP_SECRET", true},
		{"secret of another account", withTOTPSecret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), cybereason.ErrCredentialsRejected, "rejected the TOTP code", true},
		{"secret not base32", withTOTPSecret("not-base32!"), nil, "not valid base32", false},
		{"secret unreadable", func(c *cybereason.Config) {
			c.TOTPSecret = func() (string, error) { return "", errors.New("secret file missing") }
		}, nil, "read the TOTP secret", false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(41, 5, 0, testNow))
			if err := console.RequireTOTP(testTOTPSecret); err != nil {
				t.Fatal(err)
			}
			var logs syncBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			client := newClient(t, console.URL, testPassword, test.change, logger)

			err := client.Login(context.Background())

			if err == nil {
				t.Fatal("Login succeeded")
			}
			if test.wantIs != nil && !errors.Is(err, test.wantIs) {
				t.Errorf("Login error %v, want errors.Is %v", err, test.wantIs)
			}
			if !strings.Contains(err.Error(), test.wantText) {
				t.Errorf("Login error %q does not contain %q", err, test.wantText)
			}
			if got := errors.Is(err, cybereason.ErrCredentialsRejected); got != test.wantRejected {
				t.Errorf("errors.Is(err, ErrCredentialsRejected) = %t, want %t", got, test.wantRejected)
			}
			checkNoTOTPSecrets(t, err.Error()+"\n"+logs.String())
			if stats := console.Stats(); stats.Logins != 0 {
				t.Errorf("console counted %d logins, want 0", stats.Logins)
			}
		})
	}
}

// checkNoTOTPSecrets fails when output contains the test secret or a code of it.
func checkNoTOTPSecrets(t *testing.T, output string) {
	t.Helper()
	for _, secret := range []string{testTOTPSecret, strings.ToLower(testTOTPSecret), testPassword} {
		if strings.Contains(output, secret) {
			t.Errorf("output contains the secret %q:\n%s", secret, output)
		}
	}
	code, err := cybereasontest.TOTPCode(testTOTPSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(output, "totpCode="+code) {
		t.Errorf("output contains the TOTP code:\n%s", output)
	}
}

func TestPasswordExpired(t *testing.T) {
	tests := []struct {
		name   string
		totp   bool
		change func(*cybereason.Config)
	}{
		{"password login", false, nil},
		{"two-factor login", true, withTOTPSecret(testTOTPSecret)},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			console := startConsole(t, cybereasontest.GenerateTenant(42, 5, 0, testNow))
			if test.totp {
				if err := console.RequireTOTP(testTOTPSecret); err != nil {
					t.Fatal(err)
				}
			}
			console.RequirePasswordChange(true)
			client := newClient(t, console.URL, testPassword, test.change, nil)

			err := client.Login(context.Background())

			if !errors.Is(err, cybereason.ErrPasswordExpired) {
				t.Fatalf("Login error %v, want ErrPasswordExpired", err)
			}
			if !errors.Is(err, cybereason.ErrCredentialsRejected) {
				t.Errorf("Login error %v does not match ErrCredentialsRejected", err)
			}
			if errors.Is(err, cybereason.ErrTOTPRequired) {
				t.Errorf("Login error %v matches ErrTOTPRequired", err)
			}
			if !strings.Contains(err.Error(), "password has expired") || !strings.Contains(err.Error(), testUser) {
				t.Errorf("Login error %q does not explain the expired password of the user", err)
			}
			if stats := console.Stats(); stats.PasswordChangeRedirects != 1 {
				t.Errorf("console counted %d password change redirects, want 1", stats.PasswordChangeRedirects)
			}
		})
	}
}
