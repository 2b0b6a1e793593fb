package cybereason

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

const malopsV2Path = "/rest/mmng/v2/malops"

// Defaults and limits of MalopV2Options.
const (
	DefaultMalopV2PageSize = 100
	// MaxMalopV2PageSize bounds the page size the client asks for.
	// NOTE: the console's own maximum is not documented; integrations ask for 50 or 100.
	MaxMalopV2PageSize = 1000
)

var (
	// ErrNotSupported reports that the console lacks an endpoint, as consoles older than the MalOp
	// management API do: they respond 400 or 404 to POST /rest/mmng/v2/malops. The detection inbox
	// (MalopsInbox) returns the same MalOps there.
	ErrNotSupported = errors.New("the console does not support this API")
	// ErrPageEmpty reports an empty page before the console's totalHits were reached, which would
	// otherwise make item-offset paging request the same offset forever.
	ErrPageEmpty = errors.New("the console returned an empty page before reaching its totalHits")
)

// MalopV2Options configures MalopsV2. Zero values select the defaults.
type MalopV2Options struct {
	// PageSize is the number of MalOps per page, 1 to MaxMalopV2PageSize. Default 100.
	PageSize int
}

func (o MalopV2Options) validate() error {
	if o.PageSize < 0 || o.PageSize > MaxMalopV2PageSize {
		return fmt.Errorf("MalopsV2.PageSize %d is out of range; use 1 to %d, or 0 for %d", o.PageSize, MaxMalopV2PageSize, DefaultMalopV2PageSize)
	}
	return nil
}

func (o MalopV2Options) withDefaults() MalopV2Options {
	if o.PageSize == 0 {
		o.PageSize = DefaultMalopV2PageSize
	}
	return o
}

// malopsV2Query is the body of POST /rest/mmng/v2/malops. Its pagination offset is an item
// offset, unlike the page index of the sensors and malware queries.
type malopsV2Query struct {
	Search     struct{}       `json:"search"`
	Range      v2Range        `json:"range"`
	Pagination v2Pagination   `json:"pagination"`
	Federation v2Federation   `json:"federation"`
	Sort       []v2SortOption `json:"sort"`
}

type v2Range struct {
	From int64 `json:"from"` // epoch milliseconds
	To   int64 `json:"to"`   // epoch milliseconds
}

type v2Pagination struct {
	PageSize int `json:"pageSize"`
	Offset   int `json:"offset"`
}

type v2Federation struct {
	Groups []string `json:"groups"`
}

type v2SortOption struct {
	Field string `json:"field"`
	Order string `json:"order"`
}

type malopsV2Response struct {
	envelope
	Data *struct {
		TotalHits *flexInt           `json:"totalHits"`
		Data      *[]json.RawMessage `json:"data"`
	} `json:"data"`
}

