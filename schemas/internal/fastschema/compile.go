// Package fastschema compiles the subset of JSON Schema draft 2020-12 that the OverSOC schemas use
// into a tree of nodes that decides whether a JSON document is valid, from its text (ValidJSON) or
// decoded (Valid), without building error reports. It is the fast path of the schemas package,
// whose reference remains
// santhosh-tekuri/jsonschema: the semantics here follow that library (v6.0.3) wherever the
// specification leaves room, and tests compare the two on every example record and on fuzzed input.
//
// Compile rejects any keyword outside the supported set, naming the schema location and the keyword,
// so that a new schema is never validated less strictly than the library would.
package fastschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Draft2020 is the only $schema value that Compile accepts, besides none.
const Draft2020 = "https://json-schema.org/draft/2020-12/schema"

// annotationKeywords have no effect on validation.
var annotationKeywords = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "$comment": true,
	"title": true, "description": true, "examples": true, "default": true,
	"deprecated": true, "readOnly": true, "writeOnly": true,
}

// Options configures Compile.
type Options struct {
	// Formats maps every format name that a schema may assert to the check of a string value,
	// which returns nil for a valid string. Values of other types are not checked, as no format
	// of santhosh-tekuri/jsonschema v6 checks them. A "format" keyword with a name missing here
	// fails compilation.
	Formats map[string]func(any) error
}

// Schema is a compiled schema. It is immutable and safe for concurrent use.
type Schema struct {
	root *node
}

// Valid reports whether value, as decoded by encoding/json with UseNumber (map[string]any, []any,
// string, json.Number, bool, nil), is valid against the schema.
func (s *Schema) Valid(value any) bool {
	return s.root.valid(value)
}

// Compile compiles the schema with the absolute URI id. resources maps the $id of every schema
// document that id or its $ref chain may reach to the document, decoded with UseNumber. No other
// document is loaded.
func Compile(resources map[string]any, id string, options Options) (*Schema, error) {
	c := &compiler{resources: resources, options: options, nodes: make(map[string]*node)}
	root, err := c.compileRef(id, id)
	if err != nil {
		return nil, err
	}
	if err := checkCycles(root, nil); err != nil {
		return nil, err
	}
	return &Schema{root: root}, nil
}

type compiler struct {
	resources map[string]any
	options   Options
	nodes     map[string]*node // by location: document URI + "#" + JSON pointer
}

// compileRef compiles the schema that ref names, resolved against the URI base of the document
// that contains it.
func (c *compiler) compileRef(base, ref string) (*node, error) {
	baseURL, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("schema %s: invalid base URI: %w", base, err)
	}
	refURL, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("schema %s: invalid $ref %q: %w", base, ref, err)
	}
	resolved := baseURL.ResolveReference(refURL)
	pointer := resolved.Fragment
	resolved.Fragment = ""
	resolved.RawFragment = ""
	document := resolved.String()

	if pointer != "" && !strings.HasPrefix(pointer, "/") {
		return nil, fmt.Errorf("schema %s: $ref %q: anchors are not supported, use a JSON pointer", base, ref)
	}
	doc, ok := c.resources[document]
	if !ok {
		return nil, fmt.Errorf("schema %s: $ref %q: document %s is not registered", base, ref, document)
	}
	value, err := lookup(doc, pointer)
	if err != nil {
		return nil, fmt.Errorf("schema %s: $ref %q: %w", base, ref, err)
	}
	return c.compile(document, pointer, value)
}

// lookup follows an RFC 6901 JSON pointer inside a decoded document.
func lookup(doc any, pointer string) (any, error) {
	if pointer == "" {
		return doc, nil
	}
	value := doc
	for _, token := range strings.Split(pointer, "/")[1:] {
		token = strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")
		switch v := value.(type) {
		case map[string]any:
			child, ok := v[token]
			if !ok {
				return nil, fmt.Errorf("JSON pointer %s not found", pointer)
			}
			value = child
		case []any:
			index, err := strconv.Atoi(token)
			if err != nil || index < 0 || index >= len(v) {
				return nil, fmt.Errorf("JSON pointer %s not found", pointer)
			}
			value = v[index]
		default:
			return nil, fmt.Errorf("JSON pointer %s not found", pointer)
		}
	}
	return value, nil
}

// compile compiles the schema at pointer inside document, once per location, so that recursive
// references end at the node being compiled.
func (c *compiler) compile(document, pointer string, value any) (*node, error) {
	location := document + "#" + pointer
	if n, ok := c.nodes[location]; ok {
		return n, nil
	}
	n := &node{location: location, minItems: -1, minLength: -1}
	c.nodes[location] = n

	switch schema := value.(type) {
	case bool:
		n.always = &schema
		return n, nil
	case map[string]any:
		if err := c.compileObject(n, document, pointer, schema); err != nil {
			return nil, err
		}
		return n, nil
	}
	return nil, fmt.Errorf("schema %s: a schema must be an object or a boolean, got %T", location, value)
}

