package cybereason

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// indexPage is one page of a query that the console pages by page index (sensors, malware).
type indexPage[T any] struct {
	page  T
	keys  []string // one key per item, compared between pages to find a page that repeats
	more  bool     // the console reports more results after this page
	total int      // the number of results the console reports for the whole query, 0 when unknown
}

// pageResult is the outcome of one page request made by readPagesByIndex.
type pageResult[T any] struct {
	page indexPage[T]
	err  error
}

// readPagesByIndex requests the pages 0, 1, 2, and so on, with fetch, and calls fn once for each
// non-empty page, in order. Paging ends at an empty page or at a page that reports no more
// results. It stops with ErrTooManyPages after c.maxPages pages that all reported more results,
// and with ErrPageRepeated when a page has the same keys as the page before. feed names the
// results in errors, e.g. "sensors".
//
// Page 0 is requested alone. After it, up to window pages are requested ahead, but only pages
// that exist by the total the console reported with the last page handled, or the next page
// when it reported more results. A console that reports its total and whether more results
// follow is thus never asked for a page past the last one, unless the query lost results during
// paging. At most window pages
// are held at a time, counting the one fn handles. When paging stops, including when ctx ends
// between two pages, the requests still in flight are canceled and waited for.
func readPagesByIndex[T any](ctx context.Context, c *Client, feed string, window int,
	fetch func(ctx context.Context, index int) (indexPage[T], error), fn func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var requests sync.WaitGroup
	defer func() {
		cancel()
		requests.Wait()
	}()

	request := func(index int) chan pageResult[T] {
		done := make(chan pageResult[T], 1)
		requests.Go(func() {
			page, err := fetch(ctx, index)
			done <- pageResult[T]{page: page, err: err}
		})
		return done
	}

	var (
		pending  []chan pageResult[T] // requests in flight, pending[0] for page index
		next     int                  // the next page index to request
		existing = 1                  // the pages known to exist
		previous []string
	)
	for index := 0; ; index++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("query %s page %d: %w", feed, index, err)
		}
		if index == c.maxPages {
			return fmt.Errorf("query %s: %w (MaxPages is %d, PageSize %d)", feed, ErrTooManyPages, c.maxPages, c.pageSize)
		}
		for len(pending) < window && next < min(existing, c.maxPages) {
			pending = append(pending, request(next))
			next++
		}

		result := <-pending[0]
		pending = pending[1:]
		if result.err != nil {
			return fmt.Errorf("query %s page %d: %w", feed, index, result.err)
		}
		page := result.page
		if len(page.keys) == 0 {
			return nil
		}
		if slices.Equal(page.keys, previous) {
			return fmt.Errorf("query %s page %d: %w: it has the same %d %s as page %d", feed, index, ErrPageRepeated, len(page.keys), feed, index-1)
		}
		if page.more {
			// The next pages are requested before fn handles this one, which counts in the
			// window until fn returns.
			existing = max(index+2, pagesFor(page.total, c.pageSize))
			for len(pending) < window-1 && next < min(existing, c.maxPages) {
				pending = append(pending, request(next))
				next++
			}
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

// pagesFor returns the number of pages of pageSize results that hold total results.
func pagesFor(total, pageSize int) int {
	if total <= 0 {
		return 0
	}
	return (total + pageSize - 1) / pageSize
}
