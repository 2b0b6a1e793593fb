package schemas

import (
	"maps"
	"slices"
	"strconv"

	"github.com/oversoc/cybereason-connector/internal/jsonvalue"
)

// AppendJSON appends the record's JSON to dst, byte for byte as an encoding/json Encoder with
// SetEscapeHTML(false) writes it, without the trailing newline. It writes the fields without
// reflection, in about half the time (BenchmarkEncodeAsset). TestAppendJSONMatchesEncodingJSON
// checks that both agree.
func (a *Asset) AppendJSON(dst []byte) ([]byte, error) {
	o := openObject(dst)
	o.int("activity_id", int64(a.ActivityID))
	o.string("asset_uid", a.AssetUID)
	o.int("category_uid", int64(a.CategoryUID))
	o.int("class_uid", int64(a.ClassUID))
	o.key("device")
	o.buf = a.Device.appendJSON(o.buf)
	o.key("metadata")
	o.buf = a.Metadata.appendJSON(o.buf)
	o.key("protection")
	o.buf = a.Protection.appendJSON(o.buf)
	o.string("schema_version", a.SchemaVersion)
	o.int("severity_id", int64(a.SeverityID))
	o.int("time", a.Time)
	o.int("type_uid", int64(a.TypeUID))
	if err := o.unmapped(a.Unmapped); err != nil {
		return nil, err
	}
	return o.close(), nil
}

// AppendJSON appends the record's JSON to dst, byte for byte as an encoding/json Encoder with
// SetEscapeHTML(false) writes it, without the trailing newline.
func (f *Finding) AppendJSON(dst []byte) ([]byte, error) {
	o := openObject(dst)
	o.int("activity_id", int64(f.ActivityID))
	o.int("category_uid", int64(f.CategoryUID))
	o.int("class_uid", int64(f.ClassUID))
	if len(f.Devices) > 0 {
		o.key("devices")
		o.buf = appendArray(o.buf, f.Devices, DeviceRef.appendJSON)
	}
	o.omitZeroInt("end_time", f.EndTime)
	o.key("finding_info")
	o.buf = f.FindingInfo.appendJSON(o.buf)
	o.string("finding_uid", f.FindingUID)
	o.optionalBool("is_alert", f.IsAlert)
	o.key("metadata")
	o.buf = f.Metadata.appendJSON(o.buf)
	if len(f.Observables) > 0 {
		o.key("observables")
		o.buf = appendArray(o.buf, f.Observables, Observable.appendJSON)
	}
	o.omitEmptyString("priority", f.Priority)
	o.int("priority_id", int64(f.PriorityID))
	o.string("schema_version", f.SchemaVersion)
	o.string("severity", f.Severity)
	o.int("severity_id", int64(f.SeverityID))
	o.string("status", f.Status)
	o.omitEmptyString("status_detail", f.StatusDetail)
	o.int("status_id", int64(f.StatusID))
	o.int("time", f.Time)
	o.int("type_uid", int64(f.TypeUID))
	if err := o.unmapped(f.Unmapped); err != nil {
		return nil, err
	}
	if len(f.Users) > 0 {
		o.key("users")
		o.buf = appendArray(o.buf, f.Users, User.appendJSON)
	}
	o.omitEmptyString("verdict", f.Verdict)
	o.int("verdict_id", int64(f.VerdictID))
	return o.close(), nil
}

func (m Metadata) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("log_provider", m.LogProvider)
	o.int("processed_time", m.ProcessedTime)
	o.key("product")
	o.buf = m.Product.appendJSON(o.buf)
	if len(m.Profiles) > 0 {
		o.key("profiles")
		o.buf = appendStrings(o.buf, m.Profiles)
	}
	o.string("tenant_uid", m.TenantUID)
	o.string("uid", m.UID)
	o.string("version", m.Version)
	return o.close()
}

func (p Product) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.string("name", p.Name)
	o.string("vendor_name", p.VendorName)
	o.omitEmptyString("version", p.Version)
	return o.close()
}

func (d Device) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.key("agent_list")
	o.buf = appendNullableArray(o.buf, d.AgentList, Agent.appendJSON)
	o.omitEmptyString("domain", d.Domain)
	o.omitZeroInt("first_seen_time", d.FirstSeenTime)
	if len(d.Groups) > 0 {
		o.key("groups")
		o.buf = appendArray(o.buf, d.Groups, Group.appendJSON)
	}
	o.omitEmptyString("hostname", d.Hostname)
	if d.HWInfo != nil {
		o.key("hw_info")
		o.buf = d.HWInfo.appendJSON(o.buf)
	}
	o.omitEmptyString("ip", d.IP)
	o.optionalBool("is_compliant", d.IsCompliant)
	o.optionalBool("is_managed", d.IsManaged)
	o.omitZeroInt("last_seen_time", d.LastSeenTime)
	o.omitEmptyString("mac", d.MAC)
	o.omitEmptyString("model", d.Model)
	o.omitEmptyString("name", d.Name)
	if len(d.NetworkInterfaces) > 0 {
		o.key("network_interfaces")
		o.buf = appendArray(o.buf, d.NetworkInterfaces, NetworkInterface.appendJSON)
	}
	if d.Org != nil {
		o.key("org")
		o.buf = d.Org.appendJSON(o.buf)
	}
	if d.OS != nil {
		o.key("os")
		o.buf = d.OS.appendJSON(o.buf)
	}
	o.omitEmptyString("type", d.Type)
	o.int("type_id", int64(d.TypeID))
	o.string("uid", d.UID)
	o.omitEmptyString("uid_alt", d.UIDAlt)
	return o.close()
}

