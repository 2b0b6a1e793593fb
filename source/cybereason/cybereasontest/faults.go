package cybereasontest

import (
	"maps"
	"net/http"
	"time"
)

// EndlessPaging selects how the sensors query ends its paging.
type EndlessPaging int

const (
	// PagingNormal reports hasMoreResults false on the last page.
	PagingNormal EndlessPaging = iota
	// PagingRepeatLastPage reports hasMoreResults true on every page, and returns the last page
	// again for page indexes past the end.
	PagingRepeatLastPage
	// PagingNewSensors reports hasMoreResults true on every page, and returns new generated
	// sensors for page indexes past the end, so every page differs.
	PagingNewSensors
)

// faults are the pending injected faults. Counters count down to 0 (off).
type faults struct {
	expireAfterPages int // expire every session once this many more sensors pages were served
	paging           EndlessPaging
	htmlResponses    int // /rest requests to give the 200 HTML login page
	failures         int // /rest requests to give failureStatus
	failureStatus    int
	loginPages       int // login posts to give the 200 HTML login page

	throttles        int           // /rest requests to give 429
	retryAfter       time.Duration // Retry-After of the 429 responses, 0 for none
	envelopeFailures int           // /rest requests to give a 200 envelope with envelopeStatus
	envelopeStatus   string
	truncations      int           // /rest requests whose JSON body is cut in half
	delay            time.Duration // added before every response
	passwordExpired  bool          // accepted logins are redirected to the password change page
}

// Stats counts the requests the console received and how it responded. Tests read it through
// Console.Stats.
type Stats struct {
	Logins          int            // accepted logins
	RejectedLogins  int            // logins redirected to the error page
	Logouts         int            // logouts that ended a session
	Requests        map[string]int // requests received, by "METHOD /path"
	SensorPages     map[int]int    // sensors pages served as JSON, by page index (the offset), of any limit
	LoginRedirects  int            // /rest requests without a valid session, redirected to the login page
	HTMLResponses   int            // /rest requests given the login page by HTMLInsteadOfJSON
	FailedResponses int            // /rest requests given an error status by FailRequests

	ThrottledResponses      int // /rest requests given 429 by Throttle
	EnvelopeFailures        int // /rest requests given a failed envelope by FailEnvelopes
	TruncatedResponses      int // /rest requests whose JSON was cut by TruncateResponses
	TwoFactorPrompts        int // logins given the two-factor prompt
	RejectedTOTPCodes       int // two-factor posts with a wrong or missing code or no pending login
	PasswordChangeRedirects int // logins redirected to the password change page
}

func newStats() Stats {
	return Stats{Requests: make(map[string]int), SensorPages: make(map[int]int)}
}

// Stats returns a copy of the counters.
func (c *Console) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()

	stats := c.stats
	stats.Requests = maps.Clone(c.stats.Requests)
	stats.SensorPages = maps.Clone(c.stats.SensorPages)
	return stats
}

// ExpireSessions ends every session now, as if their 8 hours had passed. The next /rest request
// of each client is redirected to the login page.
func (c *Console) ExpireSessions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.sessions)
}

// ExpireSessionsAfterPages ends every session right after n more sensors pages have been
// served. n <= 0 cancels a pending expiry.
func (c *Console) ExpireSessionsAfterPages(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.expireAfterPages = max(n, 0)
}

// SetEndlessPaging selects how the sensors query ends its paging. PagingNormal restores the
// normal behaviour.
func (c *Console) SetEndlessPaging(mode EndlessPaging) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.paging = mode
}

// HTMLInsteadOfJSON returns the 200 text/html login page for the next n /rest requests, as a
// console behind a proxy that follows the login redirect does.
func (c *Console) HTMLInsteadOfJSON(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.htmlResponses = max(n, 0)
}

// FailRequests responds to the next n /rest requests with status (for example 429, 500 or 403).
// A 500 has the HTML error page of the console's Tomcat server as body, and other statuses a small
// JSON error body. A status outside 400-599 counts as 500.
func (c *Console) FailRequests(n, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.failures = max(n, 0)
	c.faults.failureStatus = status
}

// LoginPageInsteadOfRedirect returns the 200 text/html login page, and no session, for the next
// n login posts, even those with the right credentials.
func (c *Console) LoginPageInsteadOfRedirect(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults.loginPages = max(n, 0)
}

// takeFault decrements a fault counter and reports whether the fault applies to this request.
func (c *Console) takeFault(counter *int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *counter <= 0 {
		return false
	}
	*counter--
	return true
}

func (c *Console) takeFailure() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.faults.failures <= 0 {
		return 0, false
	}
	c.faults.failures--
	c.stats.FailedResponses++
	status := c.faults.failureStatus
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	return status, true
}

func (c *Console) pagingMode() EndlessPaging {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults.paging
}

// pageServed counts a served sensors page and applies a pending session expiry.
func (c *Console) pageServed(index int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.SensorPages[index]++
	if c.faults.expireAfterPages > 0 {
		c.faults.expireAfterPages--
		if c.faults.expireAfterPages == 0 {
			clear(c.sessions)
		}
	}
}

func (c *Console) countRequest(r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Requests[r.Method+" "+r.URL.Path]++
}
