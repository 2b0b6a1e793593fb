package schemas

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// verdicts returns whether the fast validator and the library accept doc as a record of kind.
// libraryPanicked is true when the library panicked instead of returning.
func verdicts(v *Validator, kind Kind, doc any) (fast, library, libraryPanicked bool) {
	fast = v.fast[kind].Valid(doc)
	func() {
		defer func() {
			if recover() != nil {
				libraryPanicked = true
			}
		}()
		library = v.schemas[kind].Validate(doc) == nil
	}()
	return fast, library, libraryPanicked
}

// checkAgreement fails the test when the fast validator and the library disagree on value.
func checkAgreement(t testing.TB, v *Validator, kind Kind, name string, value []byte) {
	t.Helper()
	text := v.fast[kind].ValidJSON(value)
	doc, err := decodeJSON(value)
	if err != nil {
		if text {
			t.Errorf("%s (%s, schemas %s): the text validator accepts invalid JSON (%v): %q", name, kind, v.version, err, value)
		}
		return // Validate reports invalid JSON before either validator runs
	}
	fast, library, panicked := verdicts(v, kind, doc)
	if text && !(fast && (library || panicked)) {
		t.Errorf("%s (%s, schemas %s): the text validator accepts, fast validator valid=%t, library valid=%t: %s", name, kind, v.version, fast, library, value)
	}
	if panicked {
		if fast {
			t.Errorf("%s (%s, schemas %s): the library panicked and the fast validator accepts: %s", name, kind, v.version, value)
		}
		return
	}
	if fast != library {
		t.Errorf("%s (%s, schemas %s): fast validator valid=%t, library valid=%t: %s", name, kind, v.version, fast, library, value)
	}
}

// versionValidators returns a validator for every embedded version, keyed by version.
func versionValidators(t testing.TB) map[string]*Validator {
	t.Helper()
	validators := make(map[string]*Validator)
	for _, version := range embeddedVersions(t) {
		v, err := newValidator(version)
		if err != nil {
			t.Fatalf("validator of version %s: %v", version, err)
		}
		validators[version] = v
	}
	return validators
}

func TestFastValidatorAgreesOnExamples(t *testing.T) {
	validators := versionValidators(t)
	for p, data := range examples(t) {
		kind := exampleKind(p)
		for _, v := range validators {
			if _, ok := v.schemas[kind]; ok {
				checkAgreement(t, v, kind, p, data)
			}
		}
	}
}

func TestFastValidatorAgreesOnBrokenRecords(t *testing.T) {
	v := newTestValidator(t)
	for _, tt := range brokenRecords {
		value := tt.build(t)
		checkAgreement(t, v, exampleKind(tt.example), tt.name, value)
		doc, err := decodeJSON(value)
		if err != nil {
			t.Fatal(err)
		}
		if v.fast[exampleKind(tt.example)].Valid(doc) {
			t.Errorf("%s: fast validator accepts the broken record", tt.name)
		}
	}
}

