package cybereasontest

import (
	"fmt"
	"strconv"
	"strings"
)

// sensorDoc is a sensor object of POST /rest/sensors/query, with its members in the order the
// console sends them. Times are epoch milliseconds.
type sensorDoc struct {
	SensorID                         string        `json:"sensorId"`
	PylumID                          string        `json:"pylumId"`
	GUID                             string        `json:"guid"`
	FQDN                             string        `json:"fqdn"`
	MachineName                      string        `json:"machineName"`
	InternalIPAddress                string        `json:"internalIpAddress"`
	ExternalIPAddress                string        `json:"externalIpAddress"`
	SiteName                         string        `json:"siteName"`
	SiteID                           int           `json:"siteId"`
	RansomwareStatus                 string        `json:"ransomwareStatus"`
	PreventionStatus                 string        `json:"preventionStatus"`
	Isolated                         bool          `json:"isolated"`
	DisconnectionTime                int64         `json:"disconnectionTime"`
	LastPylumInfoMsgUpdateTime       int64         `json:"lastPylumInfoMsgUpdateTime"`
	LastPylumUpdateTimestampMs       int64         `json:"lastPylumUpdateTimestampMs"`
	Status                           string        `json:"status"`
	ServiceStatus                    string        `json:"serviceStatus"`
	OnlineTimeMS                     int64         `json:"onlineTimeMS"`
	OfflineTimeMS                    int64         `json:"offlineTimeMS"`
	StaleTimeMS                      int64         `json:"staleTimeMS"`
	ArchiveTimeMs                    *int64        `json:"archiveTimeMs"`
	StatusTimeMS                     int64         `json:"statusTimeMS"`
	LastStatusAction                 string        `json:"lastStatusAction"`
	ArchivedOrUnarchiveComment       string        `json:"archivedOrUnarchiveComment"`
	SensorArchivedByUser             *string       `json:"sensorArchivedByUser"`
	ServerName                       string        `json:"serverName"`
	ServerID                         string        `json:"serverId"`
	ServerIP                         string        `json:"serverIp"`
	PrivateServerIP                  string        `json:"privateServerIp"`
	CollectiveUUID                   string        `json:"collectiveUuid"`
	OSType                           string        `json:"osType"`
	OSVersionType                    string        `json:"osVersionType"`
	CollectionStatus                 string        `json:"collectionStatus"`
	Version                          string        `json:"version"`
	ConsoleVersion                   *string       `json:"consoleVersion"`
	FirstSeenTime                    int64         `json:"firstSeenTime"`
	UpTime                           int64         `json:"upTime"`
	CPUUsage                         float64       `json:"cpuUsage"`
	MemoryUsage                      int64         `json:"memoryUsage"`
	Outdated                         bool          `json:"outdated"`
	AMStatus                         string        `json:"amStatus"`
	AMModeOrigin                     *string       `json:"amModeOrigin"`
	AVDBVersion                      string        `json:"avDbVersion"`
	AVDBLastUpdateTime               int64         `json:"avDbLastUpdateTime"`
	PowerShellStatus                 string        `json:"powerShellStatus"`
	RemoteShellStatus                string        `json:"remoteShellStatus"`
	USBStatus                        string        `json:"usbStatus"`
	FWStatus                         string        `json:"fwStatus"`
	AntiExploitStatus                string        `json:"antiExploitStatus"`
	DocumentProtectionStatus         string        `json:"documentProtectionStatus"`
	DocumentProtectionMode           string        `json:"documentProtectionMode"`
	SerialNumber                     string        `json:"serialNumber"`
	DeviceModel                      string        `json:"deviceModel"`
	OrganizationalUnit               string        `json:"organizationalUnit"`
	AntiMalwareStatus                string        `json:"antiMalwareStatus"`
	AntiMalwareModeOrigin            *string       `json:"antiMalwareModeOrigin"`
	Organization                     string        `json:"organization"`
	ProxyAddress                     string        `json:"proxyAddress"`
	PreventionError                  string        `json:"preventionError"`
	ExitReason                       string        `json:"exitReason"`
	ActionsInProgress                int           `json:"actionsInProgress"`
	PendingActions                   []int64       `json:"pendingActions"`
	LastUpgradeResult                string        `json:"lastUpgradeResult"`
	Department                       *string       `json:"department"`
	Location                         *string       `json:"location"`
	CriticalAsset                    *bool         `json:"criticalAsset"`
	DeviceType                       *string       `json:"deviceType"`
	CustomTags                       *string       `json:"customTags"`
	LastUpgradeSteps                 []upgradeStep `json:"lastUpgradeSteps"`
	Disconnected                     bool          `json:"disconnected"`
	StaticAnalysisDetectMode         string        `json:"staticAnalysisDetectMode"`
	StaticAnalysisDetectModeOrigin   *string       `json:"staticAnalysisDetectModeOrigin"`
	StaticAnalysisPreventMode        string        `json:"staticAnalysisPreventMode"`
	StaticAnalysisPreventModeOrigin  *string       `json:"staticAnalysisPreventModeOrigin"`
	CollectionComponents             []string      `json:"collectionComponents"`
	SensorLastUpdate                 int64         `json:"sensorLastUpdate"`
	FullScanStatus                   string        `json:"fullScanStatus"`
	QuickScanStatus                  string        `json:"quickScanStatus"`
	LastFullScheduleScanSuccessTime  int64         `json:"lastFullScheduleScanSuccessTime"`
	LastQuickScheduleScanSuccessTime int64         `json:"lastQuickScheduleScanSuccessTime"`
	PolicyName                       string        `json:"policyName"`
	DeliveryTime                     int64         `json:"deliveryTime"`
	PolicyID                         *string       `json:"policyId"`
	Compliance                       *bool         `json:"compliance"`
	GroupID                          string        `json:"groupId"`
	GroupName                        string        `json:"groupName"`
	GroupStickiness                  bool          `json:"groupStickiness"`
	GroupStickinessLabel             string        `json:"groupStickinessLabel"`
	// Members that only newer console versions send.
	BEPMode                   *string `json:"bepMode"`
	VPPMode                   *string `json:"vppMode"`
	VariantFilePreventionMode *string `json:"variantFilePreventionMode"`
	// NOTE: no real uniqueSensorKey value has been seen, so its 32-hex-digit form is a guess.
	UniqueSensorKey       string  `json:"uniqueSensorKey"`
	DecommissionedByUser  *string `json:"decommissionedByUser"`
	DecommissionedSensors bool    `json:"decommissionedSensors"`
	DecommissionTimestamp int64   `json:"decommissionTimestamp"`
	PurgedSensors         bool    `json:"purgedSensors"`
	PurgeTimestamp        int64   `json:"purgeTimestamp"`
	SensorPurgedByUser    *string `json:"sensorPurgedByUser"`
}

