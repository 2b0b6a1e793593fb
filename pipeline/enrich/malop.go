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

// mapMalop turns a MalOp object into a finding record: a MalopInboxModel from
// /rest/detection/inbox or a MalOp from /rest/mmng/v2/malops. The two shapes differ in field
// names and types: edr or isEdr, labels as strings or objects, root cause hashes as a string or a
// list, malopDetectionType or detectionType. The accessors read either, so one function maps both
// to the same record. Only the v2 shape has investigationStatus and MITRE lists.
// metadata.uid is left empty for the caller to fill.
//
// activity_id is 3 Close while the MalOp is resolved or deleted and 1 Create otherwise: enrich keeps
// no memory of which MalOps it has seen, so it cannot tell a first sight from an update. Consumers
// compare lastUpdateTime (finding_info.modified_time) to order updates.
func (s *Stage) mapMalop(malop vendorObject, guid string, env envelope, report unknownReporter) schemas.Finding {
	finding := schemas.Finding{
		SchemaVersion: schemas.Version,
		ClassUID:      schemas.FindingClassUID,
		CategoryUID:   schemas.FindingCategoryUID,
		Metadata:      s.metadata(env, ""),
		FindingUID:    findingUID(env.tenant, guid),
		FindingInfo:   mapFindingInfo(malop, guid, env.consoleBase),
		Devices:       s.mapMachines(malop, env.tenant, report),
		Users:         mapUsers(malop),
		Unmapped:      malopUnmapped(malop),
	}
	finding.Metadata.Profiles = []string{"incident"}
	finding.Time = findingTime(malop, env)
	status, statusDetail := malopStatus(malop, report)
	setStatus(&finding, status, statusDetail)

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

	if finding.ActivityID == schemas.FindingActivityClose {
		finding.EndTime, _ = malop.millis("malopCloseTime")
	}
	finding.Observables = malopObservables(malop, finding)
	return finding
}

// malopStatus returns the OCSF status of a MalOp of either shape and the vendor text behind it.
//
// The inbox shape has status (Active, Remediated, Closed, Excluded) and the closed flag. The v2
// shape has status and investigationStatus (Pending, UnderInvestigation, OnHold, Reopened,
// Closed), the analyst's triage state. While status is Active or absent, the investigation status
// decides the status id and becomes the status text. Otherwise status decides as for the inbox,
// and an investigation status of Closed counts as closed=true. The verdict always comes from
// status.
func malopStatus(malop vendorObject, report unknownReporter) (findingStatus, string) {
	rawStatus, _ := malop.firstText("status", "malopStatus")
	closedFlag := optionalBool(malop, "closed", "malop", report)
	closed := closedFlag != nil && *closedFlag

	investigation := malop.text("investigationStatus")
	triage := mapInvestigationStatus(investigation)
	if !triage.known {
		report("malop.investigationStatus", investigation)
	}

	open := mapMalopStatus(rawStatus, false)
	if !open.known {
		report("malop.status", rawStatus)
	}
	stillActive := open.id == statusNew || open.id == statusUnknown
	if stillActive && triage.id != statusUnknown {
		status := findingStatus{id: triage.id, verdict: open.verdict, known: true}
		if closed {
			status.id = statusResolved
		}
		return status, investigation
	}
	return mapMalopStatus(rawStatus, closed || triage.id == statusResolved), rawStatus
}

// mapInvestigationStatus maps the investigationStatus of a v2 MalOp. Reopened is New because the
// console reopens a MalOp on new activity that no analyst has triaged yet.
func mapInvestigationStatus(raw string) findingStatus {
	status := findingStatus{id: statusUnknown, verdict: verdictUnknown, known: true}
	switch strings.NewReplacer(" ", "", "_", "").Replace(strings.ToLower(raw)) {
	case "":
	case "pending", "reopened":
		status.id = statusNew
	case "underinvestigation", "onhold":
		status.id = statusInProgress
	case "closed":
		status.id = statusResolved
	default:
		status.known = false
	}
	return status
}

