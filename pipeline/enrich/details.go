package enrich

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oversoc/cybereason-connector/schemas"
)

// Endpoints that the details of a detailed MalOp come from, as named by its detailsEndpoint.
const (
	edrDetailsEndpoint = "/rest/crimes/unified"
	eppDetailsEndpoint = "/rest/detection/details"
)

// detailsPath is the location of a finding's details, which observables taken from them name.
const detailsPath = "unmapped.cybereason.details."

// applyDetails enriches the finding of a MalOp with its details: for EDR the MalOp element of a
// /rest/crimes/unified response, for Endpoint Protection the /rest/detection/details response.
// Affected machines and users join devices and users, root cause names, paths and hashes become
// observables, MITRE lists become attacks, and the selected details are kept under
// unmapped.cybereason.details. Without detailsEndpoint the shape of details decides. An error
// means the details cannot be used, and the finding may then be half changed.
func (s *Stage) applyDetails(finding *schemas.Finding, malop vendorObject, raw any, endpoint, tenant string, report unknownReporter) error {
	if raw == nil {
		return errNoDetails
	}
	object, ok := raw.(map[string]any)
	if !ok {
		return fmt.Errorf("details is a JSON %s, expected an object", jsonTypeName(raw))
	}
	details := vendorObject(object)
	if endpoint == "" {
		endpoint = eppDetailsEndpoint
		if _, ok := details["simpleValues"]; ok {
			endpoint = edrDetailsEndpoint
		}
	}

	unmappedDetails := map[string]any{"detailsEndpoint": endpoint}
	var extra []schemas.Observable
	var err error
	switch endpoint {
	case edrDetailsEndpoint:
		extra, err = s.applyEDRDetails(finding, details, unmappedDetails, tenant, report)
	case eppDetailsEndpoint:
		extra, err = s.applyEPPDetails(finding, details, unmappedDetails, tenant, report)
	default:
		err = fmt.Errorf("unsupported detailsEndpoint %q, expected %q or %q", endpoint, edrDetailsEndpoint, eppDetailsEndpoint)
	}
	if err != nil {
		return err
	}

	finding.Unmapped["cybereason"].(map[string]any)["details"] = unmappedDetails
	finding.Observables = uniqueObservables(append(malopObservables(malop, *finding), extra...))
	return nil
}