// filterValues returns the filterableFields of the sensor as text, as textValue reads them.
func (doc *sensorDoc) filterValues() [len(filterableFields)]string {
	values := map[string]string{
		"sensorId":          doc.SensorID,
		"pylumId":           doc.PylumID,
		"guid":              doc.GUID,
		"machineName":       doc.MachineName,
		"fqdn":              doc.FQDN,
		"internalIpAddress": doc.InternalIPAddress,
		"externalIpAddress": doc.ExternalIPAddress,
		"status":            doc.Status,
		"serviceStatus":     doc.ServiceStatus,
		"osType":            doc.OSType,
		"osVersionType":     doc.OSVersionType,
		"collectionStatus":  doc.CollectionStatus,
		"policyId":          derefText(doc.PolicyID),
		"policyName":        doc.PolicyName,
		"groupId":           doc.GroupID,
		"groupName":         doc.GroupName,
		"siteName":          doc.SiteName,
		"organization":      doc.Organization,
		"version":           doc.Version,
		"isolated":          strconv.FormatBool(doc.Isolated),
		"disconnected":      strconv.FormatBool(doc.Disconnected),
		"outdated":          strconv.FormatBool(doc.Outdated),
		"compliance":        "",
	}
	if doc.Compliance != nil {
		values["compliance"] = strconv.FormatBool(*doc.Compliance)
	}

	var fields [len(filterableFields)]string
	for i, name := range filterableFields {
		fields[i] = values[name]
	}
	return fields
}

func derefText(value *string) string {
	if value == nil {
		return ""
	}
	return *value
}

type upgradeStep struct {
	Name      string `json:"name"`
	StartTime int64  `json:"startTime"`
}

var (
	serverRoles      = []string{"web", "db", "app", "dc", "file", "mail", "build", "vpn", "proxy", "backup"}
	environments     = []string{"prod", "stg", "dev", "qa"}
	ownerNames       = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}
	cpuModels        = []string{"Intel(R) Core(TM) i7-1185G7 @ 3.00GHz", "Intel(R) Core(TM) i5-10310U CPU @ 1.70GHz", "AMD Ryzen 7 PRO 5850U with Radeon Graphics", "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"}
	appleModels      = []string{"Apple M1", "Apple M2 Pro", "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz"}
	sensorVersions   = []string{"23.1.180.0", "23.2.91.1", "22.1.260.0"}
	outdatedVersions = []string{"21.2.420.0", "20.1.409.0"}
	departments      = []string{"Finance", "R&D", "IT", "Sales", "Legal"}
	locations        = []string{"Paris", "Lyon", "Berlin", "New York", "Singapore"}
)

