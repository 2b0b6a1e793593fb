package enrich

import (
	"encoding/hex"
	"net"
	"net/netip"
	"strings"

	"github.com/oversoc/cybereason-connector/schemas"
)

// Names of the EDR product and its sensor in the records.
const (
	productName  = "Cybereason Defense Platform"
	vendorName   = "Cybereason"
	agentName    = "Cybereason Sensor"
	agentTypeEDR = 1 // OCSF agent type_id: Endpoint Detection and Response
)

// assetUID returns the Kafka key and asset_uid of a sensor's record.
func assetUID(tenant, sensorID string) string {
	return "cybereason:" + tenant + ":" + sensorID
}

// mapSensor turns a sensor object from /rest/sensors/query into an asset record. metadata.uid is
// left empty for the caller to fill.
func (s *Stage) mapSensor(sensor vendorObject, sensorID string, env envelope, report unknownReporter) schemas.Asset {
	protection := mapProtection(sensor, report)
	device, unmappedIP := mapDevice(sensor, sensorID, protection.LifecycleState, report)
	return schemas.Asset{
		SchemaVersion: schemas.Version,
		ClassUID:      schemas.AssetClassUID,
		CategoryUID:   schemas.AssetCategoryUID,
		ActivityID:    schemas.AssetActivityID,
		TypeUID:       schemas.AssetTypeUID,
		SeverityID:    schemas.AssetSeverityID,
		Time:          env.pollTime.UnixMilli(),
		Metadata:      s.metadata(env, sensor.text("consoleVersion")),
		AssetUID:      assetUID(env.tenant, sensorID),
		Device:        device,
		Protection:    protection,
		Unmapped:      sensorUnmapped(sensor, unmappedIP),
	}
}

// mapDevice builds the device object. It returns the internalIpAddress text when that could not be
// used as an IP address, so that the caller can keep it under unmapped.
func mapDevice(sensor vendorObject, sensorID string, lifecycle schemas.LifecycleState, report unknownReporter) (schemas.Device, string) {
	name := sensor.text("machineName")
	fqdn := sensor.text("fqdn")
	device := schemas.Device{
		UID:      sensorID,
		UIDAlt:   sensor.text("guid"),
		Name:     name,
		Hostname: fqdn,
		Domain:   domainOf(fqdn),
		Model:    sensor.text("deviceModel"),
	}
	if device.Hostname == "" {
		device.Hostname = name
	}
	device.TypeID, device.Type = deviceType(sensor.text("osVersionType"), sensor.text("deviceType"), report)
	device.OS = sensorOS(sensor.text("osType"), sensor.text("osVersionType"), report)

	var unmappedIP string
	rawIP := sensor.text("internalIpAddress")
	if ip, ok := endpointIP(rawIP); ok {
		device.IP = ip
	} else {
		unmappedIP = rawIP
	}
	pylumID := sensor.text("pylumId")
	device.MAC = macFromPylumID(pylumID)
	if device.IP != "" || device.MAC != "" {
		device.NetworkInterfaces = []schemas.NetworkInterface{{IP: device.IP, MAC: device.MAC}}
	}

	if serial := sensor.text("serialNumber"); serial != "" {
		device.HWInfo = &schemas.HWInfo{SerialNumber: serial}
	}
	device.FirstSeenTime, _ = sensor.millis("firstSeenTime")
	if last, ok := sensor.millis("lastPylumUpdateTimestampMs"); ok {
		device.LastSeenTime = last
	} else {
		device.LastSeenTime, _ = sensor.millis("lastPylumInfoMsgUpdateTime")
	}

	switch lifecycle {
	case schemas.LifecycleActive, schemas.LifecycleStale:
		device.IsManaged = boolPointer(true)
	case schemas.LifecycleArchived, schemas.LifecycleRemoved:
		device.IsManaged = boolPointer(false)
	}
	device.IsCompliant = optionalBool(sensor, "compliance", "sensor", report)

	if uid, groupName := sensor.text("groupId"), sensor.text("groupName"); uid != "" || groupName != "" {
		device.Groups = []schemas.Group{{UID: uid, Name: groupName}}
	}
	if org, unit := sensor.text("organization"), sensor.text("organizationalUnit"); org != "" || unit != "" {
		device.Org = &schemas.Organization{Name: org, OUName: unit}
	}
	device.AgentList = []schemas.Agent{sensorAgent(sensor, sensorID, pylumID, device.IsCompliant)}
	return device, unmappedIP
}

