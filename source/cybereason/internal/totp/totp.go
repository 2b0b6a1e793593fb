// Package totp computes the time-based one-time passwords of RFC 6238 that the Cybereason console
// requires at a two-factor login: HMAC-SHA-1, a 30-second time step and 6 digits.
package totp

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Parameters of the codes the console accepts.
const (
	Step   = 30 * time.Second
	Digits = 6
)

// DecodeSecret decodes a base32 secret as authenticator apps show it. Spaces, hyphens, lower case
// and missing or present "=" padding are accepted.
func DecodeSecret(secret string) ([]byte, error) {
	cleaned := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', '-', '=':
			return -1
		}
		return r
	}, strings.ToUpper(secret))
	if cleaned == "" {
		return nil, errors.New("the TOTP secret is empty")
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(cleaned)
	if err != nil {
		// The error of the base32 package names only the offset, never the secret.
		return nil, fmt.Errorf("the TOTP secret is not valid base32: %w", err)
	}
	return key, nil
}

// Code returns the code of key for the time step that contains t, as Digits decimal digits with
// leading zeros.
func Code(key []byte, t time.Time) string {
	var counter [8]byte
	binary.BigEndian.PutUint64(counter[:], uint64(t.Unix()/int64(Step/time.Second)))

	mac := hmac.New(sha1.New, key)
	mac.Write(counter[:])
	sum := mac.Sum(nil)

	// Dynamic truncation (RFC 4226, section 5.3): the low 4 bits of the last byte select 4 bytes.
	offset := sum[len(sum)-1] & 0x0f
	value := binary.BigEndian.Uint32(sum[offset:offset+4]) & 0x7fffffff

	modulus := uint32(1)
	for range Digits {
		modulus *= 10
	}
	return fmt.Sprintf("%0*d", Digits, value%modulus)
}