// TestFastValidatorAgreesOnMutations checks both validators on every mutation of every example
// record of Version that mutations makes: each member removed, each value replaced by values of
// other types, numbers around each bound, strings around each pattern and format, and an extra
// member in each object. The schemas of older versions differ only in their descriptions, and
// TestFastValidatorAgreesOnExamples checks their examples.
func TestFastValidatorAgreesOnMutations(t *testing.T) {
	v := newTestValidator(t)
	paths, err := filepath.Glob(filepath.Join("testdata", Version, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	total, accepted := 0, 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		record, err := decodeJSON(data)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		kind := exampleKind(p)

		for _, m := range mutations("", "", record) {
			total++
			fast, library, panicked := verdicts(v, kind, m.value)
			if panicked {
				t.Errorf("%s %s: the library panicked", p, m.name)
				continue
			}
			if fast != library {
				t.Errorf("%s %s: fast validator valid=%t, library valid=%t", p, m.name, fast, library)
			}
			if text := v.fast[kind].ValidJSON(marshal(t, m.value)); text != library {
				t.Errorf("%s %s: text validator valid=%t, library valid=%t", p, m.name, text, library)
			}
			if fast {
				accepted++
			}
		}
	}
	t.Logf("%d mutated records, %d valid", total, accepted)
	if accepted == 0 || accepted == total {
		t.Errorf("%d of %d mutated records are valid, want both valid and invalid ones", accepted, total)
	}
}

// mutation is a record with one change.
type mutation struct {
	name  string // JSON pointer of the change and what it is
	value any
}

// mutations returns the changed copies of value, the member key of its parent object ("" for
// others) at JSON pointer pointer. Unchanged parts are shared, not copied.
func mutations(pointer, key string, value any) []mutation {
	var out []mutation
	add := func(what string, changed any) {
		out = append(out, mutation{name: pointer + " " + what, value: changed})
	}
	for _, other := range []any{nil, true, "x", json.Number("1"), []any{}, map[string]any{}} {
		if fmt.Sprintf("%T", other) != fmt.Sprintf("%T", value) {
			add(fmt.Sprintf("as %T", other), other)
		}
	}

	switch v := value.(type) {
	case map[string]any:
		out = append(out, objectMutations(pointer, v)...)
	case []any:
		out = append(out, arrayMutations(pointer, v)...)
	case string:
		for _, s := range stringVariants(key, v) {
			add(fmt.Sprintf("= %q", s), s)
		}
	case json.Number:
		for _, n := range numberVariants(v) {
			add("= "+n, json.Number(n))
		}
		add("as string", string(v))
	case bool:
		add("negated", !v)
	}
	return out
}

func objectMutations(pointer string, object map[string]any) []mutation {
	var out []mutation
	with := func(key string, member any, remove bool) map[string]any {
		changed := make(map[string]any, len(object)+1)
		for k, m := range object {
			changed[k] = m
		}
		if remove {
			delete(changed, key)
		} else {
			changed[key] = member
		}
		return changed
	}

	out = append(out, mutation{pointer + " extra member", with("x_extra", "x", false)})
	out = append(out, mutation{pointer + " extra object member", with("x_extra", map[string]any{}, false)})
	keys := make([]string, 0, len(object))
	for key := range object {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		out = append(out, mutation{pointer + "/" + key + " removed", with(key, nil, true)})
		for _, m := range mutations(pointer+"/"+key, key, object[key]) {
			out = append(out, mutation{m.name, with(key, m.value, false)})
		}
	}
	return out
}

func arrayMutations(pointer string, array []any) []mutation {
	var out []mutation
	with := func(elements ...any) []any {
		return append(slices.Clone(array), elements...)
	}
	out = append(out, mutation{pointer + " extra string", with("x")})
	out = append(out, mutation{pointer + " extra object", with(map[string]any{})})
	if len(array) == 0 {
		return out
	}
	out = append(out, mutation{pointer + " first element repeated", with(array[0])})
	out = append(out, mutation{pointer + " emptied", []any{}})
	for i, element := range array[:min(len(array), 2)] {
		for _, m := range mutations(fmt.Sprintf("%s/%d", pointer, i), "", element) {
			changed := slices.Clone(array)
			changed[i] = m.value
			out = append(out, mutation{m.name, changed})
		}
	}
	return out
}

// numberVariants returns numbers around n and other spellings of its value.
func numberVariants(n json.Number) []string {
	variants := []string{"0", "-0", "1", "-1", "0.5", "1.0", "1e0", "1e1000001", "99", "99.0", "1E2"}
	if i, err := n.Int64(); err == nil {
		variants = append(variants,
			fmt.Sprint(i-1), fmt.Sprint(i+1), fmt.Sprint(-i),
			fmt.Sprintf("%d.0", i), fmt.Sprintf("%d.5", i), fmt.Sprintf("%d.00000000000000000001", i),
			fmt.Sprintf("%de0", i),
		)
		if i != 0 {
			variants = append(variants, fmt.Sprintf("%d0e-1", i))
		}
	} else {
		variants = append(variants, string(n)+"1", "-"+strings.TrimPrefix(string(n), "-"))
	}
	return variants
}

// stringVariants returns strings near s for any string, and values around the pattern or format
// that the schemas give the member key.
func stringVariants(key, s string) []string {
	variants := []string{"", "é", s + "x", strings.ToUpper(s), s + "\u00e9"}
	if len(s) > 1 {
		variants = append(variants, s[1:], s[:len(s)-1])
	}
	switch key {
	case "ip":
		variants = append(variants, "1.2.3.4", "255.255.255.255", "256.1.1.1", "01.2.3.4", "+1.2.3.4",
			"-0.0.0.0", "1.2.3", "1.2.3.4.5", "::1", "fe80::1%eth0", "2001:db8::1", "1:2:3:4:5:6:7:8:9",
			"::ffff:1.2.3.4", "1.2.3.4 ")
	case "mac":
		variants = append(variants, "3c:52:82:1a:9f:07", "3C-52-82-1A-9F-07", "3c:52:82:1a:9f", "3c:52:82:1a:9f:0g",
			"3c:52:82:1a:9f:07:00", "3c52.821a.9f07", "3c:52:82:1a:9f:07\n")
	case "schema_version":
		variants = append(variants, "1.0.0", "1.10.200", "2.0.0", "1.1", "1.1.0-rc1", "01.1.0", "1.1.0\n")
	case "asset_uid", "finding_uid":
		variants = append(variants, "cybereason:t:x", "cybereason::x", "cybereason:t:", "cybereason:t:malop:x",
			"cybereason:t:malware:", "cybereason:t:policy:x", "Cybereason:t:x", "cybereason:t:malop:x\n")
	case "src_url":
		variants = append(variants, "https://console.example.net/#/malop/1", "http://[::1]:8443/x", "http://::1/x",
			"mailto:soc@example.net", "/relative/path", "https://exa mple.net", "urn:x", "http://[fe80::1%25eth0]/")
	}
	return variants
}

// FuzzValidatorAgreesWithLibrary checks that the fast validator and the library agree on whether
// any JSON document is a valid record, for every kind and embedded version.
func FuzzValidatorAgreesWithLibrary(f *testing.F) {
	for _, data := range examples(f) {
		f.Add(data)
	}
	for _, broken := range brokenRecords {
		f.Add(broken.build(f))
	}
	validators := versionValidators(f)

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range validators {
			for kind := range v.schemas {
				checkAgreement(t, v, kind, "fuzz input", data)
			}
		}
	})
}
