package schemas

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
	SchemaVersion string     `json:"schema_version"`
	ClassUID      int        `json:"class_uid"`
	CategoryUID   int        `json:"category_uid"`
	ActivityID    int        `json:"activity_id"`
	TypeUID       int        `json:"type_uid"`
	SeverityID    int        `json:"severity_id"`
	Time          int64      `json:"time"` // poll time, epoch ms
	Metadata      Metadata   `json:"metadata"`
	AssetUID      string     `json:"asset_uid"` // cybereason:<tenant>:<sensorId>
	Device        Device     `json:"device"`
	Protection    Protection `json:"protection"`
	Unmapped      Unmapped   `json:"unmapped,omitempty"`
}

// Metadata describes where a record comes from. UID equals the CloudEvents id of the message.
type Metadata struct {
	Version       string   `json:"version"` // OCSFVersion
	UID           string   `json:"uid"`
	Product       Product  `json:"product"`
	TenantUID     string   `json:"tenant_uid"`
	ProcessedTime int64    `json:"processed_time"` // epoch ms
	LogProvider   string   `json:"log_provider,omitempty"`
	Profiles      []string `json:"profiles,omitempty"`
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

// Device is the machine of an asset record. UID is always set.
type Device struct {
	UID               string             `json:"uid"`               // sensorId
	UIDAlt            string             `json:"uid_alt,omitempty"` // machine guid, as MalOps name it
	Name              string             `json:"name,omitempty"`
	Hostname          string             `json:"hostname,omitempty"`
	Domain            string             `json:"domain,omitempty"`
	TypeID            int                `json:"type_id"`
	Type              string             `json:"type,omitempty"`
	IP                string             `json:"ip,omitempty"`
	MAC               string             `json:"mac,omitempty"`
	NetworkInterfaces []NetworkInterface `json:"network_interfaces,omitempty"`
	OS                *OS                `json:"os,omitempty"`
	Model             string             `json:"model,omitempty"`
	HWInfo            *HWInfo            `json:"hw_info,omitempty"`
	FirstSeenTime     int64              `json:"first_seen_time,omitempty"` // epoch ms
	LastSeenTime      int64              `json:"last_seen_time,omitempty"`  // epoch ms
	IsManaged         *bool              `json:"is_managed,omitempty"`
	IsCompliant       *bool              `json:"is_compliant,omitempty"`
	Groups            []Group            `json:"groups,omitempty"`
	Org               *Organization      `json:"org,omitempty"`
	AgentList         []Agent            `json:"agent_list"`
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
	TypeID  int    `json:"type_id"`
	Type    string `json:"type,omitempty"`
	Version string `json:"version,omitempty"`
}

// HWInfo is hardware information of a device.
type HWInfo struct {
	SerialNumber string `json:"serial_number,omitempty"`
}

// Group is a group that a device belongs to.
type Group struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
}

// Organization is the organization and organizational unit of a device.
type Organization struct {
	Name   string `json:"name,omitempty"`
	OUName string `json:"ou_name,omitempty"`
}

// Agent is the security software installed on a device (for Cybereason, the sensor).
type Agent struct {
	UID        string   `json:"uid"`
	Name       string   `json:"name"`
	TypeID     int      `json:"type_id"`
	Type       string   `json:"type,omitempty"`
	VendorName string   `json:"vendor_name"`
	Version    string   `json:"version,omitempty"`
	Policies   []Policy `json:"policies,omitempty"`
}

// Policy is a policy that an agent runs.
type Policy struct {
	UID       string `json:"uid,omitempty"`
	Name      string `json:"name,omitempty"`
	IsApplied *bool  `json:"is_applied,omitempty"`
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
	SensorStatus                  SensorStatus      `json:"sensor_status"`
	LifecycleState                LifecycleState    `json:"lifecycle_state"`
	ServiceStatus                 ServiceStatus     `json:"service_status,omitempty"`
	Prevention                    FeatureState      `json:"prevention,omitempty"`
	AntiMalware                   FeatureState      `json:"anti_malware,omitempty"`
	AntiMalwareMode               FeatureState      `json:"anti_malware_mode,omitempty"`
	StaticAnalysisDetect          FeatureState      `json:"static_analysis_detect,omitempty"`
	StaticAnalysisPrevent         FeatureState      `json:"static_analysis_prevent,omitempty"`
	RansomwareProtection          FeatureState      `json:"ransomware_protection,omitempty"`
	AntiExploit                   FeatureState      `json:"anti_exploit,omitempty"`
	PowerShellProtection          FeatureState      `json:"powershell_protection,omitempty"`
	DocumentProtection            FeatureState      `json:"document_protection,omitempty"`
	DocumentProtectionMode        Sensitivity       `json:"document_protection_mode,omitempty"`
	Firewall                      FeatureState      `json:"firewall,omitempty"`
	DeviceControl                 FeatureState      `json:"device_control,omitempty"`
	RemoteShell                   FeatureState      `json:"remote_shell,omitempty"`
	BehavioralExecutionPrevention FeatureState      `json:"behavioral_execution_prevention,omitempty"`
	VariantPayloadPrevention      FeatureState      `json:"variant_payload_prevention,omitempty"`
	VariantFilePrevention         FeatureState      `json:"variant_file_prevention,omitempty"`
	IsIsolated                    *bool             `json:"is_isolated,omitempty"`
	IsOutdated                    *bool             `json:"is_outdated,omitempty"`
	IsEffective                   bool              `json:"is_effective"`
	SecurityLevelID               int               `json:"security_level_id"`
	SecurityLevel                 string            `json:"security_level,omitempty"`
	SecurityStates                []SecurityState   `json:"security_states"` // empty, not nil, when secure
	Raw                           map[string]string `json:"raw,omitempty"`
}

