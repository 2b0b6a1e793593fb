package cybereasontest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// object is a JSON object that keeps the order and the raw values of its members, so that
// changing one member leaves the others as they were.
type object struct {
	keys   []string
	values []json.RawMessage
}

func parseObject(raw []byte) (*object, error) {
	decoder := json.NewDecoder(bytes.NewReader(raw))
	token, err := decoder.Token()
	if err != nil {
		return nil, err
	}
	if delim, ok := token.(json.Delim); !ok || delim != '{' {
		return nil, errors.New("not a JSON object")
	}

	o := &object{}
	for decoder.More() {
		token, err := decoder.Token()
		if err != nil {
			return nil, err
		}
		key, ok := token.(string)
		if !ok {
			return nil, fmt.Errorf("expected a member name, found %v", token)
		}
		var value json.RawMessage
		if err := decoder.Decode(&value); err != nil {
			return nil, fmt.Errorf("member %q: %w", key, err)
		}
		o.keys = append(o.keys, key)
		o.values = append(o.values, value)
	}
	if _, err := decoder.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

// get returns the raw value of the last member named name, as encoding/json would decode it.
func (o *object) get(name string) (json.RawMessage, bool) {
	for i := len(o.keys) - 1; i >= 0; i-- {
		if o.keys[i] == name {
			return o.values[i], true
		}
	}
	return nil, false
}

// text returns the value of a scalar member as text (see textValue).
func (o *object) text(name string) string {
	value, _ := o.get(name)
	return textValue(value)
}

func (o *object) has(name string) bool {
	_, ok := o.get(name)
	return ok
}

// set replaces the value of every member named name, or appends the member when there is none.
func (o *object) set(name string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("encode member %q: %w", name, err)
	}
	found := false
	for i, key := range o.keys {
		if key == name {
			o.values[i] = raw
			found = true
		}
	}
	if !found {
		o.keys = append(o.keys, name)
		o.values = append(o.values, raw)
	}
	return nil
}

// setIfPresent sets a member that the object already has, and adds no new member.
func (o *object) setIfPresent(name string, value any) error {
	if !o.has(name) {
		return nil
	}
	return o.set(name, value)
}

// marshal returns the object as compact JSON, members in their order.
func (o *object) marshal() json.RawMessage {
	var out bytes.Buffer
	out.WriteByte('{')
	for i, key := range o.keys {
		if i > 0 {
			out.WriteByte(',')
		}
		name, _ := json.Marshal(key) // a string always encodes
		out.Write(name)
		out.WriteByte(':')
		_ = json.Compact(&out, o.values[i]) // values were decoded from valid JSON or marshaled
	}
	out.WriteByte('}')
	return out.Bytes()
}
