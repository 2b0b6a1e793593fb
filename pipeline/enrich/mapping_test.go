package enrich

import (
	"slices"
	"testing"

	"github.com/oversoc/cybereason-connector/schemas"
)

func TestSensorStatusMapping(t *testing.T) {
	tests := []struct {
		raw       string
		status    schemas.SensorStatus
		lifecycle schemas.LifecycleState
		known     bool
	}{
		{"Online", schemas.SensorOnline, schemas.LifecycleActive, true},
		{"ONLINE", schemas.SensorOnline, schemas.LifecycleActive, true},
		{"Offline", schemas.SensorOffline, schemas.LifecycleActive, true},
		{"Stale", schemas.SensorStale, schemas.LifecycleStale, true},
		{"Archived", schemas.SensorArchived, schemas.LifecycleArchived, true},
		{"", schemas.SensorUnknown, schemas.LifecycleUnknown, true},
		{"Suspended", schemas.SensorUnknown, schemas.LifecycleUnknown, false},
	}
	for _, tt := range tests {
		status, lifecycle, known := sensorStatus(tt.raw)
		if status != tt.status || lifecycle != tt.lifecycle || known != tt.known {
			t.Errorf("sensorStatus(%q) = %s, %s, %v; want %s, %s, %v", tt.raw, status, lifecycle, known, tt.status, tt.lifecycle, tt.known)
		}
	}
}

func TestServiceStatusMapping(t *testing.T) {
	tests := []struct {
		raw   string
		want  schemas.ServiceStatus
		known bool
	}{
		{"Up", schemas.ServiceUp, true},
		{"up", schemas.ServiceUp, true},
		{"Down", schemas.ServiceDown, true},
		{"Error", schemas.ServiceUnknown, false},
	}
	for _, tt := range tests {
		got, known := serviceStatus(tt.raw)
		if got != tt.want || known != tt.known {
			t.Errorf("serviceStatus(%q) = %s, %v; want %s, %v", tt.raw, got, known, tt.want, tt.known)
		}
	}
}

// TestFeatureStateMapping covers every value seen for each protection field, plus unknown ones.
func TestFeatureStateMapping(t *testing.T) {
	const (
		on     = schemas.FeatureEnabled
		detect = schemas.FeatureDetectOnly
		off    = schemas.FeatureDisabled
		unk    = schemas.FeatureUnknown
	)
	tests := []struct {
		field string
		raw   string
		want  schemas.FeatureState
		known bool
	}{
		{"preventionStatus", "ENABLED", on, true},
		{"preventionStatus", "DISABLED", off, true},
		{"preventionStatus", "NOT_INSTALLED", off, true},
		{"preventionStatus", "UNKNOWN", unk, true},
		{"preventionStatus", "ENABLE", on, true},
		{"preventionStatus", "DISABLE", off, true},
		{"preventionStatus", "UNINSTALL", off, true},
		{"preventionStatus", " enabled ", on, true},
		{"preventionStatus", "HALF_ON", unk, false},

		{"antiMalwareStatus", "AM_ENABLED", on, true},
		{"antiMalwareStatus", "AM_DISABLED", off, true},
		{"antiMalwareStatus", "AM_SNOOZED", unk, false},

		{"amStatus", "AM_UNINSTALLED", off, true},
		{"amStatus", "AM_DETECT_ONLY", detect, true},
		{"amStatus", "AM_DETECT_DISINFECT", on, true},
		{"amStatus", "AM_QUARANTINE", on, true},
		{"amStatus", "AM_BLOCK", on, true},
		{"amStatus", "AM_FIRST_TIME_INITIALIZATION", unk, true},
		{"amStatus", "AM_PRIOR_AV_ERROR", unk, true},
		{"amStatus", "AM_UNKNOWN_ERROR", unk, true},
		{"amStatus", "UNKNOWN", unk, true},
		{"amStatus", "AM_INSTALLED", unk, true},
		{"amStatus", "AM_LEARNING", unk, false},

		{"staticAnalysisDetectMode", "DISABLED", off, true},
		{"staticAnalysisDetectMode", "CAUTIOUS", detect, true},
		{"staticAnalysisDetectMode", "MODERATE", detect, true},
		{"staticAnalysisDetectMode", "AGGRESSIVE", detect, true},
		{"staticAnalysisDetectMode", "UNKNOWN", unk, true},
		{"staticAnalysisDetectMode", "SET_BY_POLICY", unk, true},
		{"staticAnalysisDetectMode", "PARANOID", unk, false},

		{"staticAnalysisPreventMode", "DISABLED", off, true},
		{"staticAnalysisPreventMode", "CAUTIOUS", on, true},
		{"staticAnalysisPreventMode", "MODERATE", on, true},
		{"staticAnalysisPreventMode", "AGGRESSIVE", on, true},
		{"staticAnalysisPreventMode", "UNKNOWN", unk, true},

		{"ransomwareStatus", "UNKNOWN", unk, true},
		{"ransomwareStatus", "DISABLED", off, true},
		{"ransomwareStatus", "DETECT_ONLY", detect, true},
		{"ransomwareStatus", "DETECT_AND_SUSPEND", on, true},
		{"ransomwareStatus", "DETECT_SUSPEND_PREVENT", on, true},
		{"ransomwareStatus", "DETECT_AND_ALERT", unk, false},

		{"antiExploitStatus", "AE_ENABLED", on, true},
		{"antiExploitStatus", "AE_DISABLED", off, true},
		{"antiExploitStatus", "AE_CAUTIOUS", on, true},
		{"antiExploitStatus", "AE_AGGRESSIVE", on, true},
		{"antiExploitStatus", "AE_UNKNOWN", unk, true},
		{"antiExploitStatus", "DISABLED", off, true},
		{"antiExploitStatus", "AE_BETA", unk, false},

		{"powerShellStatus", "PS_ENABLED", on, true},
		{"powerShellStatus", "PS_DISABLED", off, true},
		{"powerShellStatus", "PS_DEFAULT", unk, true},
		{"powerShellStatus", "PS_AUDIT", unk, false},

		{"documentProtectionStatus", "DS_DETECT", detect, true},
		{"documentProtectionStatus", "DS_PREVENT", on, true},
		{"documentProtectionStatus", "DS_QUARANTINE", on, true},
		{"documentProtectionStatus", "DS_DISABLED", off, true},
		{"documentProtectionStatus", "DS_UNKNOWN", unk, true},
		{"documentProtectionStatus", "DS_SANDBOX", unk, false},

		{"fwStatus", "ENABLED", on, true},
		{"fwStatus", "DISABLED", off, true},
		{"usbStatus", "ENABLED", on, true},
		{"usbStatus", "DISABLED", off, true},
		{"usbStatus", "READ_ONLY", unk, false},

		{"remoteShellStatus", "AC_ENABLED", on, true},
		{"remoteShellStatus", "AC_DISABLED", off, true},

		{"bepMode", "BEP_DETECT", detect, true},
		{"bepMode", "BEP_PREVENT", on, true},
		{"bepMode", "BEP_DISABLED", off, true},
		{"vppMode", "VPP_DETECT", detect, true},
		{"vppMode", "VPP_PREVENT", on, true},
		{"vppMode", "VPP_DISABLED", off, true},

		{"variantFilePreventionMode", "VFP_M_DETECT", detect, true},
		{"variantFilePreventionMode", "VFP_M_PREVENT", on, true},
		{"variantFilePreventionMode", "VFP_M_QUARANTINE", on, true},
		{"variantFilePreventionMode", "VFP_M_DISABLED", off, true},
		{"variantFilePreventionMode", "VFP_M_UNKNOWN", unk, true},
		{"variantFilePreventionMode", "VFP_M_SHADOW", unk, false},
	}
	fields := make(map[string]featureField)
	for _, field := range featureFields() {
		fields[field.vendor] = field
	}
	for _, tt := range tests {
		field, ok := fields[tt.field]
		if !ok {
			t.Fatalf("no feature field %s", tt.field)
		}
		got, known := featureState(normalizeVendorValue(tt.raw, field.prefix), field.mode)
		if got != tt.want || known != tt.known {
			t.Errorf("%s %q = %s, known %v; want %s, known %v", tt.field, tt.raw, got, known, tt.want, tt.known)
		}
	}
}

