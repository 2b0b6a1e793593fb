package cybereason

import (
	"context"
	"fmt"
	"slices"
)

// indexPage is one page of a query that the console pages by page index (sensors, malware).
type indexPage[T any] struct {
	page T
	keys []string // one key per item, compared between pages to find a page that repeats
	more bool     // the console reports more results after this page
}

// readPagesByIndex requests the pages 0, 1, 2, and so on, with fetch, and calls fn once for each
// non-empty page, in order. Paging ends at an empty page or at a page that reports no more
// results. It stops with ErrTooManyPages after c.maxPages pages that all reported more results,
// and with ErrPageRepeated when a page has the same keys as the page before. feed names the
// results in errors, e.g. "sensors".
func readPagesByIndex[T any](ctx context.Context, c *Client, feed string,
	fetch func(ctx context.Context, index int) (indexPage[T], error), fn func(T) error) error {
	var previous []string
	for index := 0; ; index++ {
		if index == c.maxPages {
			return fmt.Errorf("query %s: %w (MaxPages is %d, PageSize %d)", feed, ErrTooManyPages, c.maxPages, c.pageSize)
		}

		page, err := fetch(ctx, index)
		if err != nil {
			return fmt.Errorf("query %s page %d: %w", feed, index, err)
		}
		if len(page.keys) == 0 {
			return nil
		}
		if slices.Equal(page.keys, previous) {
			return fmt.Errorf("query %s page %d: %w: it has the same %d %s as page %d", feed, index, ErrPageRepeated, len(page.keys), feed, index-1)
		}
		if err := fn(page.page); err != nil {
			return fmt.Errorf("handle %s page %d: %w", feed, index, err)
		}
		if !page.more {
			return nil
		}
		previous = page.keys
	}
}
