package schemas

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fingerprintExamples returns the example records of Version that the fingerprint tests use.
func fingerprintExamples() []string {
	return []string{"asset-full.json", "asset-minimal.json", "finding-edr.json", "finding-closed.json", "finding-edr-detailed.json", "finding-malware.json"}
}

func TestFingerprintFormatAndDeterminism(t *testing.T) {
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, name := range fingerprintExamples() {
		t.Run(name, func(t *testing.T) {
			kind := exampleKind(name)
			record := loadExample(t, name)
			compact := marshal(t, record)
			indented, err := json.MarshalIndent(record, "", "    ")
			if err != nil {
				t.Fatal(err)
			}

			first := mustFingerprint(t, kind, compact)
			second := mustFingerprint(t, kind, indented)

			if !hex16.MatchString(first) {
				t.Errorf("fingerprint %q is not 16 lower-case hex digits", first)
			}
			if first != second {
				t.Errorf("whitespace changed the fingerprint: %s vs %s", first, second)
			}
		})
	}
}

func TestFingerprintIgnoresKeyOrder(t *testing.T) {
	a := `{"schema_version":"1.0.0","time":5,"metadata":{"uid":"x","tenant_uid":"t"},"protection":{"is_effective":true,"lifecycle_state":"active"}}`
	b := `{"protection":{"lifecycle_state":"active","is_effective":true},"metadata":{"tenant_uid":"t","uid":"y"},"time":7,"schema_version":"1.0.0"}`

	if fa, fb := mustFingerprint(t, KindAsset, []byte(a)), mustFingerprint(t, KindAsset, []byte(b)); fa != fb {
		t.Errorf("key order or volatile fields changed the fingerprint: %s vs %s", fa, fb)
	}
}

// TestFingerprintIgnoresVolatileFields changes, adds or removes each volatile field in turn.
func TestFingerprintIgnoresVolatileFields(t *testing.T) {
	for _, name := range fingerprintExamples() {
		kind := exampleKind(name)
		base := mustFingerprint(t, kind, marshal(t, loadExample(t, name)))
		for i, pointer := range VolatileFields(kind) {
			t.Run(name+pointer, func(t *testing.T) {
				changed := loadExample(t, name)
				setCreating(t, changed, pointer, fmt.Sprintf("changed-%d", i))
				removed := loadExample(t, name)
				removePointer(removed, pointer)

				if got := mustFingerprint(t, kind, marshal(t, changed)); got != base {
					t.Errorf("changing %s changed the fingerprint: %s, want %s", pointer, got, base)
				}
				if got := mustFingerprint(t, kind, marshal(t, removed)); got != base {
					t.Errorf("removing %s changed the fingerprint: %s, want %s", pointer, got, base)
				}
			})
		}
	}
}

// TestFingerprintChangesWithStableFields mutates every leaf of the examples that is not volatile.
func TestFingerprintChangesWithStableFields(t *testing.T) {
	for _, name := range fingerprintExamples() {
		kind := exampleKind(name)
		base := mustFingerprint(t, kind, marshal(t, loadExample(t, name)))
		var pointers []string
		collectLeaves(loadExample(t, name), "", &pointers)
		sort.Strings(pointers)
		tested := 0
		for _, pointer := range pointers {
			if isVolatile(kind, pointer) {
				continue
			}
			tested++
			t.Run(name+pointer, func(t *testing.T) {
				record := loadExample(t, name)
				mutated := mutateAt(t, record, splitPointer(pointer), mutateLeaf)

				if got := mustFingerprint(t, kind, marshal(t, mutated)); got == base {
					t.Errorf("changing %s kept the fingerprint %s", pointer, got)
				}
			})
		}
		if tested < 5 {
			t.Errorf("%s: only %d stable fields were mutated", name, tested)
		}
	}
}

func TestFingerprintChangesWhenStableFieldAdded(t *testing.T) {
	record := loadExample(t, "asset-full.json")
	base := mustFingerprint(t, KindAsset, marshal(t, record))
	setCreating(t, record, "/unmapped/cybereason/department", "Treasury")

	if got := mustFingerprint(t, KindAsset, marshal(t, record)); got == base {
		t.Errorf("adding unmapped/cybereason/department kept the fingerprint %s", got)
	}
}

func TestFingerprintRejectsBadInput(t *testing.T) {
	tests := []struct {
		name  string
		kind  Kind
		value string
		want  string
	}{
		{"unknown kind", Kind("policy"), `{}`, `unknown record kind "policy"`},
		{"not JSON", KindAsset, `{"time"`, "decode JSON object"},
		{"array", KindAsset, `[1]`, "decode JSON object"},
		{"null", KindFinding, `null`, "value is null"},
		{"trailing data", KindFinding, `{} []`, "unexpected data after the object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Fingerprint(tt.kind, []byte(tt.value))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Fingerprint = %q, %v; want an error containing %q", got, err, tt.want)
			}
		})
	}
}

func TestVolatileFieldsUnknownKind(t *testing.T) {
	if got := VolatileFields(Kind("policy")); got != nil {
		t.Errorf("VolatileFields(policy) = %v, want nil", got)
	}
}