func TestDocumentProtectionModeMapping(t *testing.T) {
	tests := []struct {
		raw   string
		want  schemas.Sensitivity
		known bool
	}{
		{"DM_CAUTIOUS", schemas.SensitivityCautious, true},
		{"DM_MODERATE", schemas.SensitivityModerate, true},
		{"DM_AGGRESSIVE", schemas.SensitivityAggressive, true},
		{"DM_UNKNOWN", schemas.SensitivityUnknown, true},
		{"dm_cautious", schemas.SensitivityCautious, true},
		{"DM_EXTREME", schemas.SensitivityUnknown, false},
	}
	for _, tt := range tests {
		got, known := documentProtectionMode(tt.raw)
		if got != tt.want || known != tt.known {
			t.Errorf("documentProtectionMode(%q) = %s, %v; want %s, %v", tt.raw, got, known, tt.want, tt.known)
		}
	}
}

func TestOSTypeMapping(t *testing.T) {
	tests := []struct {
		raw     string
		id      int
		caption string
		known   bool
	}{
		{"WINDOWS", 100, "Windows", true},
		{"windows", 100, "Windows", true},
		{"LINUX", 200, "Linux", true},
		{"OSX", 300, "macOS", true},
		{"UNKNOWN_OS", 0, "Unknown", true},
		{"", 0, "Unknown", true},
		{"SOLARIS", 0, "Unknown", false},
	}
	for _, tt := range tests {
		id, caption, known := osTypeID(tt.raw)
		if id != tt.id || caption != tt.caption || known != tt.known {
			t.Errorf("osTypeID(%q) = %d, %q, %v; want %d, %q, %v", tt.raw, id, caption, known, tt.id, tt.caption, tt.known)
		}
	}
}

