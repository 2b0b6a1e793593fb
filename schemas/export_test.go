package schemas

import "testing"

// CheckFastValidator fails the test when the fast validator and the library disagree on value or,
// when mutate is set, on any mutation of it that mutations makes. It lets the external tests of
// this package check records that other packages produce.
func CheckFastValidator(t testing.TB, v *Validator, kind Kind, name string, value []byte, mutate bool) {
	t.Helper()
	checkAgreement(t, v, kind, name, value)
	if !mutate {
		return
	}
	doc, err := decodeJSON(value)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, m := range mutations("", "", doc) {
		fast, library, panicked := verdicts(v, kind, m.value)
		if !panicked && fast != library {
			t.Errorf("%s %s: fast validator valid=%t, library valid=%t", name, m.name, fast, library)
		}
		if text := v.fast[kind].ValidJSON(marshal(t, m.value)); !panicked && text != library {
			t.Errorf("%s %s: text validator valid=%t, library valid=%t", name, m.name, text, library)
		}
	}
}