// applyEDRDetails applies the MalOp element of a /rest/crimes/unified response. Its simpleValues
// hold every scalar as a string inside {"values": [...]}, and its elementValues list the
// affected machines, affected users and primary root cause elements.
func (s *Stage) applyEDRDetails(finding *schemas.Finding, element vendorObject, unmappedDetails map[string]any, tenant string, report unknownReporter) ([]schemas.Observable, error) {
	simple, simpleOK := element["simpleValues"].(map[string]any)
	elements, elementsOK := element["elementValues"].(map[string]any)
	if !simpleOK && !elementsOK {
		return nil, errors.New("the EDR details have neither a simpleValues nor an elementValues object")
	}
	if id := element.text("guidString"); id != "" && id != finding.FindingInfo.UID {
		return nil, fmt.Errorf("the EDR details are for MalOp %q", id)
	}

	values := simpleValueTexts(simple)
	for _, name := range edrDetailFields() {
		if list := values[name]; len(list) > 0 {
			unmappedDetails[name] = list
		}
	}
	applyManagementStatus(finding, firstOf(values["managementStatus"]), report)
	if finding.ActivityID == schemas.FindingActivityClose && finding.EndTime == 0 {
		finding.EndTime, _ = vendorObject{"closeTime": firstOf(values["closeTime"])}.millis("closeTime")
	}

	for _, machine := range crimesElements(elements, "affectedMachines") {
		ref := schemas.DeviceRef{UIDAlt: machine.text("guid"), Name: machine.text("name")}
		if ref.UIDAlt != "" || ref.Name != "" {
			s.linkDevice(&ref, tenant, "")
			finding.Devices = mergeDevice(finding.Devices, ref)
		}
	}
	for _, user := range crimesElements(elements, "affectedUsers") {
		ref := schemas.User{UID: user.text("guid"), Name: user.text("name"), Type: "Unknown"}
		if ref.UID != "" || ref.Name != "" {
			finding.Users = mergeUser(finding.Users, ref)
		}
	}

	var observables []schemas.Observable
	var roots []map[string]any
	for _, root := range crimesElements(elements, "primaryRootCauseElements") {
		fields := make(map[string]any)
		root.copyFields(fields, "elementType", "guid", "name")
		if len(fields) > 0 {
			roots = append(roots, fields)
		}
		if observable, ok := elementObservable(root.text("elementType"), root.text("name"), detailsPath+"primaryRootCauseElements"); ok {
			observables = append(observables, observable)
		}
	}
	if len(roots) > 0 {
		unmappedDetails["primaryRootCauseElements"] = roots
	}

	names, types := values["rootCauseElementNames"], values["rootCauseElementTypes"]
	for i, name := range names {
		elementType := ""
		switch {
		case len(types) == len(names):
			elementType = types[i]
		case len(types) == 1:
			elementType = types[0]
		}
		if observable, ok := elementObservable(elementType, name, detailsPath+"rootCauseElementNames"); ok {
			observables = append(observables, observable)
		}
	}
	observables = append(observables, hashObservables(values["rootCauseElementHashes"], detailsPath+"rootCauseElementHashes")...)
	return observables, nil
}

// edrDetailFields lists the simpleValues of an EDR MalOp element kept under
// unmapped.cybereason.details. Comments and the icon are left out.
func edrDetailFields() []string {
	return []string{
		"managementStatus", "decisionFeature", "malopActivityTypes", "detectionType",
		"rootCauseElementNames", "rootCauseElementTypes", "rootCauseElementHashes", "rootCauseElementCompanyProduct",
		"malopStartTime", "closeTime", "closerName", "isBlocked", "customClassification",
		"hasRansomwareSuspendedProcesses", "allRansomwareProcessesSuspended",
	}
}

// simpleValueTexts reads the simpleValues of a crimes/unified element: each feature maps to
// {"totalValues": n, "values": [...]}. Values that are null, objects or empty are dropped.
func simpleValueTexts(simple map[string]any) map[string][]string {
	out := make(map[string][]string, len(simple))
	for name, feature := range simple {
		object, ok := feature.(map[string]any)
		if !ok {
			continue
		}
		if list := vendorObject(object).texts("values"); len(list) > 0 {
			out[name] = list
		}
	}
	return out
}

// crimesElements reads the elementValues feature name of a crimes/unified element:
// {"elementValues": [{"elementType", "guid", "name", ...}], ...}.
func crimesElements(elements map[string]any, name string) []vendorObject {
	feature, ok := elements[name].(map[string]any)
	if !ok {
		return nil
	}
	return vendorObject(feature).objects("elementValues")
}

