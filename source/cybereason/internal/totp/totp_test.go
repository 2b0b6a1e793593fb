package totp

import (
	"testing"
	"time"
)

// rfcSecret is the SHA-1 key of the test vectors of RFC 6238, appendix B, in base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestCodeMatchesRFC6238(t *testing.T) {
	// The RFC lists 8-digit codes; the 6-digit code is their last 6 digits.
	tests := []struct {
		unix int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	}
	key, err := DecodeSecret(rfcSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, test := range tests {
		if got := Code(key, time.Unix(test.unix, 0)); got != test.want {
			t.Errorf("Code at %d = %s, want %s", test.unix, got, test.want)
		}
	}
}

func TestDecodeSecretTolerance(t *testing.T) {
	want, err := DecodeSecret(rfcSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{
		"gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ====",
		" gezdgnbvgy3tqojq-gezdgnbvgy3tqojq\n",
	} {
		got, err := DecodeSecret(secret)
		if err != nil {
			t.Errorf("DecodeSecret(%q): %v", secret, err)
			continue
		}
		if string(got) != string(want) {
			t.Errorf("DecodeSecret(%q) = %x, want %x", secret, got, want)
		}
	}
}

func TestDecodeSecretInvalid(t *testing.T) {
	for _, secret := range []string{"", "  ", "not base32!", "GEZDGNBV1"} {
		if _, err := DecodeSecret(secret); err == nil {
			t.Errorf("DecodeSecret(%q) accepted an invalid secret", secret)
		}
	}
}
