package fastschema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"unicode/utf8"
)

// node is one compiled schema. Absent keywords have their zero value, except minItems and
// minLength, which are -1 when absent.
type node struct {
	location string
	always   *bool // set for the boolean schemas true and false

	types                 typeSet
	constant              *any
	constantInteger       *int64 // set when constant is an integer of at most 18 digits
	enum                  *enum
	format                func(any) error
	ref                   *node
	anyOf                 []*node
	required              []string
	requiredIndex         map[string]int // index of each name in required
	properties            map[string]*node
	unevaluatedProperties *node
	items                 *node
	minItems              int
	uniqueItems           bool
	minLength             int
	pattern               *regexp.Regexp
	minimum               *number

	checked bool // checkCycles visited the node
	refOnly bool // $ref is the only keyword that validates, set by checkCycles
}

// typeSet is a set of JSON Schema types, one bit each.
type typeSet uint8

const (
	typeNull typeSet = 1 << iota
	typeBoolean
	typeObject
	typeArray
	typeNumber
	typeInteger
	typeString
)

var typeNames = map[string]typeSet{
	"null": typeNull, "boolean": typeBoolean, "object": typeObject, "array": typeArray,
	"number": typeNumber, "integer": typeInteger, "string": typeString,
}

// valid reports whether value is valid against n. It stops at the first failed keyword.
func (n *node) valid(value any) bool {
	if n.always != nil {
		return *n.always
	}
	if !n.validOwn(value) {
		return false
	}
	if n.ref != nil && !n.ref.valid(value) {
		return false
	}
	return n.anyOf == nil || n.validAnyOf(value)
}

// validOwn checks value against the keywords of n other than $ref and anyOf.
func (n *node) validOwn(value any) bool {
	if !n.validType(value) {
		return false
	}
	if n.constant != nil && !equal(value, *n.constant) {
		return false
	}
	if n.enum != nil && !n.enum.contains(value) {
		return false
	}
	if _, isString := value.(string); isString && n.format != nil && n.format(value) != nil {
		return false
	}

	switch v := value.(type) {
	case map[string]any:
		return n.validObject(v)
	case []any:
		return n.validArray(v)
	case string:
		return n.validString(v)
	}
	return n.minimum == nil || n.validMinimum(value)
}

// validType also rejects a Go value that JSON cannot produce, as the library does.
func (n *node) validType(value any) bool {
	t, ok := typeOf(value)
	if !ok {
		return false
	}
	if n.types == 0 || n.types&t != 0 {
		return true
	}
	if n.types&typeInteger == 0 || t != typeNumber {
		return false
	}
	x, ok := numberOf(value)
	return ok && x.isInteger()
}

func (n *node) validAnyOf(value any) bool {
	for _, branch := range n.anyOf {
		if branch.valid(value) {
			return true
		}
	}
	return false
}

func (n *node) validObject(object map[string]any) bool {
	for _, name := range n.required {
		if _, ok := object[name]; !ok {
			return false
		}
	}
	for name, member := range object {
		if child, ok := n.properties[name]; ok {
			if !child.valid(member) {
				return false
			}
			continue
		}
		if n.unevaluatedProperties != nil && !n.evaluatedInPlace(object, name) && !n.unevaluatedProperties.valid(member) {
			return false
		}
	}
	return true
}

// evaluates reports whether n, valid on object, evaluates the member name: draft 2020-12 annotations
// of properties and unevaluatedProperties, collected through $ref and the anyOf branches that
// succeed.
func (n *node) evaluates(object map[string]any, name string) bool {
	if n.always != nil {
		return false
	}
	if _, ok := n.properties[name]; ok || n.unevaluatedProperties != nil {
		return true
	}
	return n.evaluatedInPlace(object, name)
}

// evaluatedInPlace reports whether a subschema that n applies to the object itself, its $ref or an
// anyOf branch that succeeds, evaluates the member name. n is assumed valid apart from its
// unevaluatedProperties, because when $ref fails n fails whatever the annotations.
func (n *node) evaluatedInPlace(object map[string]any, name string) bool {
	if n.ref != nil && n.ref.evaluates(object, name) {
		return true
	}
	for _, branch := range n.anyOf {
		if branch.evaluatesAny() && branch.valid(object) && branch.evaluates(object, name) {
			return true
		}
	}
	return false
}

// evaluatesAny reports whether n can evaluate any member at all, so that anyOf branches that only
// check required members are not validated a second time.
func (n *node) evaluatesAny() bool {
	if n.properties != nil || n.unevaluatedProperties != nil {
		return true
	}
	if n.ref != nil && n.ref.evaluatesAny() {
		return true
	}
	for _, branch := range n.anyOf {
		if branch.evaluatesAny() {
			return true
		}
	}
	return false
}

func (n *node) validArray(array []any) bool {
	if n.minItems >= 0 && len(array) < n.minItems {
		return false
	}
	if n.uniqueItems && hasDuplicates(array) {
		return false
	}
	if n.items != nil {
		for _, element := range array {
			if !n.items.valid(element) {
				return false
			}
		}
	}
	return true
}

