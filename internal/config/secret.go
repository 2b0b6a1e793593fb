package config

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret is a credential read from an environment variable or from a file
// named by the matching `<NAME>_FILE` variable. Its value never appears in
// fmt output, slog records or JSON.
type Secret struct {
	value string
	file  string
}

const redacted = "[REDACTED]"

// IsSet reports whether a value or a file was configured.
func (s Secret) IsSet() bool { return s.value != "" || s.file != "" }

// File returns the path the secret is read from, or "" when it came from the
// environment directly.
func (s Secret) File() string { return s.file }

// Value returns the secret. A file-backed secret is read on every call, so a
// rotated Kubernetes Secret takes effect at the next login without a restart.
// One trailing newline is removed from file contents, because `echo` and most
// editors add one.
func (s Secret) Value() (string, error) {
	if s.file == "" {
		return s.value, nil
	}

	data, err := os.ReadFile(s.file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}

	value := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if value == "" {
		return "", fmt.Errorf("secret file %s is empty", s.file)
	}
	return value, nil
}

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer without revealing the value.
func (s Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer without revealing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler without revealing the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// EnvDecode implements envconfig.Decoder. The value is kept as given:
// `$`, `,` and spaces are part of the password, never expanded or split.
func (s *Secret) EnvDecode(value string) error {
	s.value = value
	return nil
}

// NewSecret returns a secret with a fixed value, for settings that do not
// come from the environment.
func NewSecret(value string) Secret { return Secret{value: value} }

// NewSecretFile returns a secret read from path at every Value call, as a
// `<NAME>_FILE` setting gives.
func NewSecretFile(path string) Secret { return Secret{file: path} }
