package enrich

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/oversoc/cybereason-connector/schemas"
)

// findingUID returns the Kafka key and finding_uid of a MalOp's record.
func findingUID(tenant, guid string) string {
	return "cybereason:" + tenant + ":malop:" + guid
}

// mapMalop turns a MalopInboxModel object from /rest/detection/inbox into a finding record.
// metadata.uid is left empty for the caller to fill.
//
// activity_id is 3 Close while the MalOp is resolved or deleted and 1 Create otherwise: enrich keeps
// no memory of which MalOps it has seen, so it cannot tell a first sight from an update. Consumers
// compare lastUpdateTime (finding_info.modified_time) to order updates.
func (s *Stage) mapMalop(malop vendorObject, guid string, env envelope, report unknownReporter) schemas.Finding {
	rawStatus, _ := malop.firstText("status", "malopStatus")
	closed := optionalBool(malop, "closed", "malop", report)
	status := mapMalopStatus(rawStatus, closed != nil && *closed)
	if !status.known {
		report("malop.status", rawStatus)
	}

	activity := schemas.FindingActivityCreate
	if status.id == statusResolved || status.id == statusDeleted {
		activity = schemas.FindingActivityClose
	}

	finding := schemas.Finding{
		SchemaVersion: schemas.Version,
		ClassUID:      schemas.FindingClassUID,
		CategoryUID:   schemas.FindingCategoryUID,
		ActivityID:    activity,
		TypeUID:       schemas.FindingClassUID*100 + activity,
		Metadata:      s.metadata(env, ""),
		FindingUID:    findingUID(env.tenant, guid),
		FindingInfo:   mapFindingInfo(malop, guid, env.consoleBase),
		StatusID:      status.id,
		Status:        statusCaption(status.id),
		StatusDetail:  rawStatus,
		VerdictID:     status.verdict,
		Verdict:       verdictCaption(status.verdict),
		IsAlert:       boolPointer(activity == schemas.FindingActivityCreate),
		Devices:       s.mapMachines(malop, env.tenant, report),
		Users:         mapUsers(malop),
		Unmapped:      malopUnmapped(malop),
	}
	finding.Metadata.Profiles = []string{"incident"}
	finding.Time = findingTime(malop, env)

	rawSeverity, _ := malop.firstText("severity", "malopSeverity")
	var known bool
	finding.SeverityID, finding.Severity, known = severity(rawSeverity)
	if !known {
		report("malop.severity", rawSeverity)
	}
	rawPriority, _ := malop.firstText("priority", "malopPriority")
	finding.PriorityID, finding.Priority, known = priority(rawPriority)
	if !known {
		report("malop.priority", rawPriority)
	}

	if activity == schemas.FindingActivityClose {
		finding.EndTime, _ = malop.millis("malopCloseTime")
	}
	finding.Observables = malopObservables(malop, finding)
	return finding
}

// findingTime is the MalOp creation time, else its last update, else the poll time.
func findingTime(malop vendorObject, env envelope) int64 {
	if created, ok := malop.millis("creationTime"); ok {
		return created
	}
	if updated, ok := malop.millis("lastUpdateTime"); ok {
		return updated
	}
	return env.pollTime.UnixMilli()
}

func mapFindingInfo(malop vendorObject, guid, consoleBase string) schemas.FindingInfo {
	info := schemas.FindingInfo{
		UID:         guid,
		Types:       malop.texts("detectionTypes"),
		DataSources: malop.texts("detectionEngines"),
		Tags:        malopLabels(malop),
	}
	info.Title, _ = malop.firstText("displayName", "primaryRootCauseName")
	if info.Title == "" {
		info.Title = "MalOp " + guid
	}
	info.CreatedTime, _ = malop.millis("creationTime")
	info.ModifiedTime, _ = malop.millis("lastUpdateTime")

	analytic := &schemas.Analytic{TypeID: 99, Type: "Other"}
	analytic.Name, _ = malop.firstText("malopDetectionType", "malopType")
	analytic.Category = strings.Join(info.DataSources, ", ")
	info.Analytic = analytic

	if consoleBase != "" {
		page := "/#/detection-malop/"
		if isEDRMalop(malop) {
			page = "/#/malop/"
		}
		info.SrcURL = consoleBase + page + url.PathEscape(guid)
	}
	return info
}

// isEDRMalop reports whether a MalOp comes from AI Hunt (EDR) rather than Endpoint Protection. The
// edr flag (isEdr in newer APIs) decides, and without it an EDR detection engine does.
func isEDRMalop(malop vendorObject) bool {
	for _, name := range []string{"edr", "isEdr"} {
		if edr, state := malop.boolean(name); state == fieldValid {
			return edr
		}
	}
	for _, engine := range malop.texts("detectionEngines") {
		if strings.EqualFold(engine, "EDR") {
			return true
		}
	}
	return false
}