// validString counts length in Unicode code points, as the library does.
func (n *node) validString(s string) bool {
	if n.minLength >= 0 && utf8.RuneCountInString(s) < n.minLength {
		return false
	}
	return n.pattern == nil || n.pattern.MatchString(s)
}

// validMinimum rejects a number that big.Rat cannot parse. The library panics on one.
func (n *node) validMinimum(value any) bool {
	if !isGoNumber(value) {
		return true // minimum applies to numbers only
	}
	x, ok := numberOf(value)
	return ok && x.cmp(*n.minimum) >= 0
}

// typeOf returns the JSON type of a decoded value, or false for a Go value that is not JSON, such
// as a NaN float or a struct.
func typeOf(value any) (typeSet, bool) {
	switch v := value.(type) {
	case nil:
		return typeNull, true
	case bool:
		return typeBoolean, true
	case string:
		return typeString, true
	case json.Number:
		return typeNumber, true
	case map[string]any:
		return typeObject, true
	case []any:
		return typeArray, true
	case float64:
		return typeNumber, v == v && v-v == 0 // neither NaN nor infinite
	case float32:
		return typeNumber, v == v && v-v == 0
	}
	if isGoNumber(value) {
		return typeNumber, true
	}
	return 0, false
}

func isGoNumber(value any) bool {
	switch value.(type) {
	case json.Number, float32, float64, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return true
	}
	return false
}

// numberOf returns the value of a number, or false for a value that is no number or a number that
// big.Rat cannot parse. Go numbers are read from their fmt.Sprint text, as the library does.
func numberOf(value any) (number, bool) {
	switch v := value.(type) {
	case json.Number:
		return parseNumber(v)
	case string, bool, nil, map[string]any, []any:
		return number{}, false
	}
	if !isGoNumber(value) {
		return number{}, false
	}
	rational, ok := new(big.Rat).SetString(fmt.Sprint(value))
	if !ok {
		return number{}, false
	}
	return number{rational: rational}, true
}

// equal compares two decoded values as the library does: numbers by their exact value, whatever
// their text, objects by their members regardless of order.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for name, member := range x {
			other, ok := y[name]
			if !ok || !equal(member, other) {
				return false
			}
		}
		return true
	}
	if t, ok := typeOf(b); !ok || t != typeNumber {
		return false
	}
	x, ok := numberOf(a)
	if !ok {
		return false
	}
	y, ok := numberOf(b)
	return ok && x.cmp(y) == 0
}

// hasDuplicates reports whether two elements of array are equal. Strings go through a set, other
// values are compared pairwise.
func hasDuplicates(array []any) bool {
	if len(array) < 2 {
		return false
	}
	if len(array) <= 8 {
		return hasPairwiseDuplicates(array)
	}
	if texts, ok := allStrings(array); ok {
		seen := make(map[string]struct{}, len(texts))
		for _, s := range texts {
			if _, ok := seen[s]; ok {
				return true
			}
			seen[s] = struct{}{}
		}
		return false
	}
	return hasPairwiseDuplicates(array)
}

func hasPairwiseDuplicates(array []any) bool {
	for i := 1; i < len(array); i++ {
		for j := 0; j < i; j++ {
			if equal(array[i], array[j]) {
				return true
			}
		}
	}
	return false
}

func allStrings(array []any) ([]string, bool) {
	texts := make([]string, 0, len(array))
	for _, element := range array {
		s, ok := element.(string)
		if !ok {
			return nil, false
		}
		texts = append(texts, s)
	}
	return texts, true
}

// enum is the enum keyword, with a set for the common case of only strings or only small integers.
type enum struct {
	values   []any
	strings  map[string]struct{} // set when every value is a string
	integers map[int64]struct{}  // set when every value is an integer of at most 18 digits
}

func newEnum(values []any) *enum {
	e := &enum{values: values}
	texts := make(map[string]struct{}, len(values))
	integers := make(map[int64]struct{}, len(values))
	for _, value := range values {
		switch v := value.(type) {
		case string:
			texts[v] = struct{}{}
		case json.Number:
			if x, ok := parseSmallInteger(string(v)); ok {
				integers[x] = struct{}{}
			}
		}
	}
	switch len(values) {
	case len(texts):
		e.strings = texts
	case len(integers):
		e.integers = integers
	}
	return e
}

func (e *enum) contains(value any) bool {
	switch {
	case e.strings != nil:
		s, ok := value.(string)
		if !ok {
			return false
		}
		_, ok = e.strings[s]
		return ok
	case e.integers != nil:
		if n, ok := value.(json.Number); ok {
			if x, ok := parseSmallInteger(string(n)); ok {
				_, ok = e.integers[x]
				return ok
			}
		}
	}
	for _, candidate := range e.values {
		if equal(value, candidate) {
			return true
		}
	}
	return false
}