func TestSensorOS(t *testing.T) {
	tests := []struct {
		osType, osVersionType string
		want                  *schemas.OS
	}{
		{"WINDOWS", "Windows_10", &schemas.OS{Name: "Windows 10", TypeID: 100, Type: "Windows", Version: "10"}},
		{"WINDOWS", "Windows_Server_2019", &schemas.OS{Name: "Windows Server 2019", TypeID: 100, Type: "Windows", Version: "2019"}},
		{"WINDOWS", "Windows_Server_2012_R2", &schemas.OS{Name: "Windows Server 2012 R2", TypeID: 100, Type: "Windows"}},
		{"LINUX", "Centos_Linux_7", &schemas.OS{Name: "Centos Linux 7", TypeID: 200, Type: "Linux", Version: "7"}},
		{"OSX", "Catalina_10_15", &schemas.OS{Name: "Catalina 10 15", TypeID: 300, Type: "macOS", Version: "10.15"}},
		{"LINUX", "", &schemas.OS{Name: "LINUX", TypeID: 200, Type: "Linux"}},
		{"", "Windows_11", &schemas.OS{Name: "Windows 11", TypeID: 0, Type: "Unknown", Version: "11"}},
		{"UNKNOWN_OS", "", &schemas.OS{Name: "UNKNOWN_OS", TypeID: 0, Type: "Unknown"}},
		{"", "", nil},
	}
	for _, tt := range tests {
		got := sensorOS(tt.osType, tt.osVersionType, func(string, string) {})
		if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("sensorOS(%q, %q) = %+v, want %+v", tt.osType, tt.osVersionType, got, tt.want)
		}
	}
}

func TestDeviceTypeMapping(t *testing.T) {
	tests := []struct {
		osVersionType, deviceType string
		id                        int
		reported                  bool
	}{
		{"Windows_Server_2019", "", 1, false},
		{"Windows_Server_2019", "laptop", 1, false},
		{"Windows_10", "", 0, false},
		{"Windows_10", "Laptop", 3, false},
		{"Windows_10", "Desktop", 2, false},
		{"Centos_Linux_7", "Virtual", 6, false},
		{"Windows_10", "Toaster", 0, true},
	}
	for _, tt := range tests {
		reported := false
		id, _ := deviceType(tt.osVersionType, tt.deviceType, func(string, string) { reported = true })
		if id != tt.id || reported != tt.reported {
			t.Errorf("deviceType(%q, %q) = %d, reported %v; want %d, %v", tt.osVersionType, tt.deviceType, id, reported, tt.id, tt.reported)
		}
	}
}

