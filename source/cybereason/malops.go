package cybereason

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

const inboxPath = "/rest/detection/inbox"

// Malop is one MalOp (EDR or EPP) of the detection inbox or of the MalOp management API.
type Malop struct {
	GUID string
	// EDR reports an AI Hunt (EDR) MalOp, whose details come from EDRMalopDetails, rather than an
	// Endpoint Protection (EPP) MalOp, whose details come from EPPMalopDetails. It is the inbox's
	// edr member or the management API's isEdr member, false when missing or null.
	EDR bool
	// LastUpdateTime is the MalOp's lastUpdateTime, or its creationTime when the console sent no
	// lastUpdateTime.
	LastUpdateTime time.Time
	Raw            json.RawMessage // the MalOp object without its iconBase64 member
	// Invalid is set when the object lacks what the client reads from it, its id or time, and Raw
	// is then the object as returned. Such an object is returned instead of failing the whole
	// response, so that the caller can dead-letter it and the feed goes on.
	Invalid error
}

type inboxQuery struct {
	StartTime int64 `json:"startTime"` // epoch milliseconds
	EndTime   int64 `json:"endTime"`   // epoch milliseconds
}

type inboxResponse struct {
	envelope
	Malops *[]json.RawMessage `json:"malops"`
}

// MalopsInbox returns the MalOps that were active (created or updated) between from and to, from
// POST /rest/detection/inbox. The console returns the whole window in one response, so keep the
// window short. The console, not the client, validates the range and responds 400 when from is
// after to.
func (c *Client) MalopsInbox(ctx context.Context, from, to time.Time) ([]Malop, error) {
	query := inboxQuery{StartTime: from.UnixMilli(), EndTime: to.UnixMilli()}
	body, err := json.Marshal(query)
	if err != nil {
		return nil, err
	}

	var raws []json.RawMessage
	err = c.do(ctx, restCall{
		method:   http.MethodPost,
		endpoint: inboxPath,
		body:     body,
		decode: func(r io.Reader) error {
			var response inboxResponse
			if err := json.NewDecoder(r).Decode(&response); err != nil {
				return err
			}
			if err := response.check(http.MethodPost + " " + inboxPath); err != nil {
				return err
			}
			if response.Malops == nil {
				return errors.New("the response has no malops array")
			}
			raws = *response.Malops
			return nil
		},
	})

	var statusErr *StatusError
	if errors.As(err, &statusErr) && statusErr.StatusCode == http.StatusBadRequest {
		return nil, fmt.Errorf("query MalOps inbox: the console rejected the time range %s to %s (startTime %d, endTime %d): %w",
			from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), query.StartTime, query.EndTime, err)
	}
	if err != nil {
		return nil, fmt.Errorf("query MalOps inbox from %s to %s: %w", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano), err)
	}

	malops := make([]Malop, 0, len(raws))
	for position, raw := range raws {
		malop, err := parseMalop(raw)
		if err != nil {
			malop = Malop{Raw: raw, Invalid: fmt.Errorf("MalOp %d of the inbox response: %w", position, err)}
		}
		malops = append(malops, malop)
	}
	c.logger.Debug("received Cybereason MalOps inbox", "malops", len(malops), "start_time", query.StartTime, "end_time", query.EndTime)
	return malops, nil
}

// parseMalop reads the guid, update time and edr flag of a MalopInboxModel object and removes its
// iconBase64 member.
func parseMalop(raw json.RawMessage) (Malop, error) {
	return parseMalopObject(raw, "edr")
}

// parseMalopObject reads a MalOp object whose EDR flag is the member edrMember.
func parseMalopObject(raw json.RawMessage, edrMember string) (Malop, error) {
	members, err := objectMembers(raw)
	if err != nil {
		return Malop{}, err
	}

	guid, err := readGUID(members)
	if err != nil {
		return Malop{}, err
	}

	updated, err := malopTime(members, "lastUpdateTime")
	if err != nil {
		return Malop{}, fmt.Errorf("MalOp %s: %w", guid, err)
	}
	if updated.IsZero() {
		if updated, err = malopTime(members, "creationTime"); err != nil {
			return Malop{}, fmt.Errorf("MalOp %s: %w", guid, err)
		}
	}
	if updated.IsZero() {
		return Malop{}, fmt.Errorf("MalOp %s has neither lastUpdateTime nor creationTime", guid)
	}

	var edr flexBool
	if value, ok := lookup(members, edrMember); ok {
		if err := json.Unmarshal(value, &edr); err != nil {
			return Malop{}, fmt.Errorf("MalOp %s: %s: %w", guid, edrMember, err)
		}
	}
	return Malop{GUID: guid, EDR: bool(edr), LastUpdateTime: updated, Raw: withoutMember(raw, members, iconMember)}, nil
}

// readGUID reads the guid member of a MalOp or malware object.
func readGUID(members []member) (string, error) {
	value, ok := lookup(members, "guid")
	if !ok {
		return "", errors.New("guid is missing")
	}
	var guid string
	if err := json.Unmarshal(value, &guid); err != nil || guid == "" {
		return "", fmt.Errorf("guid %s is not a non-empty string", value)
	}
	return guid, nil
}

// malopTime reads an epoch-milliseconds member, or the zero time when it is missing, null or 0.
func malopTime(members []member, name string) (time.Time, error) {
	value, ok := lookup(members, name)
	if !ok {
		return time.Time{}, nil
	}
	var ms flexInt
	if err := json.Unmarshal(value, &ms); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	if ms == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}