// sensorAgent describes the sensor as an OCSF agent. Its policy counts as applied when the sensor
// reports compliance with it.
func sensorAgent(sensor vendorObject, sensorID, pylumID string, compliant *bool) schemas.Agent {
	agent := schemas.Agent{
		UID:        pylumID,
		Name:       agentName,
		TypeID:     agentTypeEDR,
		Type:       "Endpoint Detection and Response",
		VendorName: vendorName,
		Version:    sensor.text("version"),
	}
	if agent.UID == "" {
		agent.UID = sensorID
	}
	if uid, name := sensor.text("policyId"), sensor.text("policyName"); uid != "" || name != "" {
		agent.Policies = []schemas.Policy{{UID: uid, Name: name, IsApplied: compliant}}
	}
	return agent
}

// domainOf returns the part of a fully qualified name after the first dot, or "" for a short name.
func domainOf(fqdn string) string {
	_, domain, found := strings.Cut(strings.TrimSuffix(fqdn, "."), ".")
	if !found {
		return ""
	}
	return domain
}

// endpointIP parses an address of the machine itself. Masked values such as
// "<internal_ip_address>", loopback, link-local, multicast and unspecified addresses are rejected.
func endpointIP(raw string) (string, bool) {
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return "", false
	}
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() || addr.IsLoopback() || addr.IsUnspecified() || addr.IsMulticast() ||
		addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() {
		return "", false
	}
	return addr.String(), true
}

// macFromPylumID derives the MAC address that Cybereason appends to the pylumId
// (PYLUMCLIENT_<organization>_<machine>_<12 hex digits>). It returns "" unless the last
// underscore-separated part is 12 hex digits that form a unicast address other than all zeros.
// NOTE: the layout is inferred from published samples, not documented; the MAC is the one seen at
// install time.
func macFromPylumID(pylumID string) string {
	cut := strings.LastIndexByte(pylumID, '_')
	if cut <= 0 || len(pylumID)-cut-1 != 12 {
		return ""
	}
	octets, err := hex.DecodeString(pylumID[cut+1:])
	if err != nil {
		return ""
	}
	allZero := true
	for _, octet := range octets {
		allZero = allZero && octet == 0
	}
	if allZero || octets[0]&1 == 1 {
		return ""
	}
	return net.HardwareAddr(octets).String()
}

// osTypeID maps osType to the OCSF os type id and its caption.
func osTypeID(raw string) (id int, caption string, known bool) {
	switch strings.ToUpper(raw) {
	case "WINDOWS":
		return 100, "Windows", true
	case "LINUX":
		return 200, "Linux", true
	case "OSX", "MACOS":
		return 300, "macOS", true
	case "", "UNKNOWN_OS", "UNKNOWN":
		return 0, "Unknown", true
	}
	return 0, "Unknown", false
}

// sensorOS builds the os object: the name is osVersionType with '_' read as a space (osType when
// osVersionType is empty), and the version is the trailing numeric parts of osVersionType joined
// with dots (Windows_10 -> "10", Catalina_10_15 -> "10.15"). It returns nil when both are empty.
func sensorOS(osType, osVersionType string, report unknownReporter) *schemas.OS {
	if osType == "" && osVersionType == "" {
		return nil
	}
	id, caption, known := osTypeID(osType)
	if !known {
		report("sensor.osType", osType)
	}
	info := &schemas.OS{TypeID: id, Type: caption, Name: strings.ReplaceAll(osVersionType, "_", " ")}
	if info.Name == "" {
		info.Name = osType
	}
	info.Version = trailingVersion(osVersionType)
	return info
}