func TestEndpointIP(t *testing.T) {
	tests := []struct {
		raw  string
		want string
		ok   bool
	}{
		{"10.20.30.42", "10.20.30.42", true},
		{"2001:db8::1", "2001:db8::1", true},
		{"2001:DB8:0:0::1", "2001:db8::1", true},
		{"::ffff:192.0.2.7", "192.0.2.7", true},
		{"fe80::1%eth0", "", false},
		{"<internal_ip_address>", "", false},
		{"<ip_address>", "", false},
		{"", "", false},
		{"127.0.0.1", "", false},
		{"0.0.0.0", "", false},
		{"169.254.10.1", "", false},
		{"224.0.0.1", "", false},
		{"10.0.0.1, 10.0.0.2", "", false},
		{"999.1.1.1", "", false},
	}
	for _, tt := range tests {
		got, ok := endpointIP(tt.raw)
		if got != tt.want || ok != tt.ok {
			t.Errorf("endpointIP(%q) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMACFromPylumID(t *testing.T) {
	tests := []struct {
		pylumID string
		want    string
	}{
		{"PYLUMCLIENT_NORTHWIND_FIN-LT-042_3C52821A9F07", "3c:52:82:1a:9f:07"},
		{"PYLUMCLIENT_ACME_BUILD_2_5254000ED4E5", "52:54:00:0e:d4:e5"},
		{"PYLUMCLIENT_ACME_HOST_000000000000", ""},
		{"PYLUMCLIENT_ACME_HOST_FFFFFFFFFFFF", ""},
		{"PYLUMCLIENT_ACME_HOST_013C52821A9F", ""},
		{"PYLUMCLIENT_ACME_HOST_3C52821A9F0", ""},
		{"PYLUMCLIENT_ACME_HOST_3C52821A9F0G", ""},
		{"PYLUMCLIENT_ACME_HOST", ""},
		{"3C52821A9F07", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := macFromPylumID(tt.pylumID); got != tt.want {
			t.Errorf("macFromPylumID(%q) = %q, want %q", tt.pylumID, got, tt.want)
		}
	}
}

func TestDomainOf(t *testing.T) {
	tests := []struct{ fqdn, want string }{
		{"fin-lt-042.corp.northwind.test", "corp.northwind.test"},
		{"fin-lt-042.corp.northwind.test.", "corp.northwind.test"},
		{"fin-lt-042", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := domainOf(tt.fqdn); got != tt.want {
			t.Errorf("domainOf(%q) = %q, want %q", tt.fqdn, got, tt.want)
		}
	}
}

func TestSeverityMapping(t *testing.T) {
	tests := []struct {
		raw     string
		id      int
		caption string
		known   bool
	}{
		{"High", 4, "High", true},
		{"HIGH", 4, "High", true},
		{"Medium", 3, "Medium", true},
		{"Low", 2, "Low", true},
		{"", 0, "Unknown", true},
		{"N/A", 0, "Unknown", true},
		{"Severe", 0, "Unknown", false},
	}
	for _, tt := range tests {
		id, caption, known := severity(tt.raw)
		if id != tt.id || caption != tt.caption || known != tt.known {
			t.Errorf("severity(%q) = %d, %q, %v; want %d, %q, %v", tt.raw, id, caption, known, tt.id, tt.caption, tt.known)
		}
	}
}

func TestPriorityMapping(t *testing.T) {
	tests := []struct {
		raw     string
		id      int
		caption string
		known   bool
	}{
		{"HIGH", 3, "High", true},
		{"MEDIUM", 2, "Medium", true},
		{"LOW", 1, "Low", true},
		{"low", 1, "Low", true},
		{"", 0, "Unknown", true},
		{"URGENT", 0, "Unknown", false},
	}
	for _, tt := range tests {
		id, caption, known := priority(tt.raw)
		if id != tt.id || caption != tt.caption || known != tt.known {
			t.Errorf("priority(%q) = %d, %q, %v; want %d, %q, %v", tt.raw, id, caption, known, tt.id, tt.caption, tt.known)
		}
	}
}

func TestMalopStatusMapping(t *testing.T) {
	tests := []struct {
		raw     string
		closed  bool
		status  int
		verdict int
		known   bool
	}{
		{"Active", false, statusNew, verdictUnknown, true},
		{"Active", true, statusResolved, verdictUnknown, true},
		{"UNREAD", false, statusNew, verdictUnknown, true},
		{"New", false, statusNew, verdictUnknown, true},
		{"Pending", false, statusNew, verdictUnknown, true},
		{"TODO", false, statusNew, verdictUnknown, true},
		{"To Review", false, statusNew, verdictUnknown, true},
		{"ReOpened", false, statusNew, verdictUnknown, true},
		{"OPEN", false, statusInProgress, verdictUnknown, true},
		{"UnderInvestigation", false, statusInProgress, verdictUnknown, true},
		{"Under investigation", false, statusInProgress, verdictUnknown, true},
		{"OnHold", false, statusInProgress, verdictUnknown, true},
		{"Remediated", false, statusResolved, verdictTruePositive, true},
		{"Remediated", true, statusResolved, verdictTruePositive, true},
		{"Closed", false, statusResolved, verdictUnknown, true},
		{"FP", false, statusResolved, verdictFalsePositive, true},
		{"Not Relevant", false, statusResolved, verdictFalsePositive, true},
		{"Excluded", false, statusSuppressed, verdictBenign, true},
		{"Excluded", true, statusResolved, verdictBenign, true},
		{"Deleted", false, statusDeleted, verdictUnknown, true},
		{"", false, statusUnknown, verdictUnknown, true},
		{"", true, statusResolved, verdictUnknown, true},
		{"Escalated", false, statusUnknown, verdictUnknown, false},
		{"Escalated", true, statusResolved, verdictUnknown, false},
	}
	for _, tt := range tests {
		got := mapMalopStatus(tt.raw, tt.closed)
		if got.id != tt.status || got.verdict != tt.verdict || got.known != tt.known {
			t.Errorf("mapMalopStatus(%q, closed=%v) = %+v; want status %d, verdict %d, known %v", tt.raw, tt.closed, got, tt.status, tt.verdict, tt.known)
		}
	}
}

func TestCaptions(t *testing.T) {
	statuses := map[int]string{0: "Unknown", 1: "New", 2: "In Progress", 3: "Suppressed", 4: "Resolved", 6: "Deleted", 42: "Unknown"}
	for id, want := range statuses {
		if got := statusCaption(id); got != want {
			t.Errorf("statusCaption(%d) = %q, want %q", id, got, want)
		}
	}
	verdicts := map[int]string{0: "Unknown", 1: "False Positive", 2: "True Positive", 5: "Benign", 42: "Unknown"}
	for id, want := range verdicts {
		if got := verdictCaption(id); got != want {
			t.Errorf("verdictCaption(%d) = %q, want %q", id, got, want)
		}
	}
}

func TestAssess(t *testing.T) {
	yes, no := boolPointer(true), boolPointer(false)
	tests := []struct {
		name      string
		in        schemas.Protection
		effective bool
		stateIDs  []int
		level     int
	}{
		{
			name:      "protected and healthy",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleActive, ServiceStatus: schemas.ServiceUp, Prevention: schemas.FeatureEnabled, AntiMalware: schemas.FeatureDisabled, IsOutdated: no, IsIsolated: no},
			effective: true, stateIDs: nil, level: 1,
		},
		{
			name:      "anti-malware only",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleActive, AntiMalware: schemas.FeatureEnabled},
			effective: true, stateIDs: nil, level: 1,
		},
		{
			name:      "protection off",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleActive, ServiceStatus: schemas.ServiceUp, Prevention: schemas.FeatureDisabled, AntiMalware: schemas.FeatureDisabled},
			effective: false, stateIDs: []int{4}, level: 2,
		},
		{
			name:      "detect only is not protection off",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleActive, AntiMalware: schemas.FeatureDetectOnly},
			effective: false, stateIDs: nil, level: 1,
		},
		{
			name:      "service down while online",
			in:        schemas.Protection{SensorStatus: schemas.SensorOnline, LifecycleState: schemas.LifecycleActive, ServiceStatus: schemas.ServiceDown, Prevention: schemas.FeatureEnabled},
			effective: false, stateIDs: []int{5}, level: 2,
		},
		{
			name:      "service down while offline",
			in:        schemas.Protection{SensorStatus: schemas.SensorOffline, LifecycleState: schemas.LifecycleActive, ServiceStatus: schemas.ServiceDown, Prevention: schemas.FeatureEnabled},
			effective: true, stateIDs: nil, level: 1,
		},
		{
			name:      "outdated and isolated",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleActive, Prevention: schemas.FeatureEnabled, IsOutdated: yes, IsIsolated: yes},
			effective: true, stateIDs: []int{1, 3}, level: 2,
		},
		{
			name:      "archived with service down",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleArchived, ServiceStatus: schemas.ServiceDown, Prevention: schemas.FeatureEnabled},
			effective: false, stateIDs: []int{99}, level: 2,
		},
		{
			name:      "stale",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleStale, AntiMalware: schemas.FeatureEnabled},
			effective: false, stateIDs: []int{99}, level: 2,
		},
		{
			name:      "unknown lifecycle",
			in:        schemas.Protection{LifecycleState: schemas.LifecycleUnknown},
			effective: false, stateIDs: nil, level: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.in
			assess(&p)
			if p.IsEffective != tt.effective {
				t.Errorf("is_effective = %v, want %v", p.IsEffective, tt.effective)
			}
			var ids []int
			for _, state := range p.SecurityStates {
				ids = append(ids, state.StateID)
			}
			if len(ids) != len(tt.stateIDs) {
				t.Fatalf("security states %v, want ids %v", p.SecurityStates, tt.stateIDs)
			}
			for i := range ids {
				if ids[i] != tt.stateIDs[i] {
					t.Errorf("security states %v, want ids %v", p.SecurityStates, tt.stateIDs)
				}
			}
			if p.SecurityStates == nil {
				t.Error("security states is nil, want an empty list")
			}
			if p.SecurityLevelID != tt.level {
				t.Errorf("security_level_id = %d, want %d", p.SecurityLevelID, tt.level)
			}
		})
	}
}

