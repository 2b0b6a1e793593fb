package enrich

import (
	"strings"

	"github.com/oversoc/cybereason-connector/schemas"
)

// Cybereason does not publish the value sets of its protection fields. The mapping below covers the
// values that public integrations and captured responses show, and treats anything else as unknown:
// the record gets "unknown", protection.raw keeps the vendor text, and the Stage counts the value.
//
// Normalization rule for a feature field:
//  1. Trim the value, upper-case it and strip the field's own prefix (AM_, AE_, PS_, DS_, AC_,
//     BEP_, VPP_, VFP_M_) when present. "" and null mean the sensor did not report the feature,
//     and the normalized field is left out.
//  2. Map what remains with featureState: a value that makes the sensor block, quarantine,
//     suspend or disinfect is enabled; DETECT or DETECT_ONLY is detect_only; DISABLED, NOT_INSTALLED
//     and UNINSTALLED are disabled; UNKNOWN, DEFAULT and error states are unknown.
//  3. ENABLED and the sensitivity levels CAUTIOUS, MODERATE and AGGRESSIVE mean enabled, except on
//     a detection-mode field (staticAnalysisDetectMode), where they mean detect_only.

// featureMode is the meaning of "on" for a feature field.
type featureMode int

const (
	modePrevent featureMode = iota // "on" blocks or remediates: enabled
	modeDetect                     // the field only configures detection: detect_only
)

// featureField is one Cybereason protection field and the normalized field it fills.
type featureField struct {
	vendor string // Cybereason field name, also the key in protection.raw
	prefix string // prefix that Cybereason puts on the field's values
	mode   featureMode
	set    func(p *schemas.Protection, state schemas.FeatureState)
}