// SecurityState is one OCSF security state, such as 4 "Protection off".
type SecurityState struct {
	StateID int    `json:"state_id"`
	State   string `json:"state"`
}

// Finding is one MalOp or one malware alert: the value of the finding.schema.json record.
type Finding struct {
	SchemaVersion string       `json:"schema_version"`
	ClassUID      int          `json:"class_uid"`
	CategoryUID   int          `json:"category_uid"`
	ActivityID    int          `json:"activity_id"`
	TypeUID       int          `json:"type_uid"`
	SeverityID    int          `json:"severity_id"`
	Severity      string       `json:"severity"`
	Time          int64        `json:"time"` // MalOp creation or malware detection time, epoch ms
	Metadata      Metadata     `json:"metadata"`
	FindingUID    string       `json:"finding_uid"` // cybereason:<tenant>:malop:<guid> or cybereason:<tenant>:malware:<guid>
	FindingInfo   FindingInfo  `json:"finding_info"`
	StatusID      int          `json:"status_id"`
	Status        string       `json:"status"`
	StatusDetail  string       `json:"status_detail,omitempty"` // vendor status text
	PriorityID    int          `json:"priority_id"`
	Priority      string       `json:"priority,omitempty"`
	VerdictID     int          `json:"verdict_id"`
	Verdict       string       `json:"verdict,omitempty"`
	IsAlert       *bool        `json:"is_alert,omitempty"`
	EndTime       int64        `json:"end_time,omitempty"` // epoch ms
	Devices       []DeviceRef  `json:"devices,omitempty"`
	Users         []User       `json:"users,omitempty"`
	Observables   []Observable `json:"observables,omitempty"`
	Unmapped      Unmapped     `json:"unmapped,omitempty"`
}

// FindingInfo describes what was detected.
type FindingInfo struct {
	UID          string    `json:"uid"` // MalOp or malware guid
	Title        string    `json:"title"`
	Types        []string  `json:"types,omitempty"`
	CreatedTime  int64     `json:"created_time,omitempty"`  // epoch ms
	ModifiedTime int64     `json:"modified_time,omitempty"` // epoch ms
	SrcURL       string    `json:"src_url,omitempty"`
	Analytic     *Analytic `json:"analytic,omitempty"`
	DataSources  []string  `json:"data_sources,omitempty"`
	Tags         []Tag     `json:"tags,omitempty"`
	Attacks      []Attack  `json:"attacks,omitempty"`
}

// Attack is one MITRE ATT&CK tactic, technique or sub-technique that a finding names (OCSF
// attack). At least one of the three is set. The vendor lists tactics and techniques separately,
// so a technique is never paired with a tactic that the vendor did not pair it with.
type Attack struct {
	Tactic       *AttackElement `json:"tactic,omitempty"`
	Technique    *AttackElement `json:"technique,omitempty"`
	SubTechnique *AttackElement `json:"sub_technique,omitempty"`
}

// AttackElement is an ATT&CK tactic, technique or sub-technique: its id (TA0002, T1059,
// T1059.001), its name, or both.
type AttackElement struct {
	UID  string `json:"uid,omitempty"`
	Name string `json:"name,omitempty"`
}

// Analytic is the detection logic that produced a finding.
type Analytic struct {
	TypeID   int    `json:"type_id"`
	Type     string `json:"type,omitempty"`
	Name     string `json:"name,omitempty"`
	Category string `json:"category,omitempty"`
}

// Tag is a name/value label.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DeviceRef is a device that a finding involves. AssetUID and UID are set when the device's asset
// record is known.
type DeviceRef struct {
	AssetUID   string  `json:"asset_uid,omitempty"`
	UID        string  `json:"uid,omitempty"`
	UIDAlt     string  `json:"uid_alt,omitempty"`
	Name       string  `json:"name,omitempty"`
	Hostname   string  `json:"hostname,omitempty"`
	IP         string  `json:"ip,omitempty"`
	OS         *OS     `json:"os,omitempty"`
	IsIsolated *bool   `json:"is_isolated,omitempty"`
	AgentList  []Agent `json:"agent_list,omitempty"` // the sensor, when the vendor names its pylumId
}

// User is a user account that a finding involves. TypeID: 0 Unknown, 1 User, 2 Admin, 3 System.
type User struct {
	UID    string `json:"uid,omitempty"`
	Name   string `json:"name,omitempty"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type,omitempty"`
}

// Observable is a value of a finding worth indexing, such as a host name or a file hash. Name is
// the path of the value in the record.
type Observable struct {
	TypeID int    `json:"type_id"`
	Type   string `json:"type,omitempty"`
	Name   string `json:"name"`
	Value  string `json:"value"`
}
