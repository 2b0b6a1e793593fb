package jsonvalue

import (
	"bytes"
	"slices"
	"strings"
	"sync"
)

// Removal is a set of JSON pointers to leave out of a canonical encoding. Build it with
// NewRemoval.
type Removal struct {
	children map[string]*Removal
	leaf     bool // the pointer ends here: the member is left out
}

// NewRemoval returns the removal of pointers, JSON pointers of object keys whose token "*" stands
// for every element of an array when the value there is an array.
func NewRemoval(pointers []string) *Removal {
	root := &Removal{}
	for _, pointer := range pointers {
		node := root
		for token := range strings.SplitSeq(strings.TrimPrefix(pointer, "/"), "/") {
			token = strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")
			if node.children == nil {
				node.children = make(map[string]*Removal)
			}
			child := node.children[token]
			if child == nil {
				child = &Removal{}
				node.children[token] = child
			}
			node = child
		}
		node.leaf = true
	}
	return root
}

func (r *Removal) child(token string) *Removal {
	if r == nil {
		return nil
	}
	return r.children[token]
}

// AppendCanonicalWithout appends the canonical encoding (see AppendCanonical) of the JSON object
// data without the members that removal names, as if the object were decoded with Parse, each
// pointer removed in turn, and encoded with AppendCanonical. Removing a member also removes the
// objects on its path that the removal leaves empty, but not array elements. It works on the JSON
// text without building maps. It returns ErrSlowPath for anything it does not handle the same way,
// such as a document that is not an object, invalid JSON or a repeated key, so that the caller
// can take the decoding path instead. It also returns ErrSlowPath when sorting the keys of deeply
// nested unsorted objects would copy more than maxRewriteFactor times the size of data, because
// decoding takes linear time on such a document.
func AppendCanonicalWithout(dst, data []byte, removal *Removal) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer e.release()
	e.parser = parser{data: data}
	e.rewriteBudget = maxRewriteFactor*len(data) + minRewriteBudget

	e.skipSpace()
	if e.pos >= len(data) || data[e.pos] != '{' {
		return nil, ErrSlowPath
	}
	out, _, _, err := e.value(dst, removal, 0)
	if err != nil {
		return nil, err
	}
	e.skipSpace()
	if e.pos != len(data) {
		return nil, ErrSlowPath
	}
	return out, nil
}

// encoders keeps encoders between calls, so that their buffers are reused.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// release drops the encoder's references into the caller's data and returns it to encoders.
// Buffers that grew past maxPooledBuffer are dropped, so that one large document does not stay
// in memory.
func (e *encoder) release() {
	const maxPooledBuffer = 64 << 10
	e.parser = parser{}
	clear(e.members[:cap(e.members)])
	e.members = e.members[:0]
	if cap(e.scratch) > maxPooledBuffer || cap(e.members) > maxPooledBuffer/32 {
		return
	}
	e.scratch = e.scratch[:0]
	encoders.Put(e)
}

// maxRewriteFactor and minRewriteBudget bound the bytes that writeSorted copies for one document.
// Each unsorted object copies its whole encoding, nested objects included, so a document whose
// unsorted objects nest d deep copies about d times its size. Records that enrich writes have
// sorted keys and copy nothing.
const (
	maxRewriteFactor = 8
	minRewriteBudget = 4 << 10
)

type encoder struct {
	parser
	scratch []byte
	// rewriteBudget is the number of bytes that writeSorted may still copy for this document.
	rewriteBudget int
	// members holds the members of the objects being encoded, innermost last.
	members []canonicalMember
}

// canonicalMember is one member of an object: its decoded key and where `"key":value` sits in
// dst. A pruned member is an object that the removal left empty. It is not in dst but stays
// listed, so that a repeated key still sends the document to the decoding path, where the last
// member with that key decides whether the key is pruned.
type canonicalMember struct {
	key        []byte
	start, end int
	pruned     bool
}

// quoted scans the string at e.pos and returns its decoded bytes. A plain string (printable ASCII
// without escapes) is returned as a slice of the input, with plain set, and is already in
// canonical form with its quotes at raw.
func (e *encoder) quoted() (decoded, raw []byte, plain bool, err error) {
	start := e.pos
	for i := start + 1; i < len(e.data); i++ {
		c := e.data[i]
		if c == '"' {
			e.pos = i + 1
			return e.data[start+1 : i], e.data[start:e.pos], true, nil
		}
		if c < 0x20 || c >= 0x80 || c == '\\' {
			break
		}
	}
	s, err := e.string()
	if err != nil {
		return nil, nil, false, err
	}
	return []byte(s), nil, false, nil
}

// appendQuoted appends a string that quoted returned, in canonical form.
func appendQuoted(dst, decoded, raw []byte, plain bool) ([]byte, error) {
	if plain {
		return append(dst, raw...), nil
	}
	return appendString(dst, string(decoded))
}

// value encodes the value at e.pos. removed reports whether removal left anything out of it,
// emptyObject whether it is an object with no member left.
func (e *encoder) value(dst []byte, removal *Removal, depth int) (out []byte, removed, emptyObject bool, err error) {
	e.skipSpace()
	if e.pos >= len(e.data) || depth > maxDepth {
		return nil, false, false, ErrSlowPath
	}
	switch c := e.data[e.pos]; {
	case c == '{':
		return e.object(dst, removal, depth+1)
	case c == '[':
		out, removed, err := e.array(dst, removal, depth+1)
		return out, removed, false, err
	}
	if e.data[e.pos] == '"' {
		decoded, raw, plain, err := e.quoted()
		if err != nil {
			return nil, false, false, err
		}
		out, err := appendQuoted(dst, decoded, raw, plain)
		return out, false, false, err
	}
	start := e.pos
	if err := e.scalar(); err != nil {
		return nil, false, false, err
	}
	return append(dst, e.data[start:e.pos]...), false, false, nil // a number or a literal, as written
}

