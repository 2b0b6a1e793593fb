package cybereasontest_test

import (
	"testing"
	"time"

	"github.com/oversoc/cybereason-connector/source/cybereason/cybereasontest"
)

func TestZZProbe(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 6, 7, 10, 200} {
		for seed := int64(1); seed < 30; seed++ {
			tenant := cybereasontest.GenerateTenant(seed, n, 3, testNow)
			for step := 1; step <= 3; step++ {
				c := tenant.Advance(testNow.Add(time.Duration(step) * time.Hour))
				seen := map[string]int{}
				for _, ch := range c.ProtectionChanges { seen[ch.SensorID]++ }
				for _, ch := range c.StatusChanges { seen[ch.SensorID]++ }
				if c.RemovedSensor != "" { seen[c.RemovedSensor]++ }
				for id, k := range seen { if k > 1 { t.Logf("n=%d seed=%d step=%d: %s in %d changes: %v", n, seed, step, id, k, c) ; break} }
			}
		}
	}
	tenant, err := cybereasontest.LoadTenant("/work/shared/fixtures/cybereason/tenant-public")
	if err != nil { t.Fatal(err) }
	t.Log(tenant.Advance(time.Now()))
}
