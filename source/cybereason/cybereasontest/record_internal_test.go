package cybereasontest

import (
	"testing"
	"time"
)

// The generator indexes sensors from their Go values, whereas LoadTenant and Advance decode the
// JSON. Both must give the same filter values, or queries would return other results after Advance.
func TestGeneratedSensorIndexMatchesDecodedIndex(t *testing.T) {
	g := newGenerator(5, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	for i := range 300 {
		generated := mustSensorRecord(g.sensor(i))
		decoded, err := newSensorRecord(generated.raw)
		if err != nil {
			t.Fatalf("sensor %d: %v", i, err)
		}
		if decoded.id != generated.id {
			t.Fatalf("sensor %d: decoded id %q, generated %q", i, decoded.id, generated.id)
		}
		for f, name := range filterableFields {
			if decoded.fields[f] != generated.fields[f] {
				t.Errorf("sensor %s: %s decodes as %q, generator indexed %q", generated.id, name, decoded.fields[f], generated.fields[f])
			}
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"deflate, GZIP;q=0.8", true},
		{"gzip;q=0", false},
		{"br", false},
	}
	for _, test := range tests {
		if got := acceptsGzip(test.header); got != test.want {
			t.Errorf("acceptsGzip(%q) = %t, want %t", test.header, got, test.want)
		}
	}
}
