package cybereason_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason"
	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

// tenantMalop is a MalOp of the tenant as the fake console stores it.
type tenantMalop struct {
	guid                 string
	creation, lastUpdate int64
	icon                 string
	raw                  json.RawMessage
}

func tenantMalops(t *testing.T, tenant *cybereasontest.Tenant) []tenantMalop {
	t.Helper()
	var malops []tenantMalop
	for _, raw := range tenant.Malops() {
		var fields struct {
			GUID           string `json:"guid"`
			CreationTime   int64  `json:"creationTime"`
			LastUpdateTime int64  `json:"lastUpdateTime"`
			IconBase64     string `json:"iconBase64"`
		}
		if err := json.Unmarshal(raw, &fields); err != nil {
			t.Fatal(err)
		}
		malops = append(malops, tenantMalop{fields.GUID, fields.CreationTime, fields.LastUpdateTime, fields.IconBase64, raw})
	}
	return malops
}

func TestMalopsInboxWindow(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(31, 100, 50, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)
	all := tenantMalops(t, tenant)

	tests := []struct {
		name     string
		from, to time.Time
	}{
		{"whole history", tenant.OldestMalopTime(), testNow},
		{"two middle days", testNow.Add(-96 * time.Hour), testNow.Add(-48 * time.Hour)},
		{"last hour", testNow.Add(-time.Hour), testNow},
		{"before every MalOp", tenant.OldestMalopTime().Add(-48 * time.Hour), tenant.OldestMalopTime().Add(-time.Hour)},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			var want []string
			for _, malop := range all {
				if malop.creation <= test.to.UnixMilli() && malop.lastUpdate >= test.from.UnixMilli() {
					want = append(want, malop.guid)
				}
			}

			malops, err := client.MalopsInbox(context.Background(), test.from, test.to)
			if err != nil {
				t.Fatalf("MalopsInbox: %v", err)
			}

			var got []string
			for _, malop := range malops {
				got = append(got, malop.GUID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got MalOps %v, want %v", got, want)
			}
		})
	}
}

func TestMalopsInboxLastUpdateTime(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(32, 50, 20, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)
	want := map[string]int64{}
	for _, malop := range tenantMalops(t, tenant) {
		want[malop.guid] = malop.lastUpdate
	}

	malops, err := client.MalopsInbox(context.Background(), tenant.OldestMalopTime(), testNow)
	if err != nil {
		t.Fatal(err)
	}

	for _, malop := range malops {
		if malop.LastUpdateTime.UnixMilli() != want[malop.GUID] || malop.LastUpdateTime.Location() != time.UTC {
			t.Errorf("MalOp %s: LastUpdateTime %s, want %d ms in UTC", malop.GUID, malop.LastUpdateTime, want[malop.GUID])
		}
	}
}

func TestMalopsInboxRemovesOnlyIcon(t *testing.T) {
	tenant := cybereasontest.GenerateTenant(33, 50, 30, testNow)
	console := startConsole(t, tenant)
	client := newClient(t, console.URL, testPassword, nil, nil)

	malops, err := client.MalopsInbox(context.Background(), tenant.OldestMalopTime(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	received := map[string]json.RawMessage{}
	for _, malop := range malops {
		received[malop.GUID] = malop.Raw
	}

	withIcon := 0
	for _, malop := range tenantMalops(t, tenant) {
		icon, _ := json.Marshal(malop.icon)
		want := bytes.Replace(malop.raw, []byte(`"iconBase64":`+string(icon)+`,`), nil, 1)
		if bytes.Equal(want, malop.raw) {
			t.Fatalf("MalOp %s: test data has no iconBase64 member to remove", malop.guid)
		}
		if malop.icon != "" {
			withIcon++
		}
		if got := received[malop.guid]; !bytes.Equal(got, want) {
			t.Errorf("MalOp %s:\n got %s\nwant %s", malop.guid, got, want)
		}
	}
	if withIcon == 0 {
		t.Error("no MalOp of the tenant has a non-empty iconBase64; choose another seed")
	}
}

func TestMalopsInboxRejectedRange(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(34, 10, 5, testNow))
	client := newClient(t, console.URL, testPassword, nil, nil)
	from, to := testNow, testNow.Add(-time.Hour)

	malops, err := client.MalopsInbox(context.Background(), from, to)

	if malops != nil {
		t.Errorf("got %d MalOps with an error", len(malops))
	}
	var statusErr *cybereason.StatusError
	if !errors.As(err, &statusErr) || statusErr.StatusCode != http.StatusBadRequest {
		t.Fatalf("MalopsInbox error %v, want a 400 StatusError", err)
	}
	for _, want := range []string{"rejected the time range", fmt.Sprint(from.UnixMilli()), fmt.Sprint(to.UnixMilli()), "Time range is not valid"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestMalopsInboxHTMLTwice(t *testing.T) {
	console := startConsole(t, cybereasontest.GenerateTenant(35, 10, 5, testNow))
	client := newClient(t, console.URL, testPassword, nil, nil)

	console.HTMLInsteadOfJSON(2)
	malops, err := client.MalopsInbox(context.Background(), testNow.Add(-30*24*time.Hour), testNow)

	if err == nil || !strings.Contains(err.Error(), "/rest/detection/inbox") {
		t.Fatalf("MalopsInbox error %v, want one naming the endpoint", err)
	}
	if malops != nil {
		t.Errorf("got %d MalOps with an error", len(malops))
	}
}
