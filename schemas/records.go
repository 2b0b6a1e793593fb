package schemas

import (
	"bytes"
	"encoding/json"

	"github.com/oversoc/cybereason-connector/internal/jsonvalue"
)

// The fields of every record type in this package are declared in the order of their JSON names.
// encoding/json then writes a record in canonical form, object keys sorted, and Fingerprint needs
// no sorting. TestRecordFieldsInKeyOrder checks the order. A field out of order costs speed only.

// OCSF class constants of the asset record (Device Inventory Info, activity 2 Collect).
const (
	AssetClassUID    = 5001
	AssetCategoryUID = 5
	AssetActivityID  = 2
	AssetTypeUID     = AssetClassUID*100 + AssetActivityID
	AssetSeverityID  = 1 // Informational
)

// OCSF class constants of the finding record (Detection Finding).
const (
	FindingClassUID    = 2004
	FindingCategoryUID = 2
)

// Finding activity ids. The record's type_uid is FindingClassUID*100 + activity id.
const (
	FindingActivityCreate = 1
	FindingActivityUpdate = 2
	FindingActivityClose  = 3
)

// Asset is one machine of the EDR inventory with its protection status: the value of the
// asset.schema.json record.
type Asset struct {
	ActivityID    int        `json:"activity_id"`
	AssetUID      string     `json:"asset_uid"` // cybereason:<tenant>:<sensorId>
	CategoryUID   int        `json:"category_uid"`
	ClassUID      int        `json:"class_uid"`
	Device        Device     `json:"device"`
	Metadata      Metadata   `json:"metadata"`
	Protection    Protection `json:"protection"`
	SchemaVersion string     `json:"schema_version"`
	SeverityID    int        `json:"severity_id"`
	Time          int64      `json:"time"` // poll time, epoch ms
	TypeUID       int        `json:"type_uid"`
	Unmapped      Unmapped   `json:"unmapped,omitempty"`
}

// Metadata describes where a record comes from. UID equals the CloudEvents id of the message.
type Metadata struct {
	LogProvider   string   `json:"log_provider,omitempty"`
	ProcessedTime int64    `json:"processed_time"` // epoch ms
	Product       Product  `json:"product"`
	Profiles      []string `json:"profiles,omitempty"`
	TenantUID     string   `json:"tenant_uid"`
	UID           string   `json:"uid"`
	Version       string   `json:"version"` // OCSFVersion
}

// Product is the product that reported the data.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
	Version    string `json:"version,omitempty"`
}

// Unmapped contains vendor values without a normalized field, keyed by vendor ("cybereason") and then
// by the vendor's field name.
type Unmapped map[string]any