// malopLabels reads labels, sent as strings by the inbox and as {labelText} objects by newer APIs.
func malopLabels(malop vendorObject) []schemas.Tag {
	list, _ := malop["labels"].([]any)
	var tags []schemas.Tag
	for _, item := range list {
		value := scalarText(item)
		if object, ok := item.(map[string]any); ok {
			value = vendorObject(object).text("labelText")
		}
		if value != "" {
			tags = append(tags, schemas.Tag{Name: "label", Value: value})
		}
	}
	return tags
}

// OCSF finding status ids.
const (
	statusUnknown    = 0
	statusNew        = 1
	statusInProgress = 2
	statusSuppressed = 3
	statusResolved   = 4
	statusDeleted    = 6
)

// OCSF verdict ids.
const (
	verdictUnknown       = 0
	verdictFalsePositive = 1
	verdictTruePositive  = 2
	verdictBenign        = 5
)

// findingStatus is the OCSF status and verdict of a MalOp; known is false for a vendor status
// outside the mapping.
type findingStatus struct {
	id      int
	verdict int
	known   bool
}

// mapMalopStatus maps the MalOp status text and the closed flag. closed=true means the
// investigation is closed whatever the status text is, so it makes the status Resolved. The verdict
// still comes from the text. Status texts are compared without case, spaces and
// underscores, so "Under investigation" and "UnderInvestigation" are the same value.
func mapMalopStatus(raw string, closed bool) findingStatus {
	status := findingStatus{id: statusUnknown, verdict: verdictUnknown, known: true}
	key := strings.NewReplacer(" ", "", "_", "").Replace(strings.ToLower(raw))
	switch key {
	case "":
	case "active", "new", "pending", "unread", "todo", "toreview", "reopened":
		status.id = statusNew
	case "open", "underinvestigation", "onhold":
		status.id = statusInProgress
	case "remediated":
		status.id, status.verdict = statusResolved, verdictTruePositive
	case "closed":
		status.id = statusResolved
	case "fp", "notrelevant":
		status.id, status.verdict = statusResolved, verdictFalsePositive
	case "excluded":
		status.id, status.verdict = statusSuppressed, verdictBenign
	case "purged", "deleted":
		status.id = statusDeleted
	default:
		status.known = false
	}
	if closed {
		status.id = statusResolved
	}
	return status
}

func statusCaption(id int) string {
	switch id {
	case statusNew:
		return "New"
	case statusInProgress:
		return "In Progress"
	case statusSuppressed:
		return "Suppressed"
	case statusResolved:
		return "Resolved"
	case statusDeleted:
		return "Deleted"
	}
	return "Unknown"
}

func verdictCaption(id int) string {
	switch id {
	case verdictFalsePositive:
		return "False Positive"
	case verdictTruePositive:
		return "True Positive"
	case verdictBenign:
		return "Benign"
	}
	return "Unknown"
}

// severity maps the MalOp severity (High, Medium, Low; "" or N/A when unset) to the OCSF
// severity_id and caption. Cybereason has no Critical.
func severity(raw string) (int, string, bool) {
	switch strings.ToLower(raw) {
	case "high":
		return 4, "High", true
	case "medium":
		return 3, "Medium", true
	case "low":
		return 2, "Low", true
	case "", "n/a", "na":
		return 0, "Unknown", true
	}
	return 0, "Unknown", false
}

// priority maps the MalOp priority (HIGH, MEDIUM, LOW, or ""/null) to the OCSF priority_id and
// caption.
func priority(raw string) (int, string, bool) {
	switch strings.ToLower(raw) {
	case "high":
		return 3, "High", true
	case "medium":
		return 2, "Medium", true
	case "low":
		return 1, "Low", true
	case "":
		return 0, "Unknown", true
	}
	return 0, "Unknown", false
}

// mapMachines lists the MalOp's machines. When the Stage has processed the sensor of a machine
// (same tenant, same machine guid), the device also gets that sensor's uid and asset_uid. The
// machineIndex doc explains why this is best effort.
func (s *Stage) mapMachines(malop vendorObject, tenant string, report unknownReporter) []schemas.DeviceRef {
	var devices []schemas.DeviceRef
	for _, machine := range malop.objects("machines") {
		ref := schemas.DeviceRef{UIDAlt: machine.text("guid"), Name: machine.text("displayName")}
		if ref.UIDAlt == "" && ref.Name == "" {
			continue
		}
		if osType := machine.text("osType"); osType != "" {
			id, caption, known := osTypeID(osType)
			if !known {
				report("malop.machines.osType", osType)
			}
			ref.OS = &schemas.OS{Name: caption, TypeID: id, Type: caption}
			if !known {
				ref.OS.Name = osType
			}
		}
		ref.IsIsolated = optionalBool(machine, "isolated", "malop.machines", report)
		if sensorID, ok := s.machines.lookup(tenant, ref.UIDAlt); ok {
			ref.UID = sensorID
			ref.AssetUID = assetUID(tenant, sensorID)
		}
		devices = append(devices, ref)
	}
	return devices
}