func (n NetworkInterface) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("ip", n.IP)
	o.omitEmptyString("mac", n.MAC)
	o.int("type_id", int64(n.TypeID))
	return o.close()
}

func (s OS) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.string("name", s.Name)
	o.omitEmptyString("type", s.Type)
	o.int("type_id", int64(s.TypeID))
	o.omitEmptyString("version", s.Version)
	return o.close()
}

func (h HWInfo) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("serial_number", h.SerialNumber)
	return o.close()
}

func (g Group) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("name", g.Name)
	o.omitEmptyString("uid", g.UID)
	return o.close()
}

func (org Organization) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("name", org.Name)
	o.omitEmptyString("ou_name", org.OUName)
	return o.close()
}

func (a Agent) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.string("name", a.Name)
	if len(a.Policies) > 0 {
		o.key("policies")
		o.buf = appendArray(o.buf, a.Policies, Policy.appendJSON)
	}
	o.omitEmptyString("type", a.Type)
	o.int("type_id", int64(a.TypeID))
	o.string("uid", a.UID)
	o.string("vendor_name", a.VendorName)
	o.omitEmptyString("version", a.Version)
	return o.close()
}

func (p Policy) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.optionalBool("is_applied", p.IsApplied)
	o.omitEmptyString("name", p.Name)
	o.omitEmptyString("uid", p.UID)
	return o.close()
}

func (p *Protection) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("anti_exploit", string(p.AntiExploit))
	o.omitEmptyString("anti_malware", string(p.AntiMalware))
	o.omitEmptyString("anti_malware_mode", string(p.AntiMalwareMode))
	o.omitEmptyString("behavioral_execution_prevention", string(p.BehavioralExecutionPrevention))
	o.omitEmptyString("device_control", string(p.DeviceControl))
	o.omitEmptyString("document_protection", string(p.DocumentProtection))
	o.omitEmptyString("document_protection_mode", string(p.DocumentProtectionMode))
	o.omitEmptyString("firewall", string(p.Firewall))
	o.bool("is_effective", p.IsEffective)
	o.optionalBool("is_isolated", p.IsIsolated)
	o.optionalBool("is_outdated", p.IsOutdated)
	o.string("lifecycle_state", string(p.LifecycleState))
	o.omitEmptyString("powershell_protection", string(p.PowerShellProtection))
	o.omitEmptyString("prevention", string(p.Prevention))
	o.omitEmptyString("ransomware_protection", string(p.RansomwareProtection))
	if len(p.Raw) > 0 {
		o.key("raw")
		o.buf = appendStringMap(o.buf, p.Raw)
	}
	o.omitEmptyString("remote_shell", string(p.RemoteShell))
	o.omitEmptyString("security_level", p.SecurityLevel)
	o.int("security_level_id", int64(p.SecurityLevelID))
	o.key("security_states")
	o.buf = appendNullableArray(o.buf, p.SecurityStates, SecurityState.appendJSON)
	o.string("sensor_status", string(p.SensorStatus))
	o.omitEmptyString("service_status", string(p.ServiceStatus))
	o.omitEmptyString("static_analysis_detect", string(p.StaticAnalysisDetect))
	o.omitEmptyString("static_analysis_prevent", string(p.StaticAnalysisPrevent))
	o.omitEmptyString("variant_file_prevention", string(p.VariantFilePrevention))
	o.omitEmptyString("variant_payload_prevention", string(p.VariantPayloadPrevention))
	return o.close()
}

func (s SecurityState) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.string("state", s.State)
	o.int("state_id", int64(s.StateID))
	return o.close()
}

func (f *FindingInfo) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	if f.Analytic != nil {
		o.key("analytic")
		o.buf = f.Analytic.appendJSON(o.buf)
	}
	if len(f.Attacks) > 0 {
		o.key("attacks")
		o.buf = appendArray(o.buf, f.Attacks, Attack.appendJSON)
	}
	o.omitZeroInt("created_time", f.CreatedTime)
	if len(f.DataSources) > 0 {
		o.key("data_sources")
		o.buf = appendStrings(o.buf, f.DataSources)
	}
	o.omitZeroInt("modified_time", f.ModifiedTime)
	o.omitEmptyString("src_url", f.SrcURL)
	if len(f.Tags) > 0 {
		o.key("tags")
		o.buf = appendArray(o.buf, f.Tags, Tag.appendJSON)
	}
	o.string("title", f.Title)
	if len(f.Types) > 0 {
		o.key("types")
		o.buf = appendStrings(o.buf, f.Types)
	}
	o.string("uid", f.UID)
	return o.close()
}

