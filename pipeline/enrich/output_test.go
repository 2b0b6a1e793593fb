package enrich

import "testing"

func TestReplacePlaceholder(t *testing.T) {
	const fingerprint = "0123456789abcdef"
	tests := []struct {
		name, value, want string
		replaced          bool
	}{
		{"uid only", `{"metadata":{"uid":"s1#0000000000000000"}}`, `{"metadata":{"uid":"s1#0123456789abcdef"}}`, true},
		{"escaped uid", `{"metadata":{"uid":"a\"b#0000000000000000","v":1}}`, `{"metadata":{"uid":"a\"b#0123456789abcdef","v":1}}`, true},
		{"marker twice", `{"a":"x#0000000000000000","metadata":{"uid":"s1#0000000000000000"}}`, `{"a":"x#0000000000000000","metadata":{"uid":"s1#0000000000000000"}}`, false},
		{"no marker", `{"metadata":{"uid":"s1"}}`, `{"metadata":{"uid":"s1"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := []byte(tt.value)
			if got := replacePlaceholder(value, fingerprint); got != tt.replaced {
				t.Errorf("replacePlaceholder returned %t, want %t", got, tt.replaced)
			}
			if string(value) != tt.want {
				t.Errorf("value %s, want %s", value, tt.want)
			}
		})
	}
}