// sensor returns the sensor at position index of a generated tenant.
func (g *generator) sensor(index int) sensorDoc {
	osType := pickWeighted(g, []weighted[string]{{"WINDOWS", 70}, {"LINUX", 20}, {"OSX", 10}})
	var doc sensorDoc
	g.identity(&doc, osType, index)
	g.state(&doc)
	g.inventory(&doc)
	g.protection(&doc)
	return doc
}

// macVendorPrefixes are organizationally unique identifiers of common NIC and
// hypervisor vendors.
var macVendorPrefixes = []string{"005056", "000C29", "080027", "3C5282", "F8B156", "A4BB6D", "D89EF3", "00155D"}

func (g *generator) identity(doc *sensorDoc, osType string, index int) {
	server := pick(g, g.servers)
	host := g.hostname(osType, index)
	// A vendor prefix keeps the address unicast and real-looking.
	mac := pick(g, macVendorPrefixes) + strings.ToUpper(g.hex(6))

	doc.OSType = osType
	doc.MachineName = host
	doc.FQDN = host
	if osType == "WINDOWS" && g.chance(60) {
		doc.FQDN = host + "." + g.domain
	}
	doc.PylumID = "PYLUMCLIENT_" + g.org + "_" + strings.ToUpper(host) + "_" + mac
	doc.SensorID = server.id + ":" + doc.PylumID
	doc.GUID = g.machineGUID(server)
	doc.UniqueSensorKey = g.hex(32)
	doc.InternalIPAddress = g.privateIPv4()
	doc.ExternalIPAddress = g.publicIPv4()
	doc.SiteName = "Default"
	doc.ServerName = server.name
	doc.ServerID = server.id
	doc.ServerIP = server.ip
	doc.PrivateServerIP = server.privateIP
	doc.CollectiveUUID = server.collective
	doc.Organization = g.organization
}

// hostname returns a host name that is unique in the tenant.
func (g *generator) hostname(osType string, index int) string {
	const upperAlphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var name string
	switch {
	case osType == "LINUX" && g.chance(30):
		name = fmt.Sprintf("ip-10-%d-%d-%d", g.random.IntN(256), g.random.IntN(256), 1+g.random.IntN(254))
	case osType == "LINUX":
		name = fmt.Sprintf("%s-%s-%02d", pick(g, serverRoles), pick(g, environments), 1+g.random.IntN(30))
	case osType == "OSX":
		name = pick(g, ownerNames) + pick(g, []string{"-mbp", "-mba", "s-macbook-pro"})
	default:
		prefix := pickWeighted(g, []weighted[string]{{"desktop-", 45}, {"laptop-", 30}, {"win-", 10}, {"srv-", 15}})
		if prefix == "srv-" {
			name = fmt.Sprintf("srv-%s-%02d", pick(g, serverRoles), 1+g.random.IntN(40))
		} else {
			name = prefix + strings.ToLower(g.letters(upperAlphanumeric, 7))
		}
	}
	if g.hostnames[name] {
		name = fmt.Sprintf("%s-%d", name, index)
	}
	g.hostnames[name] = true
	return name
}

// machineGUID returns a unique machine guid, in the older "<int>.<int>" form or the newer
// 16-character form.
func (g *generator) machineGUID(server detectionServer) string {
	for {
		guid := g.crGUID()
		if g.chance(70) {
			guid = fmt.Sprintf("%d.%d", int32(g.random.Uint32()), server.guidSuffix)
		}
		if !g.guids[guid] {
			g.guids[guid] = true
			return guid
		}
	}
}