func (c *compiler) compileObject(n *node, document, pointer string, schema map[string]any) error {
	keywords := make([]string, 0, len(schema))
	for keyword := range schema {
		keywords = append(keywords, keyword)
	}
	slices.Sort(keywords) // so that the first error is the same on every run

	for _, keyword := range keywords {
		if err := c.compileKeyword(n, document, pointer, keyword, schema[keyword]); err != nil {
			return fmt.Errorf("schema %s: keyword %q: %w", n.location, keyword, err)
		}
	}
	return nil
}

// errUnsupported is wrapped by the error of a keyword that Compile does not implement.
var errUnsupported = errors.New("not supported by the fast validator; extend schemas/internal/fastschema before using it")

func (c *compiler) compileKeyword(n *node, document, pointer, keyword string, value any) error {
	switch keyword {
	case "$schema":
		if value != Draft2020 {
			return fmt.Errorf("only %s is supported, got %v", Draft2020, value)
		}
		return nil
	case "$id":
		if pointer != "" || value != document {
			return fmt.Errorf("only a document's root may have an $id, equal to its registered URI %s: %w", document, errUnsupported)
		}
		return nil
	case "$ref":
		ref, ok := value.(string)
		if !ok {
			return fmt.Errorf("expected a string, got %T", value)
		}
		target, err := c.compileRef(document, ref)
		if err != nil {
			return err
		}
		n.ref = target
		return nil
	case "type":
		types, err := compileTypes(value)
		n.types = types
		return err
	case "const":
		n.constant = &value
		if text, ok := value.(json.Number); ok {
			if x, ok := parseSmallInteger(string(text)); ok {
				n.constantInteger = &x
			}
		}
		return nil
	case "enum":
		items, ok := value.([]any)
		if !ok {
			return fmt.Errorf("expected an array, got %T", value)
		}
		n.enum = newEnum(items)
		return nil
	case "format":
		name, ok := value.(string)
		if !ok {
			return fmt.Errorf("expected a string, got %T", value)
		}
		check, ok := c.options.Formats[name]
		if !ok {
			return fmt.Errorf("format %q: %w", name, errUnsupported)
		}
		n.format = check
		return nil
	case "pattern":
		source, ok := value.(string)
		if !ok {
			return fmt.Errorf("expected a string, got %T", value)
		}
		// The library compiles patterns with Go's regexp package as they are, without translating
		// ECMA-262 syntax, and so does this package.
		re, err := regexp.Compile(source)
		if err != nil {
			return fmt.Errorf("invalid pattern: %w", err)
		}
		n.pattern = re
		return nil
	case "minLength":
		return compileCount(value, &n.minLength)
	case "minItems":
		return compileCount(value, &n.minItems)
	case "minimum":
		number, ok := value.(json.Number)
		if !ok {
			return fmt.Errorf("expected a number, got %T", value)
		}
		minimum, ok := parseNumber(number)
		if !ok {
			return fmt.Errorf("number %s out of range", number)
		}
		n.minimum = &minimum
		return nil
	case "uniqueItems":
		unique, ok := value.(bool)
		if !ok {
			return fmt.Errorf("expected a boolean, got %T", value)
		}
		n.uniqueItems = unique
		return nil
	case "required":
		return c.compileRequired(n, value)
	case "properties":
		return c.compileProperties(n, document, pointer, value)
	case "unevaluatedProperties":
		child, err := c.compile(document, pointer+"/"+keyword, value)
		n.unevaluatedProperties = child
		return err
	case "items":
		child, err := c.compile(document, pointer+"/"+keyword, value)
		n.items = child
		return err
	case "anyOf":
		return c.compileAnyOf(n, document, pointer, value)
	}
	if annotationKeywords[keyword] {
		return nil
	}
	return errUnsupported
}

func compileTypes(value any) (typeSet, error) {
	var names []any
	switch v := value.(type) {
	case string:
		names = []any{v}
	case []any:
		names = v
	default:
		return 0, fmt.Errorf("expected a string or an array, got %T", value)
	}
	var types typeSet
	for _, name := range names {
		t, ok := typeNames[fmt.Sprint(name)]
		if !ok {
			return 0, fmt.Errorf("unknown type %v", name)
		}
		types |= t
	}
	return types, nil
}