func firstOf(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

// applyManagementStatus applies the managementStatus of an EDR MalOp, the analyst's triage state.
// It replaces the status only while the MalOp object leaves the MalOp open (New, In Progress or
// Unknown), because a Resolved, Suppressed or Deleted status from the MalOp object is final.
func applyManagementStatus(finding *schemas.Finding, raw string, report unknownReporter) {
	if raw == "" {
		return
	}
	status := mapManagementStatus(raw)
	if !status.known {
		report("malop.details.managementStatus", raw)
		return
	}
	switch finding.StatusID {
	case statusUnknown, statusNew, statusInProgress:
		setStatus(finding, status, raw)
	}
}

// mapManagementStatus maps the managementStatus of an EDR MalOp. The console shows UNREAD as
// Unread, TODO as To Review, OPEN as Open, CLOSED as Remediated and FP as Not Relevant. REOPEN is
// New, as a MalOp that the console reopened on new activity.
func mapManagementStatus(raw string) findingStatus {
	status := findingStatus{id: statusUnknown, verdict: verdictUnknown, known: true}
	switch strings.ToUpper(raw) {
	case "UNREAD", "TODO", "REOPEN":
		status.id = statusNew
	case "OPEN":
		status.id = statusInProgress
	case "CLOSED":
		status.id, status.verdict = statusResolved, verdictTruePositive
	case "FP":
		status.id, status.verdict = statusResolved, verdictFalsePositive
	default:
		status.known = false
	}
	return status
}

// applyEPPDetails applies a /rest/detection/details response (DetectionMalopDetailsModel): the
// inbox fields plus machines with pylumId and Active Directory names, file suspects with their
// decision status, file paths and the file hash.
func (s *Stage) applyEPPDetails(finding *schemas.Finding, details vendorObject, unmappedDetails map[string]any, tenant string, report unknownReporter) ([]schemas.Observable, error) {
	id := details.text("guid")
	if id == "" {
		return nil, errors.New("the Endpoint Protection details have no guid")
	}
	if id != finding.FindingInfo.UID {
		return nil, fmt.Errorf("the Endpoint Protection details are for MalOp %q", id)
	}

	for _, machine := range details.objects("machines") {
		if ref, ok := s.machineRef(machine, tenant, "malop.details.machines", report); ok {
			finding.Devices = mergeDevice(finding.Devices, ref)
		}
	}
	for _, user := range mapUsers(details) {
		finding.Users = mergeUser(finding.Users, user)
	}
	attacks := append([]schemas.Attack(nil), finding.FindingInfo.Attacks...)
	finding.FindingInfo.Attacks = uniqueAttacks(append(attacks, mitreAttacks(details)...))

	details.copyFields(unmappedDetails,
		"primaryRootCauseName", "rootCauseElementType", "rootCauseElementHashes", "decisionStatuses",
		"fileClassificationType", "filePaths", "fileHash", "signer", "detectionValues", "detectionValueTypes",
		"descriptions", "commandLines", "decodedCommandLines", "scriptDetectionTypes", "exploitDetectionTypes",
		"mitreTactics", "mitreTechniques", "mitreSubTechniques",
	)
	var suspects []map[string]any
	var decisions []string
	for _, suspect := range details.objects("fileSuspects") {
		fields := make(map[string]any)
		suspect.copyFields(fields, "elementDisplayName", "correctedPath", "sha1String", "detectionDecisionStatus", "ownerMachineName")
		if len(fields) > 0 {
			suspects = append(suspects, fields)
		}
		if decision := suspect.text("detectionDecisionStatus"); decision != "" && !containsText(decisions, decision) {
			decisions = append(decisions, decision)
		}
	}
	if len(suspects) > 0 {
		unmappedDetails["fileSuspects"] = suspects
	}
	if len(decisions) > 0 {
		unmappedDetails["detectionDecisionStatuses"] = decisions
	}
	return eppObservables(details), nil
}

// eppObservables lists the root cause, file paths, file hash and file suspects of EPP details.
func eppObservables(details vendorObject) []schemas.Observable {
	var out []schemas.Observable
	if observable, ok := elementObservable(details.text("rootCauseElementType"), details.text("primaryRootCauseName"), detailsPath+"primaryRootCauseName"); ok {
		out = append(out, observable)
	}
	out = append(out, hashObservables(details.texts("rootCauseElementHashes"), detailsPath+"rootCauseElementHashes")...)
	for _, path := range details.texts("filePaths") {
		out = append(out, schemas.Observable{TypeID: observableFilePath, Type: "File Path", Name: detailsPath + "filePaths", Value: path})
	}
	out = append(out, hashObservables(details.texts("fileHash"), detailsPath+"fileHash")...)
	for _, suspect := range details.objects("fileSuspects") {
		if name := suspect.text("elementDisplayName"); name != "" {
			out = append(out, schemas.Observable{TypeID: observableFileName, Type: "File Name", Name: detailsPath + "fileSuspects", Value: name})
		}
		if path := suspect.text("correctedPath"); path != "" {
			out = append(out, schemas.Observable{TypeID: observableFilePath, Type: "File Path", Name: detailsPath + "fileSuspects", Value: path})
		}
		out = append(out, hashObservables(suspect.texts("sha1String"), detailsPath+"fileSuspects")...)
	}
	return out
}

func containsText(list []string, s string) bool {
	for _, item := range list {
		if item == s {
			return true
		}
	}
	return false
}

// mergeDevice adds ref to devices, or fills the empty fields of the device that has the same
// machine guid, or the same name when either lacks a guid.
func mergeDevice(devices []schemas.DeviceRef, ref schemas.DeviceRef) []schemas.DeviceRef {
	for i := range devices {
		device := &devices[i]
		sameGUID := ref.UIDAlt != "" && device.UIDAlt == ref.UIDAlt
		sameName := (ref.UIDAlt == "" || device.UIDAlt == "") && ref.Name != "" && strings.EqualFold(device.Name, ref.Name)
		if !sameGUID && !sameName {
			continue
		}
		fillText(&device.UIDAlt, ref.UIDAlt)
		fillText(&device.Name, ref.Name)
		fillText(&device.Hostname, ref.Hostname)
		fillText(&device.UID, ref.UID)
		fillText(&device.AssetUID, ref.AssetUID)
		if device.OS == nil {
			device.OS = ref.OS
		}
		if device.IsIsolated == nil {
			device.IsIsolated = ref.IsIsolated
		}
		if len(device.AgentList) == 0 {
			device.AgentList = ref.AgentList
		}
		return devices
	}
	return append(devices, ref)
}

// mergeUser adds ref to users, or fills the empty fields of the user that has the same guid, or
// the same name when either lacks a guid.
func mergeUser(users []schemas.User, ref schemas.User) []schemas.User {
	for i := range users {
		user := &users[i]
		sameGUID := ref.UID != "" && user.UID == ref.UID
		sameName := (ref.UID == "" || user.UID == "") && ref.Name != "" && strings.EqualFold(user.Name, ref.Name)
		if !sameGUID && !sameName {
			continue
		}
		fillText(&user.UID, ref.UID)
		fillText(&user.Name, ref.Name)
		if user.TypeID == 0 && ref.TypeID != 0 {
			user.TypeID, user.Type = ref.TypeID, ref.Type
		}
		return users
	}
	return append(users, ref)
}

func fillText(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

// uniqueObservables drops an observable whose type and value an earlier one already has.
func uniqueObservables(observables []schemas.Observable) []schemas.Observable {
	type key struct {
		typeID int
		value  string
	}
	seen := make(map[key]bool, len(observables))
	out := observables[:0]
	for _, observable := range observables {
		k := key{observable.TypeID, observable.Value}
		if !seen[k] {
			seen[k] = true
			out = append(out, observable)
		}
	}
	return out
}

// uniqueAttacks drops an attack equal to an earlier one.
func uniqueAttacks(attacks []schemas.Attack) []schemas.Attack {
	seen := make(map[string]bool, len(attacks))
	out := attacks[:0]
	for _, attack := range attacks {
		k := attackKey(attack)
		if !seen[k] {
			seen[k] = true
			out = append(out, attack)
		}
	}
	return out
}

func attackKey(attack schemas.Attack) string {
	part := func(element *schemas.AttackElement) string {
		if element == nil {
			return "|"
		}
		return element.UID + "|" + element.Name
	}
	return part(attack.Tactic) + "/" + part(attack.Technique) + "/" + part(attack.SubTechnique)
}
