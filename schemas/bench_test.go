package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path"
	"testing"
)

// BenchmarkFingerprint measures the fingerprint of a full asset record of about 4 KB, with its
// keys in the order of the example file and with its keys sorted, as enrich writes records.
func BenchmarkFingerprint(b *testing.B) {
	data, err := os.ReadFile(path.Join("testdata", Version, "asset-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	var asset Asset
	if err := json.Unmarshal(data, &asset); err != nil {
		b.Fatal(err)
	}
	sorted, err := json.Marshal(asset)
	if err != nil {
		b.Fatal(err)
	}

	for _, input := range []struct {
		name string
		data []byte
	}{{"example", data}, {"sorted", sorted}} {
		b.Run(input.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Fingerprint(KindAsset, input.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkValidateAsset measures the validation of a full asset record of about 4 KB.
func BenchmarkValidateAsset(b *testing.B) {
	benchmarkValidate(b, KindAsset, "asset-full.json")
}

// BenchmarkValidateFinding measures the validation of a detailed MalOp finding record of about
// 7 KB.
func BenchmarkValidateFinding(b *testing.B) {
	benchmarkValidate(b, KindFinding, "finding-edr-detailed.json")
}

func benchmarkValidate(b *testing.B, kind Kind, example string) {
	data, err := os.ReadFile(path.Join("testdata", Version, example))
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Validate(kind, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeAsset compares AppendJSON with encoding/json on a full asset record of about 4 KB.
func BenchmarkEncodeAsset(b *testing.B) {
	data, err := os.ReadFile(path.Join("testdata", Version, "asset-full.json"))
	if err != nil {
		b.Fatal(err)
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var asset Asset
	if err := decoder.Decode(&asset); err != nil {
		b.Fatal(err)
	}

	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := asset.AppendJSON(make([]byte, 0, 4096)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf bytes.Buffer
			encoder := json.NewEncoder(&buf)
			encoder.SetEscapeHTML(false)
			if err := encoder.Encode(&asset); err != nil {
				b.Fatal(err)
			}
		}
	})
}
