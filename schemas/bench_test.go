package schemas

import (
	"os"
	"path"
	"testing"
)

// BenchmarkFingerprint measures the fingerprint of a full asset record of about 4 KB.
func BenchmarkFingerprint(b *testing.B) {
	data, err := os.ReadFile(path.Join("testdata", Version, "asset-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Fingerprint(KindAsset, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidate measures the validation of a full asset record of about 4 KB.
func BenchmarkValidate(b *testing.B) {
	data, err := os.ReadFile(path.Join("testdata", Version, "asset-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(KindAsset, data); err != nil {
			b.Fatal(err)
		}
	}
}
