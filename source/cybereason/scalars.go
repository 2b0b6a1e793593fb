package cybereason

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// flexInt decodes an integer sent as a JSON number, as a numeric string, or as null (0). Consoles
// send both forms for the same field.
type flexInt int64

func (n *flexInt) UnmarshalJSON(data []byte) error {
	text := string(bytes.Trim(data, `"`))
	if text == "null" || text == "" {
		*n = 0
		return nil
	}
	value, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an integer", data)
	}
	*n = flexInt(value)
	return nil
}

// flexBool decodes a boolean sent as true/false, as "true"/"false", or as null (false).
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null", `""`:
		*b = false
	default:
		var text string
		if json.Unmarshal(data, &text) == nil {
			if value, err := strconv.ParseBool(text); err == nil {
				*b = flexBool(value)
				return nil
			}
		}
		return fmt.Errorf("%s is not a boolean", data)
	}
	return nil
}