func compileCount(value any, out *int) error {
	number, ok := value.(json.Number)
	if !ok {
		return fmt.Errorf("expected a non-negative integer, got %T", value)
	}
	count, err := strconv.Atoi(string(number))
	if err != nil || count < 0 {
		return fmt.Errorf("expected a non-negative integer, got %s", number)
	}
	*out = count
	return nil
}

func (c *compiler) compileRequired(n *node, value any) error {
	names, ok := value.([]any)
	if !ok {
		return fmt.Errorf("expected an array, got %T", value)
	}
	for _, name := range names {
		s, ok := name.(string)
		if !ok {
			return fmt.Errorf("expected property names, got %T", name)
		}
		n.required = append(n.required, s)
	}
	n.requiredIndex = make(map[string]int, len(n.required))
	for i, name := range n.required {
		n.requiredIndex[name] = i
	}
	return nil
}

func (c *compiler) compileProperties(n *node, document, pointer string, value any) error {
	properties, ok := value.(map[string]any)
	if !ok {
		return fmt.Errorf("expected an object, got %T", value)
	}
	n.properties = make(map[string]*node, len(properties))
	for name, schema := range properties {
		child, err := c.compile(document, pointer+"/properties/"+escapeToken(name), schema)
		if err != nil {
			return err
		}
		n.properties[name] = child
	}
	return nil
}

func (c *compiler) compileAnyOf(n *node, document, pointer string, value any) error {
	branches, ok := value.([]any)
	if !ok || len(branches) == 0 {
		return fmt.Errorf("expected a non-empty array, got %v", value)
	}
	for i, schema := range branches {
		child, err := c.compile(document, pointer+"/anyOf/"+strconv.Itoa(i), schema)
		if err != nil {
			return err
		}
		n.anyOf = append(n.anyOf, child)
	}
	return nil
}

func escapeToken(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// checkCycles rejects a schema that can reach itself through $ref and anyOf alone, without moving
// to a member or element of the value, because validating it would never end. It also sets
// refOnly on every node it visits.
func checkCycles(n *node, path []*node) error {
	if slices.Contains(path, n) {
		return fmt.Errorf("schema %s: $ref or anyOf cycle that validates the same value forever", n.location)
	}
	if n.checked {
		return nil
	}
	n.refOnly = n.ref != nil && n.always == nil && n.types == 0 && n.constant == nil && n.enum == nil &&
		n.format == nil && n.anyOf == nil && n.required == nil && n.properties == nil &&
		n.unevaluatedProperties == nil && n.items == nil && n.minItems < 0 && !n.uniqueItems &&
		n.minLength < 0 && n.pattern == nil && n.minimum == nil

	path = append(path, n)
	inPlace := n.anyOf
	if n.ref != nil {
		inPlace = append([]*node{n.ref}, inPlace...)
	}
	for _, child := range inPlace {
		if err := checkCycles(child, path); err != nil {
			return err
		}
	}
	n.checked = true

	children := make([]*node, 0, len(n.properties)+2)
	for _, child := range n.properties {
		children = append(children, child)
	}
	children = append(children, n.items, n.unevaluatedProperties)
	for _, child := range children {
		if child != nil {
			if err := checkCycles(child, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// number is a JSON number: an int64 when the text is an integer of at most 18 digits, else the
// big.Rat that the library compares.
type number struct {
	small    int64
	isSmall  bool
	rational *big.Rat
}

// parseNumber returns the value of a JSON number text, or false when big.Rat cannot represent it
// (an exponent beyond ±1,000,000), which the library treats as neither an integer nor equal to
// anything.
func parseNumber(text json.Number) (number, bool) {
	if small, ok := parseSmallInteger(string(text)); ok {
		return number{small: small, isSmall: true}, true
	}
	rational, ok := new(big.Rat).SetString(string(text))
	if !ok {
		return number{}, false
	}
	return number{rational: rational}, true
}

// parseSmallInteger parses -?[0-9]{1,18}, which always fits an int64.
func parseSmallInteger(s string) (int64, bool) {
	digits := s
	if strings.HasPrefix(digits, "-") {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return 0, false
	}
	var value int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		value = value*10 + int64(c-'0')
	}
	if len(digits) != len(s) {
		value = -value
	}
	return value, true
}

func (x number) rat() *big.Rat {
	if x.isSmall {
		return new(big.Rat).SetInt64(x.small)
	}
	return x.rational
}

func (x number) cmp(y number) int {
	if x.isSmall && y.isSmall {
		switch {
		case x.small < y.small:
			return -1
		case x.small > y.small:
			return 1
		}
		return 0
	}
	return x.rat().Cmp(y.rat())
}

func (x number) isInteger() bool {
	return x.isSmall || x.rational.IsInt()
}
