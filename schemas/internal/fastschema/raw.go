package fastschema

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// maxRawDepth is the nesting depth past which ValidJSON gives up and leaves the document to the
// decoding path.
const maxRawDepth = 1000

// ValidJSON reports whether data is exactly one JSON document, valid against the schema, without
// decoding it into maps. It returns false both for an invalid document and for one it leaves to
// Valid: a member name with escapes or non-ASCII bytes, const or enum on an object or array,
// uniqueItems on more than maxRawUniqueItems elements or on elements other than strings and
// integers of at most 18 digits, and nesting beyond maxRawDepth. A true result always matches Valid on the document decoded with UseNumber, where
// a repeated member name keeps its last value: ValidJSON requires every occurrence to be valid.
func (s *Schema) ValidJSON(data []byte) bool {
	sc := scanner{data: data}
	if !s.root.validRaw(&sc) {
		return false
	}
	sc.skipSpace()
	return sc.pos == len(sc.data)
}

// scanner reads one JSON text. Its methods return false on a syntax error, and they leave pos
// anywhere then.
type scanner struct {
	data  []byte
	pos   int
	depth int
}

func (sc *scanner) skipSpace() {
	for sc.pos < len(sc.data) {
		switch sc.data[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value, or 0 at the end of data.
func (sc *scanner) peek() byte {
	sc.skipSpace()
	if sc.pos >= len(sc.data) {
		return 0
	}
	return sc.data[sc.pos]
}

// skipValue checks the syntax of the next value and moves past it.
func (sc *scanner) skipValue() bool {
	switch sc.peek() {
	case '{':
		return sc.skipObject()
	case '[':
		return sc.skipArray()
	case '"':
		_, _, ok := sc.stringToken()
		return ok
	case 't':
		return sc.literal("true")
	case 'f':
		return sc.literal("false")
	case 'n':
		return sc.literal("null")
	}
	_, ok := sc.numberToken()
	return ok
}

func (sc *scanner) skipObject() bool {
	return sc.members(func(_ []byte) bool { return sc.skipValue() })
}

func (sc *scanner) skipArray() bool {
	return sc.elements(func() bool { return sc.skipValue() })
}

// members scans an object, calling member with each plain member name while pos is at its value.
// member must move past the value. It returns false for a name that is not plain.
func (sc *scanner) members(member func(name []byte) bool) bool {
	sc.depth++
	if sc.depth > maxRawDepth {
		return false
	}
	sc.pos++ // '{'
	if sc.peek() == '}' {
		sc.pos++
		sc.depth--
		return true
	}
	for {
		if sc.peek() != '"' {
			return false
		}
		name, plain, ok := sc.stringToken()
		if !ok || !plain {
			return false
		}
		if sc.peek() != ':' {
			return false
		}
		sc.pos++
		if !member(name[1 : len(name)-1]) {
			return false
		}
		switch sc.peek() {
		case ',':
			sc.pos++
		case '}':
			sc.pos++
			sc.depth--
			return true
		default:
			return false
		}
	}
}

// elements scans an array, calling element while pos is at each element. element must move past
// the element.
func (sc *scanner) elements(element func() bool) bool {
	sc.depth++
	if sc.depth > maxRawDepth {
		return false
	}
	sc.pos++ // '['
	if sc.peek() == ']' {
		sc.pos++
		sc.depth--
		return true
	}
	for {
		if !element() {
			return false
		}
		switch sc.peek() {
		case ',':
			sc.pos++
		case ']':
			sc.pos++
			sc.depth--
			return true
		default:
			return false
		}
	}
}

func (sc *scanner) literal(word string) bool {
	if !bytes.HasPrefix(sc.data[sc.pos:], []byte(word)) {
		return false
	}
	sc.pos += len(word)
	return true
}

// stringToken moves past the string at pos and returns it with its quotes. plain is true for a
// string of printable ASCII without escapes, whose content is its value.
func (sc *scanner) stringToken() (token []byte, plain, ok bool) {
	start := sc.pos
	sc.pos++ // '"'
	plain = true
	for sc.pos < len(sc.data) {
		c := sc.data[sc.pos]
		switch {
		case c == '"':
			sc.pos++
			return sc.data[start:sc.pos], plain, true
		case c == '\\':
			plain = false
			if !sc.escape() {
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		case c >= utf8.RuneSelf:
			plain = false // encoding/json replaces invalid UTF-8 when it decodes the string
			sc.pos++
		default:
			sc.pos++
		}
	}
	return nil, false, false
}

// escape checks the escape sequence at pos and moves past it.
func (sc *scanner) escape() bool {
	if sc.pos+1 >= len(sc.data) {
		return false
	}
	switch sc.data[sc.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		sc.pos += 2
		return true
	case 'u':
		if sc.pos+6 > len(sc.data) {
			return false
		}
		for _, c := range sc.data[sc.pos+2 : sc.pos+6] {
			if !isHexDigit(c) {
				return false
			}
		}
		sc.pos += 6
		return true
	}
	return false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// numberToken moves past the number at pos, checking the JSON number grammar, and returns its
// text.
func (sc *scanner) numberToken() ([]byte, bool) {
	start := sc.pos
	if sc.pos < len(sc.data) && sc.data[sc.pos] == '-' {
		sc.pos++
	}
	switch {
	case sc.pos < len(sc.data) && sc.data[sc.pos] == '0':
		sc.pos++
	case sc.digits() == 0:
		return nil, false
	}
	if sc.pos < len(sc.data) && sc.data[sc.pos] == '.' {
		sc.pos++
		if sc.digits() == 0 {
			return nil, false
		}
	}
	if sc.pos < len(sc.data) && (sc.data[sc.pos] == 'e' || sc.data[sc.pos] == 'E') {
		sc.pos++
		if sc.pos < len(sc.data) && (sc.data[sc.pos] == '+' || sc.data[sc.pos] == '-') {
			sc.pos++
		}
		if sc.digits() == 0 {
			return nil, false
		}
	}
	return sc.data[start:sc.pos], true
}

func (sc *scanner) digits() int {
	start := sc.pos
	for sc.pos < len(sc.data) && '0' <= sc.data[sc.pos] && sc.data[sc.pos] <= '9' {
		sc.pos++
	}
	return sc.pos - start
}

// validRaw checks the value at sc.pos against n and moves past it. It returns false for an invalid
// value and for one that ValidJSON leaves to Valid.
func (n *node) validRaw(sc *scanner) bool {
	if n.always != nil {
		return *n.always && sc.skipValue()
	}
	if n.refOnly {
		return n.ref.validRaw(sc) // no keyword of its own, so the value is read once
	}
	start, depth := sc.pos, sc.depth
	if !n.validRawOwn(sc) {
		return false
	}
	if n.ref != nil && !n.ref.validRawAt(sc, start, depth) {
		return false
	}
	if n.anyOf == nil {
		return true
	}
	for _, branch := range n.anyOf {
		if branch.validRawAt(sc, start, depth) {
			return true
		}
	}
	return false
}

// validRawAt checks the value that starts at start, at nesting depth, against n, and leaves sc
// where it was.
func (n *node) validRawAt(sc *scanner, start, depth int) bool {
	pos, currentDepth := sc.pos, sc.depth
	sc.pos, sc.depth = start, depth
	valid := n.validRaw(sc)
	sc.pos, sc.depth = pos, currentDepth
	return valid
}

// validRawOwn checks the value at sc.pos against the keywords of n other than $ref and anyOf, and
// moves past it.
func (n *node) validRawOwn(sc *scanner) bool {
	switch c := sc.peek(); c {
	case '{':
		return n.allows(typeObject) && n.constant == nil && n.enum == nil && n.validRawObject(sc)
	case '[':
		return n.allows(typeArray) && n.constant == nil && n.enum == nil && n.validRawArray(sc)
	case '"':
		return n.validRawString(sc)
	case 't', 'f', 'n':
		return n.validRawLiteral(sc, c)
	}
	return n.validRawNumber(sc)
}

func (n *node) allows(t typeSet) bool {
	return n.types == 0 || n.types&t != 0
}

func (n *node) validRawObject(sc *scanner) bool {
	if len(n.required) > 64 {
		return false
	}
	object := rawObject{scanner: sc, start: sc.pos, depth: sc.depth}
	var found uint64 // bit i is set when required[i] is present

	ok := sc.members(func(name []byte) bool {
		if i, ok := n.requiredIndex[string(name)]; ok {
			found |= 1 << i
		}
		if child, ok := n.properties[string(name)]; ok {
			return child.validRaw(sc)
		}
		if n.unevaluatedProperties == nil || n.evaluatedInPlaceRaw(object, name) {
			return sc.skipValue()
		}
		return n.unevaluatedProperties.validRaw(sc)
	})
	return ok && found == 1<<len(n.required)-1
}

// rawObject locates an object in the JSON text, so that anyOf branches can check it again.
type rawObject struct {
	scanner      *scanner
	start, depth int
}

// evaluatedInPlaceRaw is evaluatedInPlace for an object in the JSON text.
func (n *node) evaluatedInPlaceRaw(object rawObject, name []byte) bool {
	if n.ref != nil && n.ref.evaluatesRaw(object, name) {
		return true
	}
	for _, branch := range n.anyOf {
		if branch.evaluatesAny() && branch.validRawAt(object.scanner, object.start, object.depth) && branch.evaluatesRaw(object, name) {
			return true
		}
	}
	return false
}

// evaluatesRaw is evaluates for an object in the JSON text.
func (n *node) evaluatesRaw(object rawObject, name []byte) bool {
	if n.always != nil {
		return false
	}
	if _, ok := n.properties[string(name)]; ok || n.unevaluatedProperties != nil {
		return true
	}
	return n.evaluatedInPlaceRaw(object, name)
}

// maxRawUniqueItems bounds the elements that ValidJSON compares pairwise for uniqueItems.
const maxRawUniqueItems = 64

func (n *node) validRawArray(sc *scanner) bool {
	var tokens [maxRawUniqueItems][]byte // element texts, kept for uniqueItems
	count := 0
	ok := sc.elements(func() bool {
		if n.uniqueItems && count == maxRawUniqueItems {
			return false
		}
		sc.skipSpace()
		start := sc.pos
		var valid bool
		if n.items == nil {
			valid = sc.skipValue()
		} else {
			valid = n.items.validRaw(sc)
		}
		if n.uniqueItems {
			tokens[count] = sc.data[start:sc.pos]
		}
		count++
		return valid
	})
	if !ok || n.minItems >= 0 && count < n.minItems {
		return false
	}
	return !n.uniqueItems || distinctTokens(tokens[:count])
}

// distinctTokens reports whether tokens, which must be strings or integers of at most 18 digits,
// have distinct values. Any other token makes it return false.
func distinctTokens(tokens [][]byte) bool {
	values := make([]tokenValue, 0, len(tokens))
	for _, token := range tokens {
		value, ok := newTokenValue(token)
		if !ok {
			return false
		}
		for _, other := range values {
			if value == other {
				return false
			}
		}
		values = append(values, value)
	}
	return true
}

// tokenValue is the value of a string or short integer token, comparable with ==.
type tokenValue struct {
	isString bool
	text     string
	integer  int64 // "-0" and "0" are the same number
}

func newTokenValue(token []byte) (tokenValue, bool) {
	if token[0] != '"' {
		integer, ok := parseSmallInteger(string(token))
		return tokenValue{integer: integer}, ok
	}
	if isPlainString(token) {
		return tokenValue{isString: true, text: string(token[1 : len(token)-1])}, true
	}
	var text string
	if err := json.Unmarshal(token, &text); err != nil {
		return tokenValue{}, false
	}
	return tokenValue{isString: true, text: text}, true
}

// isPlainString reports whether a string token is printable ASCII without escapes, so that its
// content is its value.
func isPlainString(token []byte) bool {
	for _, c := range token[1 : len(token)-1] {
		if c < 0x20 || c >= utf8.RuneSelf || c == '\\' {
			return false
		}
	}
	return true
}

func (n *node) validRawString(sc *scanner) bool {
	token, plain, ok := sc.stringToken()
	if !ok || !n.allows(typeString) {
		return false
	}
	if n.constant == nil && n.enum == nil && n.format == nil && n.pattern == nil && n.minLength < 0 {
		return true
	}
	content := token[1 : len(token)-1]
	if !plain {
		var s string
		if err := json.Unmarshal(token, &s); err != nil {
			return false
		}
		return n.validOwn(s)
	}

	if n.constant != nil {
		s, ok := (*n.constant).(string)
		if !ok || s != string(content) {
			return false
		}
	}
	if n.enum != nil {
		if n.enum.strings == nil {
			return n.validOwn(string(content))
		}
		if _, ok := n.enum.strings[string(content)]; !ok {
			return false
		}
	}
	if n.format != nil && n.format(string(content)) != nil {
		return false
	}
	if n.minLength >= 0 && utf8.RuneCount(content) < n.minLength {
		return false
	}
	return n.pattern == nil || n.pattern.Match(content)
}

func (n *node) validRawLiteral(sc *scanner, first byte) bool {
	var value any
	var word string
	switch first {
	case 't':
		value, word = true, "true"
	case 'f':
		value, word = false, "false"
	default:
		value, word = nil, "null"
	}
	return sc.literal(word) && n.validOwn(value)
}

func (n *node) validRawNumber(sc *scanner) bool {
	token, ok := sc.numberToken()
	if !ok {
		return false
	}
	if n.constant == nil && n.enum == nil && n.minimum == nil && n.allows(typeNumber) {
		return true
	}

	small, ok := parseSmallInteger(string(token))
	fast := ok && (n.constant == nil || n.constantInteger != nil) && (n.enum == nil || n.enum.integers != nil)
	if !fast {
		return n.validOwn(json.Number(token))
	}
	if !n.allows(typeNumber) && !n.allows(typeInteger) {
		return false
	}
	if n.constantInteger != nil && small != *n.constantInteger {
		return false
	}
	if n.enum != nil {
		if _, ok := n.enum.integers[small]; !ok {
			return false
		}
	}
	return n.minimum == nil || (number{small: small, isSmall: true}).cmp(*n.minimum) >= 0
}