func trailingVersion(osVersionType string) string {
	parts := strings.Split(osVersionType, "_")
	start := len(parts)
	for start > 0 && isDigits(parts[start-1]) {
		start--
	}
	return strings.Join(parts[start:], ".")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// deviceType returns the OCSF device type: 1 Server when osVersionType names a server edition,
// else the mapping of deviceType, else 0 Unknown.
// NOTE: every captured sensor has deviceType null, so its values are guesses from the OCSF names.
func deviceType(osVersionType, rawType string, report unknownReporter) (int, string) {
	if strings.Contains(strings.ToLower(osVersionType), "server") {
		return 1, "Server"
	}
	switch strings.ToLower(rawType) {
	case "":
		return 0, "Unknown"
	case "server":
		return 1, "Server"
	case "desktop", "workstation":
		return 2, "Desktop"
	case "laptop":
		return 3, "Laptop"
	case "tablet":
		return 4, "Tablet"
	case "mobile":
		return 5, "Mobile"
	case "virtual", "vm", "virtual machine":
		return 6, "Virtual"
	}
	report("sensor.deviceType", rawType)
	return 0, "Unknown"
}

// sensorUnmapped keeps selected vendor fields under unmapped.cybereason. Those in
// sensorVolatileFields change between polls and are listed in schemas.VolatileFields.
func sensorUnmapped(sensor vendorObject, unmappedIP string) schemas.Unmapped {
	selected := make(map[string]any)
	sensor.copyFields(selected, sensorStableFields()...)
	sensor.copyFields(selected, sensorVolatileFields()...)
	if unmappedIP != "" {
		selected["internalIpAddress"] = unmappedIP
	}
	// An unmapped osType becomes os type 0 Unknown, so its text is kept here.
	if osType := sensor.text("osType"); osType != "" {
		if _, _, known := osTypeID(osType); !known {
			selected["osType"] = osType
		}
	}
	if len(selected) == 0 {
		return nil
	}
	return schemas.Unmapped{"cybereason": selected}
}

// sensorStableFields lists the sensor fields without a normalized home that are copied as they are.
func sensorStableFields() []string {
	return []string{
		"siteName", "siteId", "serverName", "serverId", "collectiveUuid", "uniqueSensorKey",
		"collectionStatus", "collectionComponents", "criticalAsset", "department", "location",
		"customTags", "deviceType", "groupStickiness", "groupStickinessLabel",
		"lastStatusAction", "archiveTimeMs", "archivedOrUnarchiveComment", "sensorArchivedByUser",
		"lastUpgradeResult", "exitReason", "preventionError", "proxyAddress",
		"amModeOrigin", "antiMalwareModeOrigin", "staticAnalysisDetectModeOrigin", "staticAnalysisPreventModeOrigin",
		"decommissionedByUser", "decommissionedSensors", "decommissionTimestamp",
		"purgedSensors", "purgeTimestamp", "sensorPurgedByUser",
	}
}

// sensorVolatileFields lists the copied sensor fields that change while the machine does not: load,
// uptime, signature versions, scan progress, connection times and the NAT address.
func sensorVolatileFields() []string {
	return []string{
		"externalIpAddress", "avDbVersion", "avDbLastUpdateTime", "upTime", "cpuUsage", "memoryUsage",
		"disconnected", "disconnectionTime", "lastPylumInfoMsgUpdateTime",
		"quickScanStatus", "fullScanStatus", "lastQuickScheduleScanSuccessTime", "lastFullScheduleScanSuccessTime",
		"deliveryTime", "actionsInProgress", "pendingActions", "lastUpgradeSteps", "sensorLastUpdate",
		"onlineTimeMS", "offlineTimeMS", "staleTimeMS", "statusTimeMS",
	}
}

func boolPointer(b bool) *bool { return &b }
