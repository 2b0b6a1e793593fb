package cybereason

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// iconMember is the MalOp picture, a base64 PNG of up to several KB, which no consumer needs.
const iconMember = "iconBase64"

// member is one top-level member of a JSON object.
type member struct {
	key        string
	start, end int    // object[start:end] is `"key": value`, without surrounding blanks or commas
	value      []byte // the raw value
}

var errNotObject = errors.New("not a JSON object")

// objectMembers lists the top-level members of a JSON object, in order. The object must be
// syntactically valid JSON, as decoding it into a json.RawMessage guarantees, because
// objectMembers only checks the structure it walks through.
func objectMembers(object []byte) ([]member, error) {
	i := skipBlanks(object, 0)
	if i >= len(object) || object[i] != '{' {
		return nil, errNotObject
	}
	i = skipBlanks(object, i+1)
	if i < len(object) && object[i] == '}' {
		return nil, checkEnd(object, i+1)
	}

	var members []member
	for {
		m, next, err := scanMember(object, i)
		if err != nil {
			return nil, err
		}
		members = append(members, m)

		i = skipBlanks(object, next)
		if i >= len(object) {
			return nil, errors.New("unterminated JSON object")
		}
		switch object[i] {
		case ',':
			i = skipBlanks(object, i+1)
		case '}':
			return members, checkEnd(object, i+1)
		default:
			return nil, fmt.Errorf("unexpected %q at byte %d of the object", object[i], i)
		}
	}
}

// scanMember reads the member that starts at object[start] and returns it with the index after it.
func scanMember(object []byte, start int) (member, int, error) {
	if start >= len(object) || object[start] != '"' {
		return member{}, 0, fmt.Errorf("expected a member name at byte %d of the object", start)
	}
	keyEnd, err := skipString(object, start)
	if err != nil {
		return member{}, 0, err
	}
	key, err := memberName(object[start:keyEnd])
	if err != nil {
		return member{}, 0, err
	}

	colon := skipBlanks(object, keyEnd)
	if colon >= len(object) || object[colon] != ':' {
		return member{}, 0, fmt.Errorf("expected ':' after member %q", key)
	}
	valueStart := skipBlanks(object, colon+1)
	valueEnd, err := skipValue(object, valueStart)
	if err != nil {
		return member{}, 0, fmt.Errorf("member %q: %w", key, err)
	}
	return member{key: key, start: start, end: valueEnd, value: object[valueStart:valueEnd]}, valueEnd, nil
}

// memberName returns the name of a quoted member name, unescaping it only when needed.
func memberName(quoted []byte) (string, error) {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1 : len(quoted)-1]), nil
	}
	var name string
	if err := json.Unmarshal(quoted, &name); err != nil {
		return "", fmt.Errorf("invalid member name %s: %w", quoted, err)
	}
	return name, nil
}

// skipValue returns the index after the JSON value that starts at data[start].
func skipValue(data []byte, start int) (int, error) {
	if start >= len(data) {
		return 0, errors.New("missing value")
	}
	switch data[start] {
	case '"':
		return skipString(data, start)
	case '{', '[':
		return skipContainer(data, start)
	}
	i := start
	for i < len(data) && !isDelimiter(data[i]) {
		i++
	}
	if i == start {
		return 0, fmt.Errorf("unexpected %q at byte %d", data[start], start)
	}
	return i, nil
}

// skipContainer returns the index after the object or array that starts at data[start].
func skipContainer(data []byte, start int) (int, error) {
	depth := 0
	for i := start; i < len(data); i++ {
		switch data[i] {
		case '"':
			end, err := skipString(data, i)
			if err != nil {
				return 0, err
			}
			i = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, errors.New("unterminated JSON object or array")
}

// skipString returns the index after the JSON string that starts at data[start].
func skipString(data []byte, start int) (int, error) {
	for i := start + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errors.New("unterminated JSON string")
}

func skipBlanks(data []byte, i int) int {
	for i < len(data) && isBlank(data[i]) {
		i++
	}
	return i
}

func checkEnd(data []byte, i int) error {
	if i = skipBlanks(data, i); i != len(data) {
		return fmt.Errorf("unexpected data after the JSON object at byte %d", i)
	}
	return nil
}

func isBlank(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r'
}

func isDelimiter(b byte) bool {
	return isBlank(b) || b == ',' || b == '}' || b == ']'
}

// withoutMember returns object without its top-level members named name. Every other byte is
// kept, including member order, number spelling and the blanks between the remaining members.
// When object has no such member, it is returned unchanged and not copied.
func withoutMember(object []byte, members []member, name string) []byte {
	drop := 0
	for _, m := range members {
		if m.key == name {
			drop++
		}
	}
	if drop == 0 {
		return object
	}

	out := make([]byte, 0, len(object))
	out = append(out, object[:members[0].start]...)
	written := 0
	for i, m := range members {
		if m.key == name {
			continue
		}
		if written > 0 {
			// The separator in front of member i contains exactly one comma.
			out = append(out, object[members[i-1].end:m.start]...)
		}
		out = append(out, object[m.start:m.end]...)
		written++
	}
	return append(out, object[members[len(members)-1].end:]...)
}

// lookup returns the raw value of the last member named name, as encoding/json would decode it.
func lookup(members []member, name string) ([]byte, bool) {
	for i := len(members) - 1; i >= 0; i-- {
		if members[i].key == name {
			return members[i].value, true
		}
	}
	return nil, false
}

// lookupFold returns the raw value of the last member whose name equals name in any case, the
// member that encoding/json decodes into a field of that name.
func lookupFold(members []member, name string) ([]byte, bool) {
	for i := len(members) - 1; i >= 0; i-- {
		if strings.EqualFold(members[i].key, name) {
			return members[i].value, true
		}
	}
	return nil, false
}

// withoutMemberFold is withoutMember for the members whose name equals name in any case.
func withoutMemberFold(object []byte, members []member, name string) []byte {
	for _, m := range members {
		if strings.EqualFold(m.key, name) && m.key != name {
			// Rare: rename the members to drop, on a copy, so withoutMember finds them.
			renamed := slices.Clone(members)
			for i := range renamed {
				if strings.EqualFold(renamed[i].key, name) {
					renamed[i].key = name
				}
			}
			return withoutMember(object, renamed, name)
		}
	}
	return withoutMember(object, members, name)
}
