// Package jsonvalue decodes JSON documents into generic values and encodes them back in canonical
// form, with the results of encoding/json and several times its speed.
package jsonvalue

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// maxDepth is the nesting depth past which Parse gives up, as encoding/json does.
const maxDepth = 10000

// ErrSlowPath makes Parse's callers decode with encoding/json instead, which also words the error
// of an invalid document.
var ErrSlowPath = errors.New("json value needs the encoding/json decoder")

// Parse decodes one JSON document into the values that encoding/json's Decoder produces with
// UseNumber: map[string]any, []any, string, json.Number, bool and nil. It is several times faster
// because it decodes plain ASCII strings without the reflection and scanner of encoding/json.
// Strings with escapes or non-ASCII bytes are decoded by encoding/json, so every string is decoded
// exactly as encoding/json does it. Any syntax error returns ErrSlowPath.
//
// The plain strings of the result share the memory of one copy of data, so a caller that keeps a
// short string of a large document should clone it with strings.Clone.
func Parse(data []byte) (any, error) {
	p := parser{data: data, text: string(data)}
	value, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, ErrSlowPath
	}
	return value, nil
}

type parser struct {
	data []byte
	// text is data as a string, or "" when plain strings are to be copied one by one.
	text string
	pos  int
	// members holds the members of the objects being parsed, so that each map is made at its
	// final size instead of growing.
	members []member
}

type member struct {
	key   string
	value any
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, error) {
	p.skipSpace()
	if p.pos >= len(p.data) || depth > maxDepth {
		return nil, ErrSlowPath
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.string()
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	}
	return nil, ErrSlowPath
}

func (p *parser) literal(word string) bool {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return false
	}
	p.pos += len(word)
	return true
}

func (p *parser) object(depth int) (any, error) {
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return make(map[string]any), nil
	}
	first := len(p.members)
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, ErrSlowPath
		}
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, ErrSlowPath
		}
		p.pos++
		value, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, member{key, value})

		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, ErrSlowPath
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			object := make(map[string]any, len(p.members)-first)
			for _, m := range p.members[first:] {
				object[m.key] = m.value // a repeated key keeps its last value, as in encoding/json
			}
			clear(p.members[first:])
			p.members = p.members[:first]
			return object, nil
		default:
			return nil, ErrSlowPath
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	p.pos++ // '['
	array := make([]any, 0, 4)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return array, nil
	}
	for {
		value, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		array = append(array, value)

		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, ErrSlowPath
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return array, nil
		default:
			return nil, ErrSlowPath
		}
	}
}

// string decodes the string that starts at p.pos. A string of printable ASCII without escapes is
// copied as it is. Any other string is handed to encoding/json, which applies its own rules to
// escapes, control characters and invalid UTF-8.
func (p *parser) string() (string, error) {
	start := p.pos
	p.pos++ // '"'
	plain := true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			if plain {
				if p.text != "" {
					return p.text[start+1 : p.pos-1], nil
				}
				return string(p.data[start+1 : p.pos-1]), nil
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", ErrSlowPath
			}
			return s, nil
		case c == '\\':
			plain = false
			p.pos += 2
		case c < 0x20 || c >= utf8.RuneSelf:
			plain = false
			p.pos++
		default:
			p.pos++
		}
	}
	return "", ErrSlowPath
}

// number checks the JSON number grammar and returns the number as written.
func (p *parser) number() (any, error) {
	start := p.pos
	if err := p.skipNumber(); err != nil {
		return nil, err
	}
	return json.Number(p.data[start:p.pos]), nil
}

// skipNumber checks the JSON number grammar at p.pos and moves past the number.
func (p *parser) skipNumber() error {
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.digits() == 0:
		return ErrSlowPath
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return ErrSlowPath
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return ErrSlowPath
		}
	}
	return nil
}

func (p *parser) digits() int {
	start := p.pos
	for p.pos < len(p.data) && '0' <= p.data[p.pos] && p.data[p.pos] <= '9' {
		p.pos++
	}
	return p.pos - start
}

// AppendCanonical appends the JSON encoding of a decoded value to dst exactly as an encoding/json
// Encoder with SetEscapeHTML(false) writes it, without the trailing newline: object keys sorted, no
// whitespace, json.Number as written.
func AppendCanonical(dst []byte, value any) ([]byte, error) {
	switch v := value.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case json.Number:
		return appendNumber(dst, v)
	case string:
		return appendString(dst, v)
	case []any:
		if v == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, element := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = AppendCanonical(dst, element); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		return appendObject(dst, v)
	}
	return nil, fmt.Errorf("encode canonical JSON: unexpected %T in a decoded value", value)
}

// appendNumber writes n as written, or 0 for "", and rejects what is not a JSON number, as
// encoding/json does. Parse only makes valid numbers, but a caller may build a json.Number itself.
func appendNumber(dst []byte, n json.Number) ([]byte, error) {
	if n == "" {
		return append(dst, '0'), nil
	}
	p := parser{data: []byte(n)}
	if p.skipNumber() != nil || p.pos != len(p.data) {
		return nil, fmt.Errorf("encode canonical JSON: invalid number literal %q", string(n))
	}
	return append(dst, n...), nil
}

func appendObject(dst []byte, object map[string]any) ([]byte, error) {
	if object == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '{')
	for i, key := range slices.Sorted(maps.Keys(object)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendString(dst, key); err != nil {
			return nil, err
		}
		dst = append(dst, ':')
		if dst, err = AppendCanonical(dst, object[key]); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// AppendString appends s as a JSON string exactly as an encoding/json Encoder with
// SetEscapeHTML(false) writes it. '"' and '\\' get a backslash, and control characters become
// \b, \f, \n, \r, \t or \u00XX. U+2028 and U+2029 become \u2028 and \u2029, and each byte of
// invalid UTF-8 becomes \ufffd. TestAppendStringMatchesEncodingJSON compares it with encoding/json.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is still to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		var escape string
		size := 1
		if c < utf8.RuneSelf {
			escape = asciiEscape(c)
		} else {
			var r rune
			r, size = utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				escape = `\ufffd`
			case r == '\u2028':
				escape = `\u2028`
			case r == '\u2029':
				escape = `\u2029`
			}
		}
		if escape != "" {
			dst = append(dst, s[start:i]...)
			dst = append(dst, escape...)
			start = i + size
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// asciiEscape returns the escape of '"', '\\' or a control character.
func asciiEscape(c byte) string {
	switch c {
	case '"':
		return `\"`
	case '\\':
		return `\\`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	const hex = "0123456789abcdef"
	return `\u00` + string([]byte{hex[c>>4], hex[c&0xf]})
}

// appendString quotes s as AppendString does. Its error is always nil, in the signature of the
// encoders that call it.
func appendString(dst []byte, s string) ([]byte, error) {
	return AppendString(dst, s), nil
}