func (a Attack) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.attackElement("sub_technique", a.SubTechnique)
	o.attackElement("tactic", a.Tactic)
	o.attackElement("technique", a.Technique)
	return o.close()
}

func (o *object) attackElement(name string, element *AttackElement) {
	if element != nil {
		o.key(name)
		o.buf = element.appendJSON(o.buf)
	}
}

func (e AttackElement) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("name", e.Name)
	o.omitEmptyString("uid", e.UID)
	return o.close()
}

func (a Analytic) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("category", a.Category)
	o.omitEmptyString("name", a.Name)
	o.omitEmptyString("type", a.Type)
	o.int("type_id", int64(a.TypeID))
	return o.close()
}

func (t Tag) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.string("name", t.Name)
	o.string("value", t.Value)
	return o.close()
}

func (d DeviceRef) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	if len(d.AgentList) > 0 {
		o.key("agent_list")
		o.buf = appendArray(o.buf, d.AgentList, Agent.appendJSON)
	}
	o.omitEmptyString("asset_uid", d.AssetUID)
	o.omitEmptyString("hostname", d.Hostname)
	o.omitEmptyString("ip", d.IP)
	o.optionalBool("is_isolated", d.IsIsolated)
	o.omitEmptyString("name", d.Name)
	if d.OS != nil {
		o.key("os")
		o.buf = d.OS.appendJSON(o.buf)
	}
	o.omitEmptyString("uid", d.UID)
	o.omitEmptyString("uid_alt", d.UIDAlt)
	return o.close()
}

func (u User) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.omitEmptyString("name", u.Name)
	o.omitEmptyString("type", u.Type)
	o.int("type_id", int64(u.TypeID))
	o.omitEmptyString("uid", u.UID)
	return o.close()
}

func (v Observable) appendJSON(dst []byte) []byte {
	o := openObject(dst)
	o.string("name", v.Name)
	o.omitEmptyString("type", v.Type)
	o.int("type_id", int64(v.TypeID))
	o.string("value", v.Value)
	return o.close()
}

// object is a JSON object being written to buf. Keys are plain ASCII names, written as they are.
type object struct {
	buf   []byte
	empty bool
}

func openObject(dst []byte) object {
	return object{buf: append(dst, '{'), empty: true}
}

func (o *object) close() []byte {
	return append(o.buf, '}')
}

// key writes the separator and the key of the next member.
func (o *object) key(name string) {
	if !o.empty {
		o.buf = append(o.buf, ',')
	}
	o.empty = false
	o.buf = append(o.buf, '"')
	o.buf = append(o.buf, name...)
	o.buf = append(o.buf, '"', ':')
}

func (o *object) string(name, value string) {
	o.key(name)
	o.buf = jsonvalue.AppendString(o.buf, value)
}

func (o *object) omitEmptyString(name, value string) {
	if value != "" {
		o.string(name, value)
	}
}

func (o *object) int(name string, value int64) {
	o.key(name)
	o.buf = strconv.AppendInt(o.buf, value, 10)
}

func (o *object) omitZeroInt(name string, value int64) {
	if value != 0 {
		o.int(name, value)
	}
}

func (o *object) bool(name string, value bool) {
	o.key(name)
	o.buf = strconv.AppendBool(o.buf, value)
}

func (o *object) optionalBool(name string, value *bool) {
	if value != nil {
		o.bool(name, *value)
	}
}

// unmapped writes the unmapped member unless it is empty, as omitempty does.
func (o *object) unmapped(value Unmapped) error {
	if len(value) == 0 {
		return nil
	}
	o.key("unmapped")
	mark := len(o.buf)
	encoded, err := jsonvalue.AppendCanonical(o.buf, map[string]any(value))
	if err == nil {
		o.buf = encoded
		return nil
	}
	// A value of a type that decoding JSON does not make: let encoding/json write it.
	fallback, err := value.MarshalJSON()
	if err != nil {
		return err
	}
	o.buf = append(o.buf[:mark], fallback...)
	return nil
}

func appendArray[T any](dst []byte, items []T, appendItem func(T, []byte) []byte) []byte {
	dst = append(dst, '[')
	for i, item := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendItem(item, dst)
	}
	return append(dst, ']')
}

// appendNullableArray writes a nil slice as null, as encoding/json does for a field without
// omitempty.
func appendNullableArray[T any](dst []byte, items []T, appendItem func(T, []byte) []byte) []byte {
	if items == nil {
		return append(dst, "null"...)
	}
	return appendArray(dst, items, appendItem)
}

func appendStrings(dst []byte, items []string) []byte {
	return appendArray(dst, items, func(s string, dst []byte) []byte { return jsonvalue.AppendString(dst, s) })
}

// appendStringMap writes a map with its keys sorted, as encoding/json does.
func appendStringMap(dst []byte, m map[string]string) []byte {
	dst = append(dst, '{')
	for i, key := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonvalue.AppendString(dst, key)
		dst = append(dst, ':')
		dst = jsonvalue.AppendString(dst, m[key])
	}
	return append(dst, '}')
}