// mapUsers lists the MalOp's users. type_id: 3 System for the local system account, 2 Admin for an
// administrator, 1 User when both flags are false, 0 Unknown without flags.
func mapUsers(malop vendorObject) []schemas.User {
	var users []schemas.User
	for _, object := range malop.objects("users") {
		user := schemas.User{UID: object.text("guid"), Name: object.text("displayName")}
		if user.UID == "" && user.Name == "" {
			continue
		}
		system, systemState := object.boolean("localSystem")
		admin, adminState := object.boolean("admin")
		_, domainState := object.boolean("domainUser")
		switch {
		case system:
			user.TypeID, user.Type = 3, "System"
		case admin:
			user.TypeID, user.Type = 2, "Admin"
		case systemState == fieldValid || adminState == fieldValid || domainState == fieldValid:
			user.TypeID, user.Type = 1, "User"
		default:
			user.TypeID, user.Type = 0, "Unknown"
		}
		users = append(users, user)
	}
	return users
}

// OCSF observable type ids used for MalOps.
const (
	observableHostname    = 1
	observableIP          = 2
	observableUserName    = 4
	observableFileName    = 7
	observableHash        = 8
	observableProcessName = 9
)

// isHexDigest reports whether s is an MD5, SHA-1 or SHA-256 digest in hex.
func isHexDigest(s string) bool {
	switch len(s) {
	case 32, 40, 64:
	default:
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// malopObservables lists host names, user names, the root cause name and the root cause hashes.
// Each observable's name is the path of its value in the finding record.
func malopObservables(malop vendorObject, finding schemas.Finding) []schemas.Observable {
	var out []schemas.Observable
	for i, device := range finding.Devices {
		if device.Name != "" {
			out = append(out, schemas.Observable{TypeID: observableHostname, Type: "Hostname", Name: fmt.Sprintf("devices[%d].name", i), Value: device.Name})
		}
	}
	for i, user := range finding.Users {
		if user.Name != "" {
			out = append(out, schemas.Observable{TypeID: observableUserName, Type: "User Name", Name: fmt.Sprintf("users[%d].name", i), Value: user.Name})
		}
	}

	if rootCause := malop.text("primaryRootCauseName"); rootCause != "" {
		observable := schemas.Observable{Name: "unmapped.cybereason.primaryRootCauseName", Value: rootCause}
		switch strings.ToLower(malop.text("rootCauseElementType")) {
		case "file", "module":
			observable.TypeID, observable.Type = observableFileName, "File Name"
		case "process":
			observable.TypeID, observable.Type = observableProcessName, "Process Name"
		case "domainname":
			observable.TypeID, observable.Type = observableHostname, "Hostname"
		case "ipaddress":
			if ip, ok := endpointIP(rootCause); ok {
				observable.TypeID, observable.Type, observable.Value = observableIP, "IP Address", ip
			}
		}
		if observable.TypeID != 0 {
			out = append(out, observable)
		}
	}

	for _, text := range malop.texts("rootCauseElementHashes") {
		for _, token := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
			if isHexDigest(token) {
				out = append(out, schemas.Observable{TypeID: observableHash, Type: "Hash", Name: "unmapped.cybereason.rootCauseElementHashes", Value: strings.ToLower(token)})
			}
		}
	}
	return out
}

// malopUnmapped keeps selected vendor fields under unmapped.cybereason. The machines' connected and
// lastConnected values are left out on purpose: they change without the MalOp changing.
func malopUnmapped(malop vendorObject) schemas.Unmapped {
	selected := make(map[string]any)
	malop.copyFields(selected,
		"rootCauseElementType", "primaryRootCauseName", "rootCauseElementNamesCount", "rootCauseElementHashes",
		"detectionEngines", "malopDetectionType", "malopType", "edr", "isEdr", "escalated", "decisionStatuses",
		"group", "closed", "closerName", "malopCloseTime", "containers",
		"status", "malopStatus", "severity", "malopSeverity", "priority", "malopPriority",
	)
	if len(selected) == 0 {
		return nil
	}
	return schemas.Unmapped{"cybereason": selected}
}