// scalar moves past the number or literal at e.pos, which stays in the output as written.
func (e *encoder) scalar() error {
	switch c := e.data[e.pos]; {
	case c == '-' || ('0' <= c && c <= '9'):
		return e.skipNumber()
	case e.literal("true"), e.literal("false"), e.literal("null"):
		return nil
	}
	return ErrSlowPath
}

// object encodes the object at e.pos. Its members are written in input order, with braces and
// commas, and rewritten in key order only when the input's keys are not sorted already.
func (e *encoder) object(dst []byte, removal *Removal, depth int) (out []byte, removed, emptyObject bool, err error) {
	e.pos++ // '{'
	first := len(e.members)
	mark := len(dst)
	dst = append(dst, '{')
	e.skipSpace()
	if e.pos < len(e.data) && e.data[e.pos] == '}' {
		e.pos++
		return append(dst, '}'), false, true, nil
	}
	sorted, keptMembers := true, 0
	for {
		e.skipSpace()
		if e.pos >= len(e.data) || e.data[e.pos] != '"' {
			return nil, false, false, ErrSlowPath
		}
		key, rawKey, plainKey, err := e.quoted()
		if err != nil {
			return nil, false, false, err
		}
		e.skipSpace()
		if e.pos >= len(e.data) || e.data[e.pos] != ':' {
			return nil, false, false, ErrSlowPath
		}
		e.pos++

		child := removal.child(string(key))
		start := len(dst)
		if keptMembers > 0 {
			dst = append(dst, ',')
		}
		memberStart := len(dst)
		if dst, err = appendQuoted(dst, key, rawKey, plainKey); err != nil {
			return nil, false, false, err
		}
		dst = append(dst, ':')
		var childRemoved, childEmpty bool
		if dst, childRemoved, childEmpty, err = e.value(dst, child, depth); err != nil {
			return nil, false, false, err
		}
		member := canonicalMember{key: key, start: memberStart, end: len(dst)}
		switch {
		case child != nil && child.leaf:
			// Every member with this key is left out, so a repeated key cannot change the result.
			dst, removed = dst[:start], true
		case childRemoved && childEmpty:
			dst, removed, member.pruned = dst[:start], true, true
			sorted = e.listMember(first, member) && sorted
		default:
			removed = removed || childRemoved
			keptMembers++
			sorted = e.listMember(first, member) && sorted
		}

		e.skipSpace()
		if e.pos >= len(e.data) {
			return nil, false, false, ErrSlowPath
		}
		switch e.data[e.pos] {
		case ',':
			e.pos++
			continue
		case '}':
			e.pos++
		default:
			return nil, false, false, ErrSlowPath
		}
		break
	}
	members := e.members[first:]
	e.members = e.members[:first]
	if sorted {
		// Strictly increasing keys: no key repeats, and dst already contains the canonical form.
		return append(dst, '}'), removed, keptMembers == 0, nil
	}
	dst, err = e.writeSorted(dst, mark, members)
	return dst, removed, keptMembers == 0, err
}

// listMember appends m to the members of the object whose first member is e.members[first], and
// reports whether m's key comes after the key of the member listed before it.
func (e *encoder) listMember(first int, m canonicalMember) bool {
	n := len(e.members)
	increasing := n == first || bytes.Compare(e.members[n-1].key, m.key) < 0
	e.members = append(e.members, m)
	return increasing
}

// writeSorted rewrites the object encoded in dst[mark:], whose members are listed in members, with
// its members in key order. dst[mark:] contains '{' and the members that are not pruned, separated
// by commas.
func (e *encoder) writeSorted(dst []byte, mark int, members []canonicalMember) ([]byte, error) {
	slices.SortFunc(members, func(a, b canonicalMember) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if bytes.Equal(members[i].key, members[i-1].key) {
			return nil, ErrSlowPath // encoding/json keeps the last of repeated keys
		}
	}

	if e.rewriteBudget -= len(dst) - mark; e.rewriteBudget < 0 {
		return nil, ErrSlowPath
	}
	e.scratch = append(e.scratch[:0], dst[mark:]...)
	dst = append(dst[:mark], '{')
	written := 0
	for _, m := range members {
		if m.pruned {
			continue
		}
		if written > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.scratch[m.start-mark:m.end-mark]...)
		written++
	}
	return append(dst, '}'), nil
}

func (e *encoder) array(dst []byte, removal *Removal, depth int) ([]byte, bool, error) {
	e.pos++ // '['
	// "*" applies to the elements only when more tokens follow it.
	elements := removal.child("*")
	if elements != nil && elements.leaf && len(elements.children) == 0 {
		elements = nil
	}
	removed := false
	dst = append(dst, '[')
	e.skipSpace()
	if e.pos < len(e.data) && e.data[e.pos] == ']' {
		e.pos++
		return append(dst, ']'), false, nil
	}
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ',')
		}
		// An array inside an array is no object, so no pointer reaches into it.
		node := elements
		if e.skipSpace(); e.pos < len(e.data) && e.data[e.pos] == '[' {
			node = nil
		}
		var elementRemoved bool
		var err error
		if dst, elementRemoved, _, err = e.value(dst, node, depth); err != nil {
			return nil, false, err
		}
		removed = removed || elementRemoved

		e.skipSpace()
		if e.pos >= len(e.data) {
			return nil, false, ErrSlowPath
		}
		switch e.data[e.pos] {
		case ',':
			e.pos++
		case ']':
			e.pos++
			return append(dst, ']'), removed, nil
		default:
			return nil, false, ErrSlowPath
		}
	}
}