// featureFields lists every protection feature field that maps to a schemas.FeatureState.
func featureFields() []featureField {
	return []featureField{
		{"preventionStatus", "", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.Prevention = s }},
		{"antiMalwareStatus", "AM_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.AntiMalware = s }},
		{"amStatus", "AM_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.AntiMalwareMode = s }},
		{"staticAnalysisDetectMode", "", modeDetect, func(p *schemas.Protection, s schemas.FeatureState) { p.StaticAnalysisDetect = s }},
		{"staticAnalysisPreventMode", "", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.StaticAnalysisPrevent = s }},
		{"ransomwareStatus", "", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.RansomwareProtection = s }},
		{"antiExploitStatus", "AE_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.AntiExploit = s }},
		{"powerShellStatus", "PS_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.PowerShellProtection = s }},
		{"documentProtectionStatus", "DS_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.DocumentProtection = s }},
		{"fwStatus", "", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.Firewall = s }},
		{"usbStatus", "", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.DeviceControl = s }},
		{"remoteShellStatus", "AC_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.RemoteShell = s }},
		{"bepMode", "BEP_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.BehavioralExecutionPrevention = s }},
		{"vppMode", "VPP_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.VariantPayloadPrevention = s }},
		{"variantFilePreventionMode", "VFP_M_", modePrevent, func(p *schemas.Protection, s schemas.FeatureState) { p.VariantFilePrevention = s }},
	}
}

// normalizeVendorValue trims and upper-cases a vendor value and strips the field's prefix.
func normalizeVendorValue(raw, prefix string) string {
	value := strings.ToUpper(strings.TrimSpace(raw))
	if prefix != "" {
		value = strings.TrimPrefix(value, prefix)
	}
	return value
}

// featureState maps a normalized vendor value (see normalizeVendorValue) to a feature state. known
// is false for a value outside the mapping, which then maps to unknown.
func featureState(value string, mode featureMode) (state schemas.FeatureState, known bool) {
	on := schemas.FeatureEnabled
	if mode == modeDetect {
		on = schemas.FeatureDetectOnly
	}
	switch value {
	case "ENABLED", "ENABLE", "CAUTIOUS", "MODERATE", "AGGRESSIVE":
		return on, true
	case "PREVENT", "QUARANTINE", "BLOCK", "DETECT_DISINFECT", "DETECT_AND_SUSPEND", "DETECT_SUSPEND_PREVENT":
		return schemas.FeatureEnabled, true
	case "DETECT", "DETECT_ONLY":
		return schemas.FeatureDetectOnly, true
	case "DISABLED", "DISABLE", "NOT_INSTALLED", "UNINSTALLED", "UNINSTALL":
		return schemas.FeatureDisabled, true
	case "UNKNOWN", "DEFAULT", "SET_BY_POLICY", "INSTALLED", "FIRST_TIME_INITIALIZATION", "PRIOR_AV_ERROR", "UNKNOWN_ERROR":
		// INSTALLED reports that the engine is present, not its mode. The others are not states.
		return schemas.FeatureUnknown, true
	}
	return schemas.FeatureUnknown, false
}

// documentProtectionMode maps documentProtectionMode (DM_CAUTIOUS ...) to a sensitivity.
func documentProtectionMode(raw string) (schemas.Sensitivity, bool) {
	switch normalizeVendorValue(raw, "DM_") {
	case "CAUTIOUS":
		return schemas.SensitivityCautious, true
	case "MODERATE":
		return schemas.SensitivityModerate, true
	case "AGGRESSIVE":
		return schemas.SensitivityAggressive, true
	case "UNKNOWN":
		return schemas.SensitivityUnknown, true
	}
	return schemas.SensitivityUnknown, false
}

// sensorStatus maps the sensor status (Online, Offline, Stale, Archived) to the connection status
// and its stable part, the lifecycle state.
func sensorStatus(raw string) (schemas.SensorStatus, schemas.LifecycleState, bool) {
	switch strings.ToLower(raw) {
	case "online":
		return schemas.SensorOnline, schemas.LifecycleActive, true
	case "offline":
		return schemas.SensorOffline, schemas.LifecycleActive, true
	case "stale":
		return schemas.SensorStale, schemas.LifecycleStale, true
	case "archived":
		return schemas.SensorArchived, schemas.LifecycleArchived, true
	}
	return schemas.SensorUnknown, schemas.LifecycleUnknown, raw == ""
}

// serviceStatus maps serviceStatus (Up, Down).
func serviceStatus(raw string) (schemas.ServiceStatus, bool) {
	switch strings.ToLower(raw) {
	case "up":
		return schemas.ServiceUp, true
	case "down":
		return schemas.ServiceDown, true
	}
	return schemas.ServiceUnknown, false
}

// unknownReporter records a vendor value that a mapping does not recognize, under the vendor field
// name qualified by the object kind, e.g. "sensor.preventionStatus".
type unknownReporter func(field, value string)

// mapProtection builds the protection object of a sensor.
func mapProtection(sensor vendorObject, report unknownReporter) schemas.Protection {
	var p schemas.Protection
	raw := make(map[string]string)
	keepRaw := func(name string) string {
		value := sensor.text(name)
		if value != "" {
			raw[name] = value
		}
		return value
	}

	status := keepRaw("status")
	var known bool
	p.SensorStatus, p.LifecycleState, known = sensorStatus(status)
	if !known {
		report("sensor.status", status)
	}

	if service := keepRaw("serviceStatus"); service != "" {
		if p.ServiceStatus, known = serviceStatus(service); !known {
			report("sensor.serviceStatus", service)
		}
	}

	for _, field := range featureFields() {
		value := keepRaw(field.vendor)
		if value == "" {
			continue
		}
		state, known := featureState(normalizeVendorValue(value, field.prefix), field.mode)
		if !known {
			report("sensor."+field.vendor, value)
		}
		field.set(&p, state)
	}

	if mode := keepRaw("documentProtectionMode"); mode != "" {
		if p.DocumentProtectionMode, known = documentProtectionMode(mode); !known {
			report("sensor.documentProtectionMode", mode)
		}
	}

	keepRaw("isolated")
	keepRaw("outdated")
	for _, name := range protectionRawOnlyFields() {
		keepRaw(name)
	}
	p.IsIsolated = optionalBool(sensor, "isolated", "sensor", report)
	p.IsOutdated = optionalBool(sensor, "outdated", "sensor", report)

	if len(raw) > 0 {
		p.Raw = raw
	}
	assess(&p)
	return p
}

// protectionRawOnlyFields lists the protection fields of a sensor that have no normalized field
// and are kept only in protection.raw: where a mode was set, the last prevention error and the
// signature database version. avDbVersion changes with every signature update and is volatile.
func protectionRawOnlyFields() []string {
	return []string{
		"amModeOrigin", "antiMalwareModeOrigin", "staticAnalysisDetectModeOrigin", "staticAnalysisPreventModeOrigin",
		"preventionError", "avDbVersion",
	}
}

// optionalBool reads a boolean field; nil when it is absent or not a boolean, which is reported.
func optionalBool(object vendorObject, name, objectKind string, report unknownReporter) *bool {
	value, state := object.boolean(name)
	switch state {
	case fieldValid:
		return &value
	case fieldInvalid:
		report(objectKind+"."+name, object.text(name))
	}
	return nil
}

// OCSF security_state ids and security_level ids used by assess.
const (
	stateOutdatedContent   = 1
	stateNetworkQuarantine = 3
	stateProtectionOff     = 4
	stateProtectionFailure = 5
	stateOther             = 99

	securityLevelUnknown = 0
	securityLevelSecure  = 1
	securityLevelAtRisk  = 2
)

// assess derives is_effective, security_states and security_level_id from the normalized fields.
// None of them changes when a sensor goes offline, so that flapping does not change the record's
// fingerprint. The console reports serviceStatus Down for every sensor that is not online, so a
// down service counts only while the sensor is online.
//
//   - is_effective: the sensor is active, its service is not down while online, and prevention or
//     anti-malware is enabled.
//   - 1 Missing or outdated content: the sensor version is outdated.
//   - 3 In network quarantine: the machine is isolated.
//   - 4 Protection off: neither prevention nor anti-malware is enabled, and one of them is disabled.
//   - 5 Protection malfunction: the sensor is online but its service is down.
//   - 99 Sensor stale / Sensor archived / Sensor removed: the lifecycle state.
//   - security_level_id: 0 Unknown when the lifecycle is unknown, else 1 Secure without states and
//     2 At Risk with any. 3 Compromised would need a join with open findings, which enrich lacks.
func assess(p *schemas.Protection) {
	active := p.LifecycleState == schemas.LifecycleActive
	protecting := p.Prevention == schemas.FeatureEnabled || p.AntiMalware == schemas.FeatureEnabled
	serviceDown := p.SensorStatus == schemas.SensorOnline && p.ServiceStatus == schemas.ServiceDown
	p.IsEffective = active && !serviceDown && protecting

	states := []schemas.SecurityState{}
	if p.IsOutdated != nil && *p.IsOutdated {
		states = append(states, schemas.SecurityState{StateID: stateOutdatedContent, State: "Missing or outdated content"})
	}
	if p.IsIsolated != nil && *p.IsIsolated {
		states = append(states, schemas.SecurityState{StateID: stateNetworkQuarantine, State: "In network quarantine"})
	}
	if !protecting && (p.Prevention == schemas.FeatureDisabled || p.AntiMalware == schemas.FeatureDisabled) {
		states = append(states, schemas.SecurityState{StateID: stateProtectionOff, State: "Protection off"})
	}
	if active && serviceDown {
		states = append(states, schemas.SecurityState{StateID: stateProtectionFailure, State: "Protection malfunction"})
	}
	switch p.LifecycleState {
	case schemas.LifecycleStale:
		states = append(states, schemas.SecurityState{StateID: stateOther, State: "Sensor stale"})
	case schemas.LifecycleArchived:
		states = append(states, schemas.SecurityState{StateID: stateOther, State: "Sensor archived"})
	case schemas.LifecycleRemoved:
		states = append(states, schemas.SecurityState{StateID: stateOther, State: "Sensor removed"})
	}
	p.SecurityStates = states

	switch {
	case p.LifecycleState == schemas.LifecycleUnknown:
		p.SecurityLevelID, p.SecurityLevel = securityLevelUnknown, "Unknown"
	case len(states) == 0:
		p.SecurityLevelID, p.SecurityLevel = securityLevelSecure, "Secure"
	default:
		p.SecurityLevelID, p.SecurityLevel = securityLevelAtRisk, "At Risk"
	}
}