func TestVendorBoolean(t *testing.T) {
	object := vendorObject{
		"boolTrue": true, "boolFalse": false, "textTrue": "true", "textFalse": "FALSE", "one": "1",
		"zero": jsonNumber("0"), "empty": "", "null": nil, "maybe": "maybe", "list": []any{true},
	}
	tests := []struct {
		name  string
		value bool
		state fieldState
	}{
		{"boolTrue", true, fieldValid},
		{"boolFalse", false, fieldValid},
		{"textTrue", true, fieldValid},
		{"textFalse", false, fieldValid},
		{"one", true, fieldValid},
		{"zero", false, fieldValid},
		{"empty", false, fieldAbsent},
		{"null", false, fieldAbsent},
		{"missing", false, fieldAbsent},
		{"maybe", false, fieldInvalid},
		{"list", false, fieldAbsent},
	}
	for _, tt := range tests {
		value, state := object.boolean(tt.name)
		if value != tt.value || state != tt.state {
			t.Errorf("boolean(%s) = %v, %d; want %v, %d", tt.name, value, state, tt.value, tt.state)
		}
	}
}

func TestVendorMillis(t *testing.T) {
	object := vendorObject{
		"number": jsonNumber("1767225600000"), "text": "1767225600000", "float": jsonNumber("1.7672256e12"),
		"zero": jsonNumber("0"), "negative": jsonNumber("-5"), "empty": "", "null": nil, "word": "yesterday",
		"fraction": jsonNumber("12.5"),
	}
	tests := []struct {
		name string
		want int64
		ok   bool
	}{
		{"number", 1767225600000, true},
		{"text", 1767225600000, true},
		{"float", 1767225600000, true},
		{"zero", 0, false},
		{"negative", 0, false},
		{"empty", 0, false},
		{"null", 0, false},
		{"missing", 0, false},
		{"word", 0, false},
		{"fraction", 0, false},
	}
	for _, tt := range tests {
		got, ok := object.millis(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("millis(%s) = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestInvestigationStatusMapping(t *testing.T) {
	tests := []struct {
		raw    string
		status int
		known  bool
	}{
		{"Pending", statusNew, true},
		{"UnderInvestigation", statusInProgress, true},
		{"Under investigation", statusInProgress, true},
		{"OnHold", statusInProgress, true},
		{"ON_HOLD", statusInProgress, true},
		{"Reopened", statusNew, true},
		{"Closed", statusResolved, true},
		{"", statusUnknown, true},
		{"Escalated", statusUnknown, false},
	}
	for _, tt := range tests {
		got := mapInvestigationStatus(tt.raw)
		if got.id != tt.status || got.verdict != verdictUnknown || got.known != tt.known {
			t.Errorf("mapInvestigationStatus(%q) = %+v; want status %d, known %v", tt.raw, got, tt.status, tt.known)
		}
	}
}

func TestManagementStatusMapping(t *testing.T) {
	tests := []struct {
		raw     string
		status  int
		verdict int
		known   bool
	}{
		{"UNREAD", statusNew, verdictUnknown, true},
		{"TODO", statusNew, verdictUnknown, true},
		{"REOPEN", statusNew, verdictUnknown, true},
		{"OPEN", statusInProgress, verdictUnknown, true},
		{"open", statusInProgress, verdictUnknown, true},
		{"CLOSED", statusResolved, verdictTruePositive, true},
		{"FP", statusResolved, verdictFalsePositive, true},
		{"RESOLVED", statusUnknown, verdictUnknown, false},
	}
	for _, tt := range tests {
		got := mapManagementStatus(tt.raw)
		if got.id != tt.status || got.verdict != tt.verdict || got.known != tt.known {
			t.Errorf("mapManagementStatus(%q) = %+v; want status %d, verdict %d, known %v", tt.raw, got, tt.status, tt.verdict, tt.known)
		}
	}
}

func TestMalwareStatusMapping(t *testing.T) {
	tests := []struct {
		raw     string
		status  int
		verdict int
		known   bool
	}{
		{"Detected", statusNew, verdictUnknown, true},
		{"FailedToQuarantine", statusNew, verdictUnknown, true},
		{"DeleteOnRestart", statusInProgress, verdictUnknown, true},
		{"Deleting on restart", statusInProgress, verdictUnknown, true},
		{"Prevented", statusResolved, verdictTruePositive, true},
		{"Quarantined", statusResolved, verdictTruePositive, true},
		{"Remediated", statusResolved, verdictTruePositive, true},
		{"Done", statusResolved, verdictTruePositive, true},
		{"Excluded", statusSuppressed, verdictBenign, true},
		{"", statusUnknown, verdictUnknown, true},
		{"Sandboxed", statusUnknown, verdictUnknown, false},
	}
	for _, tt := range tests {
		got := mapMalwareStatus(tt.raw)
		if got.id != tt.status || got.verdict != tt.verdict || got.known != tt.known {
			t.Errorf("mapMalwareStatus(%q) = %+v; want status %d, verdict %d, known %v", tt.raw, got, tt.status, tt.verdict, tt.known)
		}
	}
}

func TestMalwareSeverityMapping(t *testing.T) {
	tests := []struct {
		rawType, score string
		id             int
		caption        string
		known          bool
	}{
		{"KnownMalware", "", 4, "High", true},
		{"RansomwareMalware", "", 4, "High", true},
		{"FilelessMalware", "", 4, "High", true},
		{"UnknownMalware", "0.7721", 3, "Medium", true},
		{"UnknownMalware", "0.9", 4, "High", true},
		{"UnknownMalware", "", 3, "Medium", true},
		{"UnknownMalware", "17", 3, "Medium", true},
		{"ApplicationControlMalware", "", 2, "Low", true},
		{"", "", 0, "Unknown", true},
		{"QuantumMalware", "", 0, "Unknown", false},
	}
	for _, tt := range tests {
		id, caption, known := malwareSeverity(tt.rawType, tt.score)
		if id != tt.id || caption != tt.caption || known != tt.known {
			t.Errorf("malwareSeverity(%q, %q) = %d %q %v; want %d %q %v", tt.rawType, tt.score, id, caption, known, tt.id, tt.caption, tt.known)
		}
	}
}

func TestParseAttackElement(t *testing.T) {
	tests := []struct {
		text string
		want schemas.AttackElement
	}{
		{"T1059", schemas.AttackElement{UID: "T1059"}},
		{"t1059.001", schemas.AttackElement{UID: "T1059.001"}},
		{"TA0002", schemas.AttackElement{UID: "TA0002"}},
		{"T1059 - Command and Scripting Interpreter", schemas.AttackElement{UID: "T1059", Name: "Command and Scripting Interpreter"}},
		{"T1059: Command and Scripting Interpreter", schemas.AttackElement{UID: "T1059", Name: "Command and Scripting Interpreter"}},
		{"Masquerading (T1036)", schemas.AttackElement{UID: "T1036", Name: "Masquerading"}},
		{"Execution", schemas.AttackElement{Name: "Execution"}},
		{"T10590", schemas.AttackElement{Name: "T10590"}},
		{"T1059.1", schemas.AttackElement{Name: "T1059.1"}},
		{"(T1036)", schemas.AttackElement{Name: "(T1036)"}},
	}
	for _, tt := range tests {
		if got := parseAttackElement(tt.text); got != tt.want {
			t.Errorf("parseAttackElement(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

// TestProtectionKeepsEveryRawField checks that every protection field of the sensor API lands in
// protection.raw with its vendor text.
func TestProtectionKeepsEveryRawField(t *testing.T) {
	sensor := vendorObject{}
	fields := []string{
		"antiMalwareStatus", "amStatus", "amModeOrigin", "antiMalwareModeOrigin", "avDbVersion",
		"staticAnalysisDetectMode", "staticAnalysisPreventMode", "staticAnalysisDetectModeOrigin",
		"staticAnalysisPreventModeOrigin", "ransomwareStatus", "preventionStatus", "preventionError",
		"antiExploitStatus", "powerShellStatus", "documentProtectionStatus", "documentProtectionMode",
		"usbStatus", "fwStatus", "remoteShellStatus", "bepMode", "vppMode", "variantFilePreventionMode",
		"isolated", "status", "serviceStatus", "outdated",
	}
	for _, name := range fields {
		sensor[name] = "X_" + name
	}
	var unknown []string
	protection := mapProtection(sensor, func(field, _ string) { unknown = append(unknown, field) })

	for _, name := range fields {
		if got := protection.Raw[name]; got != "X_"+name {
			t.Errorf("protection.raw[%s] = %q, want the vendor text", name, got)
		}
	}
	if len(protection.Raw) != len(fields) {
		t.Errorf("protection.raw has %d fields, want %d", len(protection.Raw), len(fields))
	}
	for _, name := range []string{"amModeOrigin", "preventionError", "avDbVersion"} {
		if slices.Contains(unknown, "sensor."+name) {
			t.Errorf("raw-only field %s was counted as unknown", name)
		}
	}
	if !slices.Contains(unknown, "sensor.fwStatus") || protection.Firewall != schemas.FeatureUnknown {
		t.Errorf("unknown fwStatus gave %q and reports %v, want unknown and a report", protection.Firewall, unknown)
	}
}

// TestUnknownSensorValuesStayRaw runs a sensor with one unmapped value through the stage, for
// each mapped sensor field: the normalized field becomes unknown, the vendor text stays
// in the record, and the value is counted.
func TestUnknownSensorValuesStayRaw(t *testing.T) {
	type check func(t *testing.T, asset schemas.Asset)
	protectionIs := func(name string, got func(schemas.Protection) string, want string) check {
		return func(t *testing.T, asset schemas.Asset) {
			t.Helper()
			if value := got(asset.Protection); value != want {
				t.Errorf("protection.%s = %q, want %q", name, value, want)
			}
		}
	}
	tests := []struct {
		field, value string
		normalized   check
		rawIn        func(schemas.Asset) string // where the vendor text is kept
	}{
		{"status", "Suspended",
			protectionIs("lifecycle_state", func(p schemas.Protection) string { return string(p.LifecycleState) }, "unknown"),
			func(a schemas.Asset) string { return a.Protection.Raw["status"] }},
		{"serviceStatus", "Restarting",
			protectionIs("service_status", func(p schemas.Protection) string { return string(p.ServiceStatus) }, "unknown"),
			func(a schemas.Asset) string { return a.Protection.Raw["serviceStatus"] }},
		{"documentProtectionMode", "DM_EXTREME",
			protectionIs("document_protection_mode", func(p schemas.Protection) string { return string(p.DocumentProtectionMode) }, "unknown"),
			func(a schemas.Asset) string { return a.Protection.Raw["documentProtectionMode"] }},
		{"osType", "CHROMEOS",
			func(t *testing.T, a schemas.Asset) {
				t.Helper()
				if a.Device.OS == nil || a.Device.OS.TypeID != 0 || a.Device.OS.Type != "Unknown" {
					t.Errorf("device.os = %+v, want type 0 Unknown", a.Device.OS)
				}
			},
			func(a schemas.Asset) string {
				value, _ := a.Unmapped["cybereason"].(map[string]any)["osType"].(string)
				return value
			}},
	}
	for _, field := range featureFields() {
		tests = append(tests, struct {
			field, value string
			normalized   check
			rawIn        func(schemas.Asset) string
		}{
			field.vendor, "NEVER_SEEN_VALUE",
			func(t *testing.T, a schemas.Asset) {
				t.Helper()
				if got := featureValue(t, a.Protection, field.vendor); got != schemas.FeatureUnknown {
					t.Errorf("%s maps to %q, want unknown", field.vendor, got)
				}
			},
			func(a schemas.Asset) string { return a.Protection.Raw[field.vendor] },
		})
	}

	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			stage := newTestStage(t)
			sensor := readTestdata(t, "sensor-full.json")
			sensor[tt.field] = tt.value

			asset := decodeAsset(t, processOne(t, stage, sensorMessage(t, sensor)))
			tt.normalized(t, asset)
			if got := tt.rawIn(asset); got != tt.value {
				t.Errorf("vendor text kept as %q, want %q", got, tt.value)
			}
			if got := stage.Stats().UnknownValues["sensor."+tt.field]; got != 1 {
				t.Errorf("UnknownValues[sensor.%s] = %d, want 1", tt.field, got)
			}
		})
	}
}

// featureValue returns the normalized protection field that a vendor feature field maps to.
func featureValue(t *testing.T, p schemas.Protection, vendor string) schemas.FeatureState {
	t.Helper()
	byVendor := map[string]schemas.FeatureState{
		"preventionStatus":          p.Prevention,
		"antiMalwareStatus":         p.AntiMalware,
		"amStatus":                  p.AntiMalwareMode,
		"staticAnalysisDetectMode":  p.StaticAnalysisDetect,
		"staticAnalysisPreventMode": p.StaticAnalysisPrevent,
		"ransomwareStatus":          p.RansomwareProtection,
		"antiExploitStatus":         p.AntiExploit,
		"powerShellStatus":          p.PowerShellProtection,
		"documentProtectionStatus":  p.DocumentProtection,
		"fwStatus":                  p.Firewall,
		"usbStatus":                 p.DeviceControl,
		"remoteShellStatus":         p.RemoteShell,
		"bepMode":                   p.BehavioralExecutionPrevention,
		"vppMode":                   p.VariantPayloadPrevention,
		"variantFilePreventionMode": p.VariantFilePrevention,
	}
	value, ok := byVendor[vendor]
	if !ok {
		t.Fatalf("no protection field for vendor field %s", vendor)
	}
	return value
}

// TestMalopStatusInBothGenerations runs MalOps of the MalOp management API v2 and of the detection
// inbox through the stage and checks the status, verdict and activity of the finding, and that the
// vendor text behind them stays in status_detail.
func TestMalopStatusInBothGenerations(t *testing.T) {
	tests := []struct {
		name       string
		v2         bool
		set        map[string]any
		status     int
		verdict    int
		activity   int
		detail     string
		unknownKey string // the counted unknown value, "" for none
	}{
		{"v2 pending", true, map[string]any{"investigationStatus": "Pending"}, statusNew, verdictUnknown, 1, "Pending", ""},
		{"v2 under investigation", true, map[string]any{"investigationStatus": "UnderInvestigation"}, statusInProgress, verdictUnknown, 1, "UnderInvestigation", ""},
		{"v2 on hold", true, map[string]any{"investigationStatus": "OnHold"}, statusInProgress, verdictUnknown, 1, "OnHold", ""},
		{"v2 reopened", true, map[string]any{"investigationStatus": "Reopened"}, statusNew, verdictUnknown, 1, "Reopened", ""},
		{"v2 closed", true, map[string]any{"investigationStatus": "Closed"}, statusResolved, verdictUnknown, 3, "Closed", ""},
		{"v2 remediated", true, map[string]any{"status": "Remediated", "investigationStatus": "Closed"}, statusResolved, verdictTruePositive, 3, "Remediated", ""},
		{"v2 not relevant", true, map[string]any{"status": "Not Relevant", "investigationStatus": "Closed"}, statusResolved, verdictFalsePositive, 3, "Not Relevant", ""},
		{"v2 excluded", true, map[string]any{"status": "Excluded", "investigationStatus": "Pending"}, statusSuppressed, verdictBenign, 1, "Excluded", ""},
		{"v2 unknown investigation", true, map[string]any{"investigationStatus": "Escalated"}, statusNew, verdictUnknown, 1, "Active", "malop.investigationStatus"},
		{"v2 unknown status", true, map[string]any{"status": "Quarantined", "investigationStatus": ""}, statusUnknown, verdictUnknown, 1, "Quarantined", "malop.status"},

		{"inbox active", false, map[string]any{}, statusNew, verdictUnknown, 1, "Active", ""},
		{"inbox active closed", false, map[string]any{"closed": true}, statusResolved, verdictUnknown, 3, "Active", ""},
		{"inbox unread", false, map[string]any{"status": "UNREAD", "malopStatus": "UNREAD"}, statusNew, verdictUnknown, 1, "UNREAD", ""},
		{"inbox open", false, map[string]any{"status": "OPEN", "malopStatus": "OPEN"}, statusInProgress, verdictUnknown, 1, "OPEN", ""},
		{"inbox remediated", false, map[string]any{"status": "Remediated", "malopStatus": "Remediated", "closed": true}, statusResolved, verdictTruePositive, 3, "Remediated", ""},
		{"inbox false positive", false, map[string]any{"status": "FP", "malopStatus": "FP"}, statusResolved, verdictFalsePositive, 3, "FP", ""},
		{"inbox excluded", false, map[string]any{"status": "Excluded", "malopStatus": "Excluded"}, statusSuppressed, verdictBenign, 1, "Excluded", ""},
		{"inbox deleted", false, map[string]any{"status": "Deleted", "malopStatus": "Deleted"}, statusDeleted, verdictUnknown, 3, "Deleted", ""},
		{"inbox malop status only", false, map[string]any{"status": nil, "malopStatus": "OPEN"}, statusInProgress, verdictUnknown, 1, "OPEN", ""},
		{"inbox unknown status", false, map[string]any{"status": "Escalated", "malopStatus": "Escalated"}, statusUnknown, verdictUnknown, 1, "Escalated", "malop.status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stage := newTestStage(t)
			file, eventType := "malop-edr.json", RawMalopType
			if tt.v2 {
				file, eventType = "malop-v2.json", RawMalopV2Type
			}
			malop := readTestdata(t, file)
			for name, value := range tt.set {
				if value == nil {
					delete(malop, name)
				} else {
					malop[name] = value
				}
			}

			finding := decodeFinding(t, processOne(t, stage, typedMalopMessage(t, eventType, "AAAAbWFsb3AwMDAx", malop)))
			if finding.StatusID != tt.status || finding.VerdictID != tt.verdict || finding.ActivityID != tt.activity {
				t.Errorf("status %d, verdict %d, activity %d; want %d, %d, %d",
					finding.StatusID, finding.VerdictID, finding.ActivityID, tt.status, tt.verdict, tt.activity)
			}
			if finding.StatusDetail != tt.detail {
				t.Errorf("status_detail = %q, want %q", finding.StatusDetail, tt.detail)
			}
			unknown := stage.Stats().UnknownValues
			if tt.unknownKey == "" && len(unknown) != 0 {
				t.Errorf("unknown values %v, want none", unknown)
			}
			if tt.unknownKey != "" && unknown[tt.unknownKey] != 1 {
				t.Errorf("unknown values %v, want %s counted once", unknown, tt.unknownKey)
			}
		})
	}
}

// TestUnknownSeverityAndPriorityStayRaw checks that an unmapped MalOp severity or priority
// becomes 0 Unknown, keeps its text under unmapped.cybereason and is counted.
func TestUnknownSeverityAndPriorityStayRaw(t *testing.T) {
	tests := []struct {
		field, value string
		id           func(schemas.Finding) int
	}{
		{"severity", "Severe", func(f schemas.Finding) int { return f.SeverityID }},
		{"priority", "URGENT", func(f schemas.Finding) int { return f.PriorityID }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			stage := newTestStage(t)
			malop := readTestdata(t, "malop-v2.json")
			malop[tt.field] = tt.value

			finding := decodeFinding(t, processOne(t, stage, typedMalopMessage(t, RawMalopV2Type, "AAAAbWFsb3AwMDAx", malop)))
			if got := tt.id(finding); got != 0 {
				t.Errorf("%s id = %d, want 0 Unknown", tt.field, got)
			}
			kept, _ := finding.Unmapped["cybereason"].(map[string]any)[tt.field].(string)
			if kept != tt.value {
				t.Errorf("unmapped.cybereason.%s = %q, want %q", tt.field, kept, tt.value)
			}
			if got := stage.Stats().UnknownValues["malop."+tt.field]; got != 1 {
				t.Errorf("UnknownValues[malop.%s] = %d, want 1", tt.field, got)
			}
		})
	}
}