// state fills the status and the times, which depend on each other.
func (g *generator) state(doc *sensorDoc) {
	doc.Status = pickWeighted(g, []weighted[string]{{"Online", 60}, {"Offline", 20}, {"Stale", 12}, {"Archived", 8}})
	var lastSeen int64
	switch doc.Status {
	case "Online":
		lastSeen = g.now - g.between(0, 5*minuteMs)
	case "Offline":
		lastSeen = g.now - g.between(hourMs, 6*dayMs)
	case "Stale":
		lastSeen = g.now - g.between(31*dayMs, 120*dayMs)
	default:
		lastSeen = g.now - g.between(40*dayMs, 300*dayMs)
	}
	firstSeen := min(g.now-g.between(20*dayMs, 900*dayMs), lastSeen-dayMs)

	online := doc.Status == "Online"
	doc.FirstSeenTime = firstSeen
	doc.LastPylumUpdateTimestampMs = lastSeen
	doc.LastPylumInfoMsgUpdateTime = lastSeen - g.between(0, 30*minuteMs)
	doc.DisconnectionTime = lastSeen
	if online {
		doc.DisconnectionTime = max(firstSeen, lastSeen-g.between(hourMs, 30*dayMs))
	}
	doc.Disconnected = !online
	doc.ServiceStatus = "Down"
	if online && g.chance(95) {
		doc.ServiceStatus = "Up"
	}
	doc.Isolated = online && g.chance(2)
	doc.UpTime = g.between(hourMs, 60*dayMs)
	if online {
		doc.CPUUsage = float64(g.between(1_000, 60_000_000)) / 1e9
		doc.MemoryUsage = g.between(50<<20, 400<<20)
	}
	doc.ExitReason = "STOP_REQUEST_FROM_PYLUM"
	doc.LastStatusAction = "None"
	doc.DeliveryTime = max(firstSeen, lastSeen-g.between(0, 30*dayMs))
	doc.AVDBLastUpdateTime = lastSeen - g.between(0, 3*dayMs)
	if g.chance(60) {
		doc.LastFullScheduleScanSuccessTime = lastSeen - g.between(0, 30*dayMs)
		doc.LastQuickScheduleScanSuccessTime = lastSeen - g.between(0, 7*dayMs)
	}
	doc.FullScanStatus, doc.QuickScanStatus = "UNKNOWN", "UNKNOWN"
	if online {
		doc.FullScanStatus, doc.QuickScanStatus = "IDLE", pickWeighted(g, []weighted[string]{{"IDLE", 9}, {"IN_PROGRESS", 1}})
	}

	if doc.Status == "Archived" {
		archived := min(g.now, lastSeen+g.between(dayMs, 30*dayMs))
		archiver := "it-admin@" + g.organization + ".example"
		doc.ArchiveTimeMs = &archived
		doc.LastStatusAction = "Archive"
		doc.SensorArchivedByUser = &archiver
		doc.ArchivedOrUnarchiveComment = pick(g, []string{"", "machine decommissioned", "reimaged"})
	}
}

// inventory fills the hardware, software, organization and upgrade members.
func (g *generator) inventory(doc *sensorDoc) {
	switch doc.OSType {
	case "LINUX":
		doc.OSVersionType = pick(g, []string{"Centos_Linux_7", "Red_Hat_Enterprise_Linux_8", "Ubuntu_20_04", "Ubuntu_22_04", "Amazon_Linux_2"})
		doc.DeviceModel = pick(g, []string{"Red Hat\n", "KVM", "VMware Virtual Platform", "Amazon EC2"})
	case "OSX":
		doc.OSVersionType = pick(g, []string{"Catalina_10_15", "Monterey_12", "Ventura_13", "Sonoma_14"})
		doc.DeviceModel = pick(g, appleModels)
		doc.SerialNumber = "C02" + g.letters("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", 9)
	default:
		server := strings.HasPrefix(doc.MachineName, "srv-")
		doc.OSVersionType = pick(g, []string{"Windows_10", "Windows_11"})
		if server {
			doc.OSVersionType = pick(g, []string{"Windows_Server_2016", "Windows_Server_2019", "Windows_Server_2022"})
		}
		doc.DeviceModel = pick(g, cpuModels)
		if !server && g.chance(50) {
			doc.SerialNumber = "5CG" + g.letters("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", 7)
		}
		if g.chance(40) {
			doc.OrganizationalUnit = "OU=Workstations,DC=corp,DC=" + g.organization + ",DC=example"
		}
	}

	doc.Outdated = g.chance(25)
	doc.Version = pick(g, sensorVersions)
	if doc.Outdated {
		doc.Version = pick(g, outdatedVersions)
	}
	doc.AVDBVersion = strconv.FormatInt(g.between(86_000, 88_000), 10)
	doc.CollectionStatus = pickWeighted(g, []weighted[string]{{"ADVANCED", 50}, {"ENABLED", 40}, {"DISABLED", 5}, {"SUSPENDED", 5}})
	switch doc.CollectionStatus {
	case "ADVANCED":
		doc.CollectionComponents = []string{"DPI", "Metadata", "File Events", "Registry Events"}
	case "ENABLED":
		doc.CollectionComponents = []string{"Metadata"}
	default:
		doc.CollectionComponents = []string{}
	}

	doc.PendingActions = []int64{}
	if g.chance(5) {
		doc.PendingActions = append(doc.PendingActions, g.between(100_000_000, 999_999_999))
	}
	doc.ActionsInProgress = len(doc.PendingActions)
	g.upgrade(doc)

	if g.chance(30) {
		department := pick(g, departments)
		doc.Department = &department
	}
	if g.chance(30) {
		location := pick(g, locations)
		doc.Location = &location
	}
	if strings.HasPrefix(doc.MachineName, "srv-") || strings.HasPrefix(doc.MachineName, "dc-") {
		critical := true
		doc.CriticalAsset = &critical
	}
}

