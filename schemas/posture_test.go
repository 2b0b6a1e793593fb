package schemas

import (
	"slices"
	"testing"
)

func TestPostureChangedFields(t *testing.T) {
	yes, no := true, false
	base := Protection{
		SensorStatus: SensorOnline, LifecycleState: LifecycleActive, ServiceStatus: ServiceUp,
		Prevention: FeatureEnabled, AntiMalware: FeatureEnabled, IsIsolated: &no, IsEffective: true,
	}
	tests := []struct {
		name   string
		change func(*Protection)
		want   []string
	}{
		{"nothing", func(*Protection) {}, nil},
		{"offline", func(p *Protection) { p.SensorStatus, p.ServiceStatus = SensorOffline, ServiceDown }, nil},
		{"raw text", func(p *Protection) { p.Raw = map[string]string{"status": "Offline"} }, nil},
		{"prevention off", func(p *Protection) { p.Prevention = FeatureDisabled }, []string{"prevention"}},
		{"isolated", func(p *Protection) { p.IsIsolated = &yes }, []string{"is_isolated"}},
		{"isolation unreported", func(p *Protection) { p.IsIsolated = nil }, []string{"is_isolated"}},
		{"firewall reported", func(p *Protection) { p.Firewall = FeatureEnabled }, []string{"firewall"}},
		{"archived", func(p *Protection) { p.LifecycleState, p.IsEffective = LifecycleArchived, false }, []string{"is_effective", "lifecycle_state"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base
			tt.change(&next)
			if got := base.Posture().ChangedFields(next.Posture()); !slices.Equal(got, tt.want) {
				t.Errorf("ChangedFields = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSameSecurityStates(t *testing.T) {
	off := SecurityState{StateID: 4, State: "Protection off"}
	isolated := SecurityState{StateID: 3, State: "In network quarantine"}
	tests := []struct {
		a, b []SecurityState
		want bool
	}{
		{nil, []SecurityState{}, true},
		{[]SecurityState{off, isolated}, []SecurityState{isolated, off}, true},
		{[]SecurityState{off}, []SecurityState{isolated}, false},
		{[]SecurityState{off}, []SecurityState{off, isolated}, false},
	}
	for _, tt := range tests {
		if got := SameSecurityStates(tt.a, tt.b); got != tt.want {
			t.Errorf("SameSecurityStates(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
