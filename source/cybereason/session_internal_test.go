package cybereason

import "testing"

func TestRedactSessionID(t *testing.T) {
	tests := []struct {
		name, location, want string
	}{
		{"no session id", "/login.html?error", "/login.html?error"},
		{"before the query", "/login.html;jsessionid=ABC123?error", "/login.html;jsessionid=REDACTED?error"},
		{"at the end", "/login.html;jsessionid=ABC123", "/login.html;jsessionid=REDACTED"},
		{"upper case, before a fragment", "/;JSESSIONID=ABC123#/current?", "/;JSESSIONID=REDACTED#/current?"},
		{"two ids", "/a;jsessionid=A1/b;jsessionid=B2", "/a;jsessionid=REDACTED/b;jsessionid=REDACTED"},
		{"absolute URL", "https://acme.example/login.html;jsessionid=ABC123;other=1", "https://acme.example/login.html;jsessionid=REDACTED;other=1"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if got := redactSessionID(test.location); got != test.want {
				t.Errorf("redactSessionID(%q) = %q, want %q", test.location, got, test.want)
			}
		})
	}
}
