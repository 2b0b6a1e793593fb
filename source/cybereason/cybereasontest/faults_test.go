package cybereasontest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func sensorsPageBody(page int) string {
	return fmt.Sprintf(`{"limit":10,"offset":%d,"sortingFieldName":"sensorId","sortDirection":"ASC","filters":[]}`, page)
}

func TestExpireSessions(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(5, 30, 0, testNow))
	session := c.session(t)

	c.ExpireSessions()
	resp := c.post(t, "/rest/sensors/query", session, sensorsPageBody(0))

	if resp.status != http.StatusFound || resp.header.Get("Location") != "/login.html" {
		t.Errorf("status %d, Location %q; want 302 to /login.html", resp.status, resp.header.Get("Location"))
	}
	if stats := c.Stats(); stats.LoginRedirects != 1 {
		t.Errorf("Stats().LoginRedirects = %d, want 1", stats.LoginRedirects)
	}
}

func TestExpireSessionsAfterPages(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(5, 30, 0, testNow))
	session := c.session(t)

	c.ExpireSessionsAfterPages(2)
	statuses := []int{
		c.post(t, "/rest/sensors/query", session, sensorsPageBody(0)).status,
		c.post(t, "/rest/sensors/query", session, sensorsPageBody(1)).status,
		c.post(t, "/rest/sensors/query", session, sensorsPageBody(2)).status,
	}

	want := []int{http.StatusOK, http.StatusOK, http.StatusFound}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("statuses of pages 0, 1, 2: %v, want %v", statuses, want)
	}
	if fresh := c.session(t); c.post(t, "/rest/sensors/query", fresh, sensorsPageBody(2)).status != http.StatusOK {
		t.Error("a new login after the expiry did not get a working session")
	}
}

func TestEndlessPaging(t *testing.T) {
	tests := []struct {
		name        string
		mode        cybereasontest.EndlessPaging
		samePastEnd bool // whether pages past the end repeat the last page
	}{
		{"repeat last page", cybereasontest.PagingRepeatLastPage, true},
		{"new sensors", cybereasontest.PagingNewSensors, false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			c := startConsole(t, cybereasontest.GenerateTenant(5, 25, 0, testNow))
			session := c.session(t)
			c.SetEndlessPaging(test.mode)

			var pages [][]string
			for page := range 5 {
				result := decodeSensors(t, c.post(t, "/rest/sensors/query", session, sensorsPageBody(page)))
				if !*result.HasMoreResults {
					t.Fatalf("page %d: hasMoreResults false", page)
				}
				var ids []string
				for _, sensor := range result.Sensors {
					ids = append(ids, sensor.SensorID)
				}
				if len(ids) == 0 {
					t.Fatalf("page %d is empty", page)
				}
				pages = append(pages, ids)
			}

			// Pages 0 to 2 contain the 25 real sensors, and pages 3 and 4 are past the end.
			if same := fmt.Sprint(pages[3]) == fmt.Sprint(pages[2]) && fmt.Sprint(pages[4]) == fmt.Sprint(pages[2]); same != test.samePastEnd {
				t.Errorf("pages past the end equal the last page: %t, want %t", same, test.samePastEnd)
			}
			if !test.samePastEnd && fmt.Sprint(pages[3]) == fmt.Sprint(pages[4]) {
				t.Error("new-sensors pages 3 and 4 are equal")
			}
		})
	}
}

func TestHTMLInsteadOfJSON(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(5, 5, 0, testNow))
	session := c.session(t)

	c.HTMLInsteadOfJSON(1)
	first := c.post(t, "/rest/sensors/query", session, `{}`)
	second := c.post(t, "/rest/sensors/query", session, `{}`)

	if first.status != http.StatusOK || !bytes.Contains(first.body, []byte("<app-login>")) {
		t.Errorf("first response: status %d, want 200 with the login page", first.status)
	}
	if second.status != http.StatusOK || bytes.Contains(second.body, []byte("<app-login>")) {
		t.Errorf("second response: status %d, want 200 JSON", second.status)
	}
	if stats := c.Stats(); stats.HTMLResponses != 1 {
		t.Errorf("Stats().HTMLResponses = %d, want 1", stats.HTMLResponses)
	}
}

func TestFailRequests(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(5, 5, 0, testNow))
	session := c.session(t)

	c.FailRequests(2, http.StatusTooManyRequests)
	statuses := []int{
		c.post(t, "/rest/sensors/query", session, `{}`).status,
		c.post(t, "/rest/sensors/query", session, `{}`).status,
		c.post(t, "/rest/sensors/query", session, `{}`).status,
	}

	want := []int{http.StatusTooManyRequests, http.StatusTooManyRequests, http.StatusOK}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
}

func TestLoginPageInsteadOfRedirect(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(5, 5, 0, testNow))

	c.LoginPageInsteadOfRedirect(1)
	resp := c.login(t, testUser, testPassword)

	if resp.status != http.StatusOK || !bytes.Contains(resp.body, []byte("<app-login>")) {
		t.Errorf("status %d, want 200 with the login page", resp.status)
	}
	if stats := c.Stats(); stats.Logins != 0 {
		t.Errorf("Stats().Logins = %d, want 0", stats.Logins)
	}
}

func TestStatsCountRequests(t *testing.T) {
	c := startConsole(t, cybereasontest.GenerateTenant(5, 5, 0, testNow))
	session := c.session(t)
	c.post(t, "/rest/sensors/query", session, `{}`)
	c.post(t, "/rest/sensors/query", session, `{}`)

	stats := c.Stats()
	if stats.Requests["POST /rest/sensors/query"] != 2 || stats.Requests["POST /login.html"] != 1 {
		t.Errorf("Stats().Requests = %v", stats.Requests)
	}
}