func (g *generator) upgrade(doc *sensorDoc) {
	doc.LastUpgradeResult = pickWeighted(g, []weighted[string]{{"None", 70}, {"Succeeded", 20}, {"AlreadyUpdated", 8}, {"Failed", 2}})
	doc.LastUpgradeSteps = []upgradeStep{}
	if doc.LastUpgradeResult == "None" {
		return
	}
	started := doc.DeliveryTime - g.between(0, 10*dayMs)
	doc.LastUpgradeSteps = []upgradeStep{
		{Name: "Started", StartTime: started},
		{Name: doc.LastUpgradeResult, StartTime: started + g.between(2, 20*minuteMs)},
	}
}

// protection fills the policy, the group and the protection features. Most sensors have the
// features of their policy, and some have drifted (one feature off, compliance false).
func (g *generator) protection(doc *sensorDoc) {
	chosen := g.policies[0]
	switch {
	case doc.OSType == "LINUX" && g.chance(80):
		chosen = g.policies[3]
	case strings.HasPrefix(doc.MachineName, "srv-"):
		chosen = g.policies[2]
	case doc.OSType == "WINDOWS" && g.chance(60):
		chosen = g.policies[1]
	}
	doc.PolicyID = &chosen.id
	doc.PolicyName = chosen.name

	group := pick(g, g.groups)
	doc.GroupID, doc.GroupName = group.id, group.name
	doc.GroupStickiness = group.name != "Unassigned" && g.chance(50)
	doc.GroupStickinessLabel = "Dynamic"
	if doc.GroupStickiness {
		doc.GroupStickinessLabel = "Manual"
	}

	features := chosen.protection
	if doc.OSType != "WINDOWS" {
		features.powerShell, features.documentStatus, features.documentMode, features.antiExploit = "", "", "", ""
		features.bep, features.vpp, features.vfp = "", "", ""
	}
	if doc.OSType == "LINUX" {
		features.prevention = "NOT_INSTALLED"
	}
	compliant := true
	if g.chance(10) {
		switch g.random.IntN(4) {
		case 0:
			features.antiMalware, features.amStatus = "AM_DISABLED", "AM_UNINSTALLED"
		case 1:
			features.ransomware = "DISABLED"
		case 2:
			features.staticPrevent = "DISABLED"
		default:
			features.firewall = "DISABLED"
		}
		compliant = false
	}
	doc.Compliance = &compliant
	g.applyProtection(doc, features)
}

func (g *generator) applyProtection(doc *sensorDoc, features protection) {
	doc.AntiMalwareStatus = features.antiMalware
	doc.AMStatus = features.amStatus
	doc.StaticAnalysisDetectMode = features.staticDetect
	doc.StaticAnalysisPreventMode = features.staticPrevent
	doc.RansomwareStatus = features.ransomware
	doc.PreventionStatus = features.prevention
	doc.AntiExploitStatus = features.antiExploit
	doc.PowerShellStatus = features.powerShell
	doc.DocumentProtectionStatus = features.documentStatus
	doc.DocumentProtectionMode = features.documentMode
	doc.USBStatus = features.usb
	doc.FWStatus = features.firewall
	doc.RemoteShellStatus = features.remoteShell
	doc.BEPMode = optional(features.bep)
	doc.VPPMode = optional(features.vpp)
	doc.VariantFilePreventionMode = optional(features.vfp)

	if g.chance(50) {
		origin := "SET_BY_POLICY"
		doc.AMModeOrigin, doc.AntiMalwareModeOrigin = &origin, &origin
	}
	if g.chance(5) {
		origin := "AWAITING_UPDATE"
		doc.StaticAnalysisDetectModeOrigin, doc.StaticAnalysisPreventModeOrigin = &origin, &origin
	}
}

// optional returns nil for "", which the console sends as null for features a sensor lacks.
func optional(value string) *string {
	if value == "" {
		return nil
	}
	return &value
}