// MalopsV2 returns the MalOps whose data changed between from and to, from the MalOp management
// API, POST /rest/mmng/v2/malops, oldest lastUpdateTime first. It requests pages of
// MalopsV2.PageSize MalOps by item offset until it has totalHits MalOps, and each Malop.Raw is the
// management API's MalOp object without iconBase64.
//
// A MalOp updated while the pages are read leaves the window, so every later MalOp moves one place
// up and plain offset paging would skip one of them. Each page therefore starts at the last MalOp
// of the page before. When that MalOp is not the first of the new page, the MalOps have shifted,
// so the page before is read again. MalOps read twice are returned once.
//
// A console without this API makes it return an error that wraps ErrNotSupported and the
// *StatusError of the 400 or 404 response to the first page. A 400 or 404 to a later page is an
// ordinary *StatusError. Paging stops with ErrPageEmpty when a page is empty before totalHits,
// with ErrPageRepeated when a page has the same guids as the page before, and with
// ErrTooManyPages after MaxPages pages.
func (c *Client) MalopsV2(ctx context.Context, from, to time.Time) ([]Malop, error) {
	window := fmt.Sprintf("from %s to %s", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	pageSize := c.malopsV2.PageSize
	overlap := 0
	if pageSize > 1 {
		overlap = 1 // the last MalOp of a page is read again as the first of the next
	}

	var (
		malops   []Malop
		seen     = make(map[string]bool)
		previous []string // guids of the page before
		expected string   // guid the page must start with when pages overlap
		offset   int
	)
	for page := 0; ; page++ {
		if page == c.maxPages {
			return nil, fmt.Errorf("query MalOps v2 %s: %w (MaxPages is %d, page size %d)", window, ErrTooManyPages, c.maxPages, pageSize)
		}

		items, totalHits, err := c.malopsV2Page(ctx, from, to, offset)
		if err != nil {
			return nil, fmt.Errorf("query MalOps v2 %s, offset %d: %w", window, offset, err)
		}
		c.logger.Debug("received Cybereason MalOps v2 page", "offset", offset, "malops", len(items), "total_hits", totalHits)
		if len(items) == 0 {
			if offset >= totalHits {
				return malops, nil
			}
			return nil, fmt.Errorf("query MalOps v2 %s, offset %d: %w (totalHits %d)", window, offset, ErrPageEmpty, totalHits)
		}

		guids := malopGUIDs(items)
		if slices.Equal(guids, previous) {
			return nil, fmt.Errorf("query MalOps v2 %s, offset %d: %w: it has the same %d MalOp guids as the page before", window, offset, ErrPageRepeated, len(guids))
		}
		if expected != "" && guids[0] != expected {
			c.logger.Debug("MalOps v2 shifted while paging; reading the page before again", "offset", offset)
			offset = max(0, offset-pageSize+overlap)
			previous, expected = nil, ""
			continue
		}

		for _, malop := range items {
			if malop.Invalid != nil || !seen[malop.GUID] {
				seen[malop.GUID] = true
				malops = append(malops, malop)
			}
		}
		if offset+len(items) >= totalHits {
			return malops, nil
		}
		previous, expected = guids, ""
		if len(items) > overlap {
			offset += len(items) - overlap
			expected = guids[len(guids)-1]
		} else {
			offset += len(items) // a page too short to overlap
		}
	}
}

// malopsV2Page requests the page at an item offset and returns its MalOps and the totalHits of
// the query.
func (c *Client) malopsV2Page(ctx context.Context, from, to time.Time, offset int) ([]Malop, int, error) {
	body, err := json.Marshal(malopsV2Query{
		Range:      v2Range{From: from.UnixMilli(), To: to.UnixMilli()},
		Pagination: v2Pagination{PageSize: c.malopsV2.PageSize, Offset: offset},
		Federation: v2Federation{Groups: []string{}},
		Sort:       []v2SortOption{{Field: "LastUpdateTime", Order: "asc"}},
	})
	if err != nil {
		return nil, 0, err
	}

	var response malopsV2Response
	err = c.do(ctx, restCall{
		method:   http.MethodPost,
		endpoint: malopsV2Path,
		body:     body,
		decode: func(r io.Reader) error {
			response = malopsV2Response{}
			return json.NewDecoder(r).Decode(&response)
		},
	})
	// Only the first page shows whether the API exists. A 400 or 404 after pages were read is a
	// failure of this query, so it must not switch the caller to the inbox for good.
	var statusErr *StatusError
	if offset == 0 && errors.As(err, &statusErr) && (statusErr.StatusCode == http.StatusBadRequest || statusErr.StatusCode == http.StatusNotFound) {
		return nil, 0, fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	if err != nil {
		return nil, 0, err
	}
	if err := response.check(http.MethodPost + " " + malopsV2Path); err != nil {
		return nil, 0, err
	}
	if response.Data == nil || response.Data.Data == nil || response.Data.TotalHits == nil {
		return nil, 0, fmt.Errorf("POST %s: the response has no data.data array or no data.totalHits", malopsV2Path)
	}

	items := make([]Malop, 0, len(*response.Data.Data))
	for position, raw := range *response.Data.Data {
		malop, err := parseMalopObject(raw, "isEdr")
		if err != nil {
			malop = Malop{Raw: raw, Invalid: fmt.Errorf("MalOp %d of the page at offset %d: %w", position, offset, err)}
		}
		items = append(items, malop)
	}
	return items, int(*response.Data.TotalHits), nil
}

func malopGUIDs(malops []Malop) []string {
	guids := make([]string, len(malops))
	for i, malop := range malops {
		guids[i] = malop.GUID
	}
	return guids
}