func mustFingerprint(t *testing.T, kind Kind, value []byte) string {
	t.Helper()
	fingerprint, err := Fingerprint(kind, value)
	if err != nil {
		t.Fatalf("Fingerprint: %v", err)
	}
	return fingerprint
}

// isVolatile reports whether pointer is a volatile field or lies below one; a "*" token of a
// volatile field matches any array index.
func isVolatile(kind Kind, pointer string) bool {
	tokens := splitPointer(pointer)
	for _, volatile := range VolatileFields(kind) {
		pattern := splitPointer(volatile)
		if len(tokens) < len(pattern) {
			continue
		}
		matched := true
		for i, token := range pattern {
			if token != tokens[i] && token != "*" {
				matched = false
				break
			}
		}
		if matched {
			return true
		}
	}
	return false
}

// setCreating sets a member, creating the objects on its path that are missing. A "*" token sets
// the member in every element of an existing array.
func setCreating(t *testing.T, record map[string]any, pointer string, value any) {
	t.Helper()
	setTokens(record, splitPointer(pointer), value)
}

func setTokens(object map[string]any, tokens []string, value any) {
	if len(tokens) == 1 {
		object[tokens[0]] = value
		return
	}
	if tokens[1] == "*" {
		elements, _ := object[tokens[0]].([]any)
		for _, element := range elements {
			if elementObject, ok := element.(map[string]any); ok {
				setTokens(elementObject, tokens[2:], value)
			}
		}
		return
	}
	child, ok := object[tokens[0]].(map[string]any)
	if !ok {
		child = map[string]any{}
		object[tokens[0]] = child
	}
	setTokens(child, tokens[1:], value)
}

func splitPointer(pointer string) []string {
	return strings.Split(strings.TrimPrefix(pointer, "/"), "/")
}

// collectLeaves lists the pointers of every scalar, empty array and empty object in value.
func collectLeaves(value any, pointer string, out *[]string) {
	switch v := value.(type) {
	case map[string]any:
		if len(v) == 0 {
			*out = append(*out, pointer)
		}
		for key, child := range v {
			collectLeaves(child, pointer+"/"+key, out)
		}
	case []any:
		if len(v) == 0 {
			*out = append(*out, pointer)
		}
		for i, child := range v {
			collectLeaves(child, pointer+"/"+strconv.Itoa(i), out)
		}
	default:
		*out = append(*out, pointer)
	}
}

// mutateAt replaces the value at tokens with fn(value) and returns the updated value.
func mutateAt(t *testing.T, value any, tokens []string, fn func(any) any) any {
	t.Helper()
	if len(tokens) == 0 {
		return fn(value)
	}
	switch v := value.(type) {
	case map[string]any:
		v[tokens[0]] = mutateAt(t, v[tokens[0]], tokens[1:], fn)
		return v
	case []any:
		i, err := strconv.Atoi(tokens[0])
		if err != nil || i >= len(v) {
			t.Fatalf("bad array index %q", tokens[0])
		}
		v[i] = mutateAt(t, v[i], tokens[1:], fn)
		return v
	}
	t.Fatalf("cannot descend into %T with %q", value, tokens[0])
	return nil
}

func mutateLeaf(value any) any {
	switch v := value.(type) {
	case string:
		return v + "x"
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return json.Number(strconv.FormatInt(i+1, 10))
		}
		f, _ := v.Float64()
		return json.Number(strconv.FormatFloat(f+1, 'g', -1, 64))
	case bool:
		return !v
	case []any:
		return append(v, "x")
	case map[string]any:
		v["x"] = "x"
		return v
	}
	return "x"
}

// TestFingerprintConcurrentCalls checks that concurrent calls, which share pooled buffers and
// encoders, each get the fingerprint of their own record. The inputs mix the streaming and the
// decoding paths, records larger than the pooled buffers, and invalid documents.
func TestFingerprintConcurrentCalls(t *testing.T) {
	large := `{"a":"` + strings.Repeat("x", 100<<10) + `","b":1}`
	inputs := []string{large, `{"b":{"z":1,"y":2},"a":[{"d":1,"c":2}]}`, `{"a":1,"a":2}`, `{"a":`, `[]`}
	inputs = append(inputs, removalSamples...)
	for _, name := range fingerprintExamples() {
		data, err := os.ReadFile(path.Join("testdata", Version, name))
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(data), string(marshal(t, loadExample(t, name))))
	}

	type result struct {
		fingerprint string
		err         error
	}
	want := make([]result, len(inputs))
	for i, input := range inputs {
		want[i].fingerprint, want[i].err = Fingerprint(KindFinding, []byte(input))
	}

	const goroutines, rounds = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for round := range rounds {
				for j := range inputs {
					i := (j + g*7 + round) % len(inputs) // a different order in each goroutine
					got, err := Fingerprint(KindFinding, []byte(inputs[i]))
					if got != want[i].fingerprint || (err == nil) != (want[i].err == nil) {
						errs <- fmt.Errorf("input %d: fingerprint %q (%v), alone it is %q (%v)", i, got, err, want[i].fingerprint, want[i].err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
