package schemas

import (
	"reflect"
	"slices"
	"strings"
)

// OCSF class constants of the asset security-state record (Device Config State Change, activity 2
// Collect).
const (
	SecurityStateClassUID    = 5019
	SecurityStateCategoryUID = 5
	SecurityStateActivityID  = 2
	SecurityStateTypeUID     = SecurityStateClassUID*100 + SecurityStateActivityID
)

// AssetSecurityState is a change of the protection posture of one asset: the value of the
// asset-security-state.schema.json record, added in contract version 1.1.0.
type AssetSecurityState struct {
	ActivityID          int             `json:"activity_id"`
	AssetUID            string          `json:"asset_uid"`
	CategoryUID         int             `json:"category_uid"`
	ChangedFields       []string        `json:"changed_fields"` // JSON names of the Posture fields that differ, sorted
	ClassUID            int             `json:"class_uid"`
	Device              DeviceRef       `json:"device"`
	Metadata            Metadata        `json:"metadata"`
	PrevProtection      Posture         `json:"prev_protection"`
	PrevSecurityLevel   string          `json:"prev_security_level,omitempty"`
	PrevSecurityLevelID int             `json:"prev_security_level_id"`
	PrevSecurityStates  []SecurityState `json:"prev_security_states"` // empty, not nil, when secure
	Protection          Posture         `json:"protection"`
	SchemaVersion       string          `json:"schema_version"`
	SecurityLevel       string          `json:"security_level,omitempty"`
	SecurityLevelID     int             `json:"security_level_id"`
	SecurityStates      []SecurityState `json:"security_states"` // empty, not nil, when secure
	Severity            string          `json:"severity,omitempty"`
	SeverityID          int             `json:"severity_id"`
	Time                int64           `json:"time"` // poll time of the asset record that showed the change, epoch ms
	TypeUID             int             `json:"type_uid"`
}

// Posture is the stable part of an asset's protection: what a security-state record reports a change
// of. It leaves out the connection status, which alternates between online and offline, and the
// service status, which follows it. A service down on an online sensor still shows as the security
// state 5 "Protection malfunction".
type Posture struct {
	AntiExploit                   FeatureState   `json:"anti_exploit,omitempty"`
	AntiMalware                   FeatureState   `json:"anti_malware,omitempty"`
	AntiMalwareMode               FeatureState   `json:"anti_malware_mode,omitempty"`
	BehavioralExecutionPrevention FeatureState   `json:"behavioral_execution_prevention,omitempty"`
	DeviceControl                 FeatureState   `json:"device_control,omitempty"`
	DocumentProtection            FeatureState   `json:"document_protection,omitempty"`
	Firewall                      FeatureState   `json:"firewall,omitempty"`
	IsEffective                   bool           `json:"is_effective"`
	IsIsolated                    *bool          `json:"is_isolated,omitempty"`
	IsOutdated                    *bool          `json:"is_outdated,omitempty"`
	LifecycleState                LifecycleState `json:"lifecycle_state"`
	PowerShellProtection          FeatureState   `json:"powershell_protection,omitempty"`
	Prevention                    FeatureState   `json:"prevention,omitempty"`
	RansomwareProtection          FeatureState   `json:"ransomware_protection,omitempty"`
	RemoteShell                   FeatureState   `json:"remote_shell,omitempty"`
	StaticAnalysisDetect          FeatureState   `json:"static_analysis_detect,omitempty"`
	StaticAnalysisPrevent         FeatureState   `json:"static_analysis_prevent,omitempty"`
	VariantFilePrevention         FeatureState   `json:"variant_file_prevention,omitempty"`
	VariantPayloadPrevention      FeatureState   `json:"variant_payload_prevention,omitempty"`
}

// Posture returns the stable part of p.
func (p Protection) Posture() Posture {
	return Posture{
		LifecycleState:                p.LifecycleState,
		Prevention:                    p.Prevention,
		AntiMalware:                   p.AntiMalware,
		AntiMalwareMode:               p.AntiMalwareMode,
		StaticAnalysisDetect:          p.StaticAnalysisDetect,
		StaticAnalysisPrevent:         p.StaticAnalysisPrevent,
		RansomwareProtection:          p.RansomwareProtection,
		AntiExploit:                   p.AntiExploit,
		PowerShellProtection:          p.PowerShellProtection,
		DocumentProtection:            p.DocumentProtection,
		Firewall:                      p.Firewall,
		DeviceControl:                 p.DeviceControl,
		RemoteShell:                   p.RemoteShell,
		BehavioralExecutionPrevention: p.BehavioralExecutionPrevention,
		VariantPayloadPrevention:      p.VariantPayloadPrevention,
		VariantFilePrevention:         p.VariantFilePrevention,
		IsIsolated:                    p.IsIsolated,
		IsOutdated:                    p.IsOutdated,
		IsEffective:                   p.IsEffective,
	}
}

// ChangedFields returns the JSON names of the fields whose values differ between p and other,
// sorted. A field set in one and left out of the other counts as changed.
func (p Posture) ChangedFields(other Posture) []string {
	a, b := reflect.ValueOf(p), reflect.ValueOf(other)
	var changed []string
	for i := range a.NumField() {
		if reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			continue
		}
		name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("json"), ",")
		changed = append(changed, name)
	}
	slices.Sort(changed)
	return changed
}

// SameSecurityStates reports whether two lists hold the same state ids, in any order.
func SameSecurityStates(a, b []SecurityState) bool {
	ids := func(states []SecurityState) []int {
		out := make([]int, len(states))
		for i, state := range states {
			out[i] = state.StateID
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(ids(a), ids(b))
}

// SecurityLevelName returns the OCSF caption of a security_level_id.
func SecurityLevelName(id int) string {
	switch id {
	case 1:
		return "Secure"
	case 2:
		return "At Risk"
	case 3:
		return "Compromised"
	case 99:
		return "Other"
	}
	return "Unknown"
}

// EventType returns the CloudEvents type (ce_type) of a record kind, such as com.oversoc.asset.v1.
// The suffix is the major version of the contract.
func EventType(kind Kind) string {
	return "com.oversoc." + string(kind) + ".v1"
}