// setStatus writes a status and what follows from it: status_id, status, status_detail,
// verdict, activity_id, type_uid and is_alert. It clears end_time when the record is no Close.
func setStatus(finding *schemas.Finding, status findingStatus, detail string) {
	activity := schemas.FindingActivityCreate
	if status.id == statusResolved || status.id == statusDeleted {
		activity = schemas.FindingActivityClose
	}
	finding.ActivityID = activity
	finding.TypeUID = schemas.FindingClassUID*100 + activity
	finding.IsAlert = boolPointer(activity == schemas.FindingActivityCreate)
	finding.StatusID = status.id
	finding.Status = statusCaption(status.id)
	finding.StatusDetail = detail
	finding.VerdictID = status.verdict
	finding.Verdict = verdictCaption(status.verdict)
	if activity != schemas.FindingActivityClose {
		finding.EndTime = 0
	}
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
	info.Attacks = mitreAttacks(malop)

	analytic := &schemas.Analytic{TypeID: 99, Type: "Other"}
	analytic.Name, _ = malop.firstText("malopDetectionType", "malopType", "detectionType")
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

// mapMachines lists the MalOp's machines.
func (s *Stage) mapMachines(malop vendorObject, tenant string, report unknownReporter) []schemas.DeviceRef {
	var devices []schemas.DeviceRef
	for _, machine := range malop.objects("machines") {
		if ref, ok := s.machineRef(machine, tenant, "malop.machines", report); ok {
			devices = append(devices, ref)
		}
	}
	return devices
}

// machineRef maps one machine of a MalOp (inbox, v2 or EPP details). The v2 and details shapes
// add pylumId, which becomes the device's agent, and the details shape adds adDNSHostName. When
// the Stage has processed the sensor of the machine (same tenant, same machine guid, else same
// pylumId), the device also gets that sensor's uid and asset_uid. The machineIndex doc explains
// why this is best effort. ok is false for a machine without guid and name.
func (s *Stage) machineRef(machine vendorObject, tenant, objectKind string, report unknownReporter) (schemas.DeviceRef, bool) {
	ref := schemas.DeviceRef{
		UIDAlt:   machine.text("guid"),
		Name:     machine.text("displayName"),
		Hostname: machine.text("adDNSHostName"),
	}
	if ref.UIDAlt == "" && ref.Name == "" {
		return schemas.DeviceRef{}, false
	}
	if osType := machine.text("osType"); osType != "" {
		id, caption, known := osTypeID(osType)
		if !known {
			report(objectKind+".osType", osType)
		}
		ref.OS = &schemas.OS{Name: caption, TypeID: id, Type: caption}
		if !known {
			ref.OS.Name = osType
		}
	}
	ref.IsIsolated = optionalBool(machine, "isolated", objectKind, report)

	pylumID := machine.text("pylumId")
	if pylumID != "" {
		ref.AgentList = []schemas.Agent{{UID: pylumID, Name: agentName, TypeID: agentTypeEDR, Type: "Endpoint Detection and Response", VendorName: vendorName}}
	}
	s.linkDevice(&ref, tenant, pylumID)
	return ref, true
}

// linkDevice fills uid and asset_uid from the sensor of the device's machine guid, else of its
// pylumId, when the Stage has processed that sensor.
func (s *Stage) linkDevice(ref *schemas.DeviceRef, tenant, pylumID string) {
	sensorID, ok := s.machines.lookup(tenant, ref.UIDAlt)
	if !ok {
		sensorID, ok = s.pylumIDs.lookup(tenant, pylumID)
	}
	if ok {
		ref.UID = sensorID
		ref.AssetUID = assetUID(tenant, sensorID)
	}
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

// OCSF observable type ids used for MalOps and malware alerts.
const (
	observableHostname    = 1
	observableIP          = 2
	observableUserName    = 4
	observableURL         = 6
	observableFileName    = 7
	observableHash        = 8
	observableProcessName = 9
	observableFilePath    = 45
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

	// The v2 shape has no primaryRootCauseName. Its displayName names the root cause, as in the
	// inbox shape, where both fields hold the same text in every published sample.
	// NOTE: that displayName always names the root cause is inferred from samples, not documented.
	rootCause, path := malop.text("primaryRootCauseName"), "unmapped.cybereason.primaryRootCauseName"
	if rootCause == "" && malop.text("rootCauseElementType") != "" {
		rootCause, path = malop.text("displayName"), "finding_info.title"
	}
	if observable, ok := elementObservable(malop.text("rootCauseElementType"), rootCause, path); ok {
		out = append(out, observable)
	}
	out = append(out, hashObservables(malop.texts("rootCauseElementHashes"), "unmapped.cybereason.rootCauseElementHashes")...)
	return out
}

// elementObservable makes the observable for the name of a Cybereason element: 7 File Name for a
// File or Module, 9 Process Name for a Process, 1 Hostname for a DomainName, 2 IP Address for an
// IpAddress. ok is false for an empty name or another element type.
func elementObservable(elementType, name, path string) (schemas.Observable, bool) {
	if name == "" {
		return schemas.Observable{}, false
	}
	observable := schemas.Observable{Name: path, Value: name}
	switch strings.ToLower(elementType) {
	case "file", "module":
		observable.TypeID, observable.Type = observableFileName, "File Name"
	case "process":
		observable.TypeID, observable.Type = observableProcessName, "Process Name"
	case "domainname":
		observable.TypeID, observable.Type = observableHostname, "Hostname"
	case "ipaddress":
		if ip, ok := endpointIP(name); ok {
			observable.TypeID, observable.Type, observable.Value = observableIP, "IP Address", ip
		}
	}
	return observable, observable.TypeID != 0
}

// hashObservables makes an 8 Hash observable, in lower case, for every MD5, SHA-1 or SHA-256
// digest in texts. A text may hold several digests separated by commas, semicolons or spaces.
func hashObservables(texts []string, path string) []schemas.Observable {
	var out []schemas.Observable
	for _, text := range texts {
		for _, token := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
			if isHexDigest(token) {
				out = append(out, schemas.Observable{TypeID: observableHash, Type: "Hash", Name: path, Value: strings.ToLower(token)})
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
		"detectionEngines", "malopDetectionType", "malopType", "detectionType", "edr", "isEdr", "escalated",
		"decisionStatuses", "decisionFeatures", "group", "groups", "closed", "closerName", "malopCloseTime",
		"containers", "iocs", "status", "malopStatus", "investigationStatus",
		"severity", "malopSeverity", "priority", "malopPriority",
		"mitreTactics", "mitreTechniques", "mitreSubTechniques",
	)
	if len(selected) == 0 {
		return nil
	}
	return schemas.Unmapped{"cybereason": selected}
}