// MarshalJSON encodes u as encoding/json encodes a map[string]any, keys sorted, but without
// reflection for the values that decoding JSON makes (maps, slices, strings, json.Number, bool,
// nil). A value of another type is encoded by encoding/json.
func (u Unmapped) MarshalJSON() ([]byte, error) {
	if out, err := jsonvalue.AppendCanonical(nil, map[string]any(u)); err == nil {
		return out, nil
	}
	var buf bytes.Buffer
	encoder := json.NewEncoder(&buf)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(map[string]any(u)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Device is the machine of an asset record. UID is always set.
type Device struct {
	AgentList         []Agent            `json:"agent_list"`
	Domain            string             `json:"domain,omitempty"`
	FirstSeenTime     int64              `json:"first_seen_time,omitempty"` // epoch ms
	Groups            []Group            `json:"groups,omitempty"`
	Hostname          string             `json:"hostname,omitempty"`
	HWInfo            *HWInfo            `json:"hw_info,omitempty"`
	IP                string             `json:"ip,omitempty"`
	IsCompliant       *bool              `json:"is_compliant,omitempty"`
	IsManaged         *bool              `json:"is_managed,omitempty"`
	LastSeenTime      int64              `json:"last_seen_time,omitempty"` // epoch ms
	MAC               string             `json:"mac,omitempty"`
	Model             string             `json:"model,omitempty"`
	Name              string             `json:"name,omitempty"`
	NetworkInterfaces []NetworkInterface `json:"network_interfaces,omitempty"`
	Org               *Organization      `json:"org,omitempty"`
	OS                *OS                `json:"os,omitempty"`
	Type              string             `json:"type,omitempty"`
	TypeID            int                `json:"type_id"`
	UID               string             `json:"uid"`               // sensorId
	UIDAlt            string             `json:"uid_alt,omitempty"` // machine guid, as MalOps name it
}

// NetworkInterface is one interface of a device. IP or MAC is set.
type NetworkInterface struct {
	IP     string `json:"ip,omitempty"`
	MAC    string `json:"mac,omitempty"`
	TypeID int    `json:"type_id"`
}

// OS is an operating system. TypeID is an OCSF os type id (100 Windows, 200 Linux, 300 macOS).
type OS struct {
	Name    string `json:"name"`
	Type    string `json:"type,omitempty"`
	TypeID  int    `json:"type_id"`
	Version string `json:"version,omitempty"`
}

// HWInfo is hardware information of a device.
type HWInfo struct {
	SerialNumber string `json:"serial_number,omitempty"`
}

// Group is a group that a device belongs to.
type Group struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// Organization is the organization and organizational unit of a device.
type Organization struct {
	Name   string `json:"name,omitempty"`
	OUName string `json:"ou_name,omitempty"`
}

// Agent is the security software installed on a device (for Cybereason, the sensor).
type Agent struct {
	Name       string   `json:"name"`
	Policies   []Policy `json:"policies,omitempty"`
	Type       string   `json:"type,omitempty"`
	TypeID     int      `json:"type_id"`
	UID        string   `json:"uid"`
	VendorName string   `json:"vendor_name"`
	Version    string   `json:"version,omitempty"`
}

// Policy is a policy that an agent runs.
type Policy struct {
	IsApplied *bool  `json:"is_applied,omitempty"`
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid,omitempty"`
}

// SensorStatus is the connection status of a sensor.
type SensorStatus string

// Sensor statuses.
const (
	SensorOnline   SensorStatus = "online"
	SensorOffline  SensorStatus = "offline"
	SensorStale    SensorStatus = "stale"
	SensorArchived SensorStatus = "archived"
	SensorUnknown  SensorStatus = "unknown"
)

// LifecycleState is the stable part of a sensor status: online and offline are both active.
type LifecycleState string

// Lifecycle states. LifecycleRemoved is for a sensor that left the inventory.
const (
	LifecycleActive   LifecycleState = "active"
	LifecycleStale    LifecycleState = "stale"
	LifecycleArchived LifecycleState = "archived"
	LifecycleRemoved  LifecycleState = "removed"
	LifecycleUnknown  LifecycleState = "unknown"
)

// ServiceStatus is the state of the sensor's service on the machine.
type ServiceStatus string

// Service statuses.
const (
	ServiceUp      ServiceStatus = "up"
	ServiceDown    ServiceStatus = "down"
	ServiceUnknown ServiceStatus = "unknown"
)

// FeatureState is the normalized state of one protection feature.
type FeatureState string

// Feature states. FeatureEnabled means the feature blocks or remediates, and FeatureDetectOnly
// means it reports without acting.
const (
	FeatureEnabled    FeatureState = "enabled"
	FeatureDetectOnly FeatureState = "detect_only"
	FeatureDisabled   FeatureState = "disabled"
	FeatureUnknown    FeatureState = "unknown"
)

// Sensitivity is the aggressiveness setting of a protection feature.
type Sensitivity string

// Sensitivities.
const (
	SensitivityCautious   Sensitivity = "cautious"
	SensitivityModerate   Sensitivity = "moderate"
	SensitivityAggressive Sensitivity = "aggressive"
	SensitivityUnknown    Sensitivity = "unknown"
)

// Protection is the protection status of the sensor on a device. Feature fields are empty when the
// sensor did not report the feature, and Raw keeps the vendor values behind them.
type Protection struct {
	AntiExploit                   FeatureState      `json:"anti_exploit,omitempty"`
	AntiMalware                   FeatureState      `json:"anti_malware,omitempty"`
	AntiMalwareMode               FeatureState      `json:"anti_malware_mode,omitempty"`
	BehavioralExecutionPrevention FeatureState      `json:"behavioral_execution_prevention,omitempty"`
	DeviceControl                 FeatureState      `json:"device_control,omitempty"`
	DocumentProtection            FeatureState      `json:"document_protection,omitempty"`
	DocumentProtectionMode        Sensitivity       `json:"document_protection_mode,omitempty"`
	Firewall                      FeatureState      `json:"firewall,omitempty"`
	IsEffective                   bool              `json:"is_effective"`
	IsIsolated                    *bool             `json:"is_isolated,omitempty"`
	IsOutdated                    *bool             `json:"is_outdated,omitempty"`
	LifecycleState                LifecycleState    `json:"lifecycle_state"`
	PowerShellProtection          FeatureState      `json:"powershell_protection,omitempty"`
	Prevention                    FeatureState      `json:"prevention,omitempty"`
	RansomwareProtection          FeatureState      `json:"ransomware_protection,omitempty"`
	Raw                           map[string]string `json:"raw,omitempty"`
	RemoteShell                   FeatureState      `json:"remote_shell,omitempty"`
	SecurityLevel                 string            `json:"security_level,omitempty"`
	SecurityLevelID               int               `json:"security_level_id"`
	SecurityStates                []SecurityState   `json:"security_states"` // empty, not nil, when secure
	SensorStatus                  SensorStatus      `json:"sensor_status"`
	ServiceStatus                 ServiceStatus     `json:"service_status,omitempty"`
	StaticAnalysisDetect          FeatureState      `json:"static_analysis_detect,omitempty"`
	StaticAnalysisPrevent         FeatureState      `json:"static_analysis_prevent,omitempty"`
	VariantFilePrevention         FeatureState      `json:"variant_file_prevention,omitempty"`
	VariantPayloadPrevention      FeatureState      `json:"variant_payload_prevention,omitempty"`
}

// SecurityState is one OCSF security state, such as 4 "Protection off".
type SecurityState struct {
	State   string `json:"state"`
	StateID int    `json:"state_id"`
}

// Finding is one MalOp or one malware alert: the value of the finding.schema.json record.
type Finding struct {
	ActivityID    int          `json:"activity_id"`
	CategoryUID   int          `json:"category_uid"`
	ClassUID      int          `json:"class_uid"`
	Devices       []DeviceRef  `json:"devices,omitempty"`
	EndTime       int64        `json:"end_time,omitempty"` // epoch ms
	FindingInfo   FindingInfo  `json:"finding_info"`
	FindingUID    string       `json:"finding_uid"` // cybereason:<tenant>:malop:<guid> or cybereason:<tenant>:malware:<guid>
	IsAlert       *bool        `json:"is_alert,omitempty"`
	Metadata      Metadata     `json:"metadata"`
	Observables   []Observable `json:"observables,omitempty"`
	Priority      string       `json:"priority,omitempty"`
	PriorityID    int          `json:"priority_id"`
	SchemaVersion string       `json:"schema_version"`
	Severity      string       `json:"severity"`
	SeverityID    int          `json:"severity_id"`
	Status        string       `json:"status"`
	StatusDetail  string       `json:"status_detail,omitempty"` // vendor status text
	StatusID      int          `json:"status_id"`
	Time          int64        `json:"time"` // MalOp creation or malware detection time, epoch ms
	TypeUID       int          `json:"type_uid"`
	Unmapped      Unmapped     `json:"unmapped,omitempty"`
	Users         []User       `json:"users,omitempty"`
	Verdict       string       `json:"verdict,omitempty"`
	VerdictID     int          `json:"verdict_id"`
}

// FindingInfo describes what was detected.
type FindingInfo struct {
	Analytic     *Analytic `json:"analytic,omitempty"`
	Attacks      []Attack  `json:"attacks,omitempty"`
	CreatedTime  int64     `json:"created_time,omitempty"` // epoch ms
	DataSources  []string  `json:"data_sources,omitempty"`
	ModifiedTime int64     `json:"modified_time,omitempty"` // epoch ms
	SrcURL       string    `json:"src_url,omitempty"`
	Tags         []Tag     `json:"tags,omitempty"`
	Title        string    `json:"title"`
	Types        []string  `json:"types,omitempty"`
	UID          string    `json:"uid"` // MalOp or malware guid
}

// Attack is one MITRE ATT&CK tactic, technique or sub-technique that a finding names (OCSF
// attack). At least one of the three is set. The vendor lists tactics and techniques separately,
// so a technique is never paired with a tactic that the vendor did not pair it with.
type Attack struct {
	SubTechnique *AttackElement `json:"sub_technique,omitempty"`
	Tactic       *AttackElement `json:"tactic,omitempty"`
	Technique    *AttackElement `json:"technique,omitempty"`
}

// AttackElement is an ATT&CK tactic, technique or sub-technique: its id (TA0002, T1059,
// T1059.001), its name, or both.
type AttackElement struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// Analytic is the detection logic that produced a finding.
type Analytic struct {
	Category string `json:"category,omitempty"`
	Name     string `json:"name,omitempty"`
	Type     string `json:"type,omitempty"`
	TypeID   int    `json:"type_id"`
}

// Tag is a name/value label.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DeviceRef is a device that a finding involves. AssetUID and UID are set when the device's asset
// record is known.
type DeviceRef struct {
	AgentList  []Agent `json:"agent_list,omitempty"` // the sensor, when the vendor names its pylumId
	AssetUID   string  `json:"asset_uid,omitempty"`
	Hostname   string  `json:"hostname,omitempty"`
	IP         string  `json:"ip,omitempty"`
	IsIsolated *bool   `json:"is_isolated,omitempty"`
	Name       string  `json:"name,omitempty"`
	OS         *OS     `json:"os,omitempty"`
	UID        string  `json:"uid,omitempty"`
	UIDAlt     string  `json:"uid_alt,omitempty"`
}

// User is a user account that a finding involves. TypeID: 0 Unknown, 1 User, 2 Admin, 3 System.
type User struct {
	Name   string `json:"name,omitempty"`
	Type   string `json:"type,omitempty"`
	TypeID int    `json:"type_id"`
	UID    string `json:"uid,omitempty"`
}

// Observable is a value of a finding worth indexing, such as a host name or a file hash. Name is
// the path of the value in the record.
type Observable struct {
	Name   string `json:"name"`
	Type   string `json:"type,omitempty"`
	TypeID int    `json:"type_id"`
	Value  string `json:"value"`
}
