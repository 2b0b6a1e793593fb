package cybereasontest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
)

// This file draws the feeds that a generated tenant serves besides sensors and inbox MalOps: the
// MalOp management (v2) view and the details of each MalOp, malware alerts and policies.
//
// The v2 view and the details of a generated MalOp are derived from its inbox object whenever
// they are served, so they follow Advance. Their random parts are drawn from a source seeded by
// the MalOp guid, so they are the same at every request.

// malopV2Doc is a MalOp object of POST /rest/mmng/v2/malops, with its members in the order the
// console sends them.
type malopV2Doc struct {
	GUID                   string         `json:"guid"`
	DisplayName            string         `json:"displayName"`
	CreationTime           int64          `json:"creationTime"`
	LastUpdateTime         int64          `json:"lastUpdateTime"`
	MetadataUpdateTime     int64          `json:"metadataUpdateTime"`
	DecisionStatuses       []string       `json:"decisionStatuses"`
	DetectionEngines       []string       `json:"detectionEngines"`
	MitreTactics           []string       `json:"mitreTactics"`
	MitreTechniques        []string       `json:"mitreTechniques"`
	MitreSubTechniques     []string       `json:"mitreSubTechniques"`
	RootCauseElementHashes []string       `json:"rootCauseElementHashes"`
	IOCs                   []string       `json:"iocs"`
	DetectionTypes         []string       `json:"detectionTypes"`
	Labels                 []labelDoc     `json:"labels"`
	InvestigationStatus    string         `json:"investigationStatus"`
	CloserName             *string        `json:"closerName"`
	Priority               *string        `json:"priority"`
	Status                 string         `json:"status"`
	Severity               string         `json:"severity"`
	DetectionType          string         `json:"detectionType"`
	Escalated              bool           `json:"escalated"`
	IconBase64             string         `json:"iconBase64"`
	IsEDR                  bool           `json:"isEdr"`
	Groups                 []string       `json:"groups"`
	RootCauseElementType   string         `json:"rootCauseElementType"`
	Machines               []machineV2Doc `json:"machines"`
	Users                  []userDoc      `json:"users"`
}

// labelDoc is a MalOp label as the management API sends it.
type labelDoc struct {
	ID        int    `json:"id"`
	LabelText string `json:"labelText"`
	Count     int    `json:"count"`
	Empty     bool   `json:"empty"`
}

type machineV2Doc struct {
	GUID          string  `json:"guid"`
	DisplayName   string  `json:"displayName"`
	Connected     bool    `json:"connected"`
	Isolated      bool    `json:"isolated"`
	OSType        string  `json:"osType"`
	LastConnected int64   `json:"lastConnected"`
	PylumID       *string `json:"pylumId"`
}

// mitre is the MITRE ATT&CK classification of a kind of EDR MalOp.
// NOTE: no sample confirms how consoles spell these values. Tactics are written as names and
// techniques as ATT&CK ids here.
type mitre struct {
	tactics, techniques, subTechniques []string
}

var mitreByMalopType = map[string]mitre{
	"CNC":               {[]string{"CommandAndControl"}, []string{"T1071"}, []string{"T1071.001"}},
	"MALICIOUS_PROCESS": {[]string{"Execution"}, []string{"T1059"}, []string{"T1059.001"}},
	"RANSOMWARE":        {[]string{"Impact"}, []string{"T1486"}, []string{}},
	"CREDENTIAL_THEFT":  {[]string{"CredentialAccess"}, []string{"T1003"}, []string{"T1003.001"}},
	"LATERAL_MOVEMENT":  {[]string{"LateralMovement"}, []string{"T1021"}, []string{"T1021.002"}},
	"PROCESS_INJECTION": {[]string{"DefenseEvasion", "PrivilegeEscalation"}, []string{"T1055"}, []string{}},
	"PERSISTENCE":       {[]string{"Persistence"}, []string{"T1547"}, []string{"T1547.001"}},
}

var investigationStatuses = []string{"Pending", "UnderInvestigation", "OnHold", "Reopened"}

// malopGenerator returns a generator whose draws depend only on the MalOp guid.
func malopGenerator(guid string) *generator {
	hash := fnv.New64a()
	_, _ = hash.Write([]byte(guid)) // hash.Hash.Write never returns an error
	return &generator{random: newRandom(int64(hash.Sum64()), 3)}
}

// malopV2View returns the management API view of a generated inbox MalOp: the conversion of
// malopV2FromInbox, with an investigationStatus drawn for open MalOps, the MITRE classification
// of EDR MalOps and drawn label counts. sensors maps machine guids to the sensors that still
// exist, for the pylumIds of the machines.
func malopV2View(inbox malopDoc, sensors map[string]*sensorRecord) malopV2Doc {
	g := malopGenerator(inbox.GUID)
	doc := malopV2FromInbox(inbox, sensors, generatedLabelID)
	if status := pick(g, investigationStatuses); !inbox.Closed {
		doc.InvestigationStatus = status
	}
	if kind, ok := mitreByMalopType[inbox.MalopType]; ok && inbox.EDR {
		doc.MitreTactics, doc.MitreTechniques, doc.MitreSubTechniques = kind.tactics, kind.techniques, kind.subTechniques
	}
	for i := range doc.Labels {
		doc.Labels[i].Count = 1 + g.random.IntN(60)
	}
	return doc
}

func firstOr(values []string, fallback string) string {
	if len(values) == 0 {
		return fallback
	}
	return values[0]
}

func nonNil[T any](values []T) []T {
	if values == nil {
		return []T{}
	}
	return values
}

// crimesElementDoc is the element of one EDR MalOp in a POST /rest/crimes/unified response.
// Every value in simpleValues is a string, as consoles send them, and closeTime is [null] while
// the MalOp is open.
type crimesElementDoc struct {
	SimpleValues   map[string]simpleValuesDoc  `json:"simpleValues"`
	ElementValues  map[string]elementValuesDoc `json:"elementValues"`
	Suspicions     map[string]int64            `json:"suspicions"`
	FilterData     filterDataDoc               `json:"filterData"`
	IsMalicious    bool                        `json:"isMalicious"`
	SuspicionCount int                         `json:"suspicionCount"`
	GUIDString     string                      `json:"guidString"`
	LabelsIDs      []int                       `json:"labelsIds"`
	MalopPriority  *string                     `json:"malopPriority"`
	Suspect        bool                        `json:"suspect"`
	Malicious      bool                        `json:"malicious"`
}

type simpleValuesDoc struct {
	TotalValues int       `json:"totalValues"`
	Values      []*string `json:"values"`
}

type elementValuesDoc struct {
	TotalValues     int             `json:"totalValues"`
	ElementValues   []elementRefDoc `json:"elementValues"`
	TotalSuspicious int             `json:"totalSuspicious"`
	TotalMalicious  int             `json:"totalMalicious"`
	GuessedTotal    int             `json:"guessedTotal"`
}

type elementRefDoc struct {
	ElementType   string `json:"elementType"`
	GUID          string `json:"guid"`
	Name          string `json:"name"`
	HasSuspicions bool   `json:"hasSuspicions"`
	HasMalops     bool   `json:"hasMalops"`
}

type filterDataDoc struct {
	SortInGroupValue string `json:"sortInGroupValue"`
	GroupByValue     string `json:"groupByValue"`
}

// edrKind is the crimes/unified description of a kind of EDR MalOp.
type edrKind struct {
	requestedType   string // the element type that a crimes/unified query requests
	activityType    string
	decisionFeature string
}

var edrKinds = map[string]edrKind{
	"CNC":               {"MalopProcess", "CNC_COMMUNICATION", "Process.hasMaliciousConnection(Malop decision)"},
	"MALICIOUS_PROCESS": {"MalopProcess", "MALICIOUS_INFECTION", "Process.maliciousExecutionOfPowerShell(Malop decision)"},
	"RANSOMWARE":        {"MalopProcess", "RANSOMWARE", "Process.ransomwareBehavior(Malop decision)"},
	"CREDENTIAL_THEFT":  {"MalopProcess", "DATA_THEFT", "Process.lsassMemoryAccess(Malop decision)"},
	"LATERAL_MOVEMENT":  {"MalopLogonSession", "LATERAL_MOVEMENT", "LogonSession.remoteServiceCreation(Malop decision)"},
	"PROCESS_INJECTION": {"MalopProcess", "PRIVILEGE_ESCALATION", "Process.injectedCode(Malop decision)"},
	"PERSISTENCE":       {"MalopProcess", "PERSISTENCE", "Process.unsignedAutorun(Malop decision)"},
	"CUSTOM_RULE":       {"MalopProcess", "MALICIOUS_INFECTION", "Process.customRule(Malop decision)"},
}

var managementStatuses = []string{"UNREAD", "OPEN", "TODO"}

// crimesElement returns the crimes/unified element of a generated EDR MalOp and the element type
// that a query must request to find it.
func crimesElement(inbox malopDoc) (string, crimesElementDoc) {
	g := malopGenerator(inbox.GUID)
	kind, ok := edrKinds[inbox.MalopType]
	if !ok {
		kind = edrKind{"MalopProcess", "MALICIOUS_INFECTION", "Process.maliciousProcess(Malop decision)"}
	}
	status := pick(g, managementStatuses)
	var closeTime *string
	if inbox.Closed {
		status = "CLOSED"
		if inbox.MalopCloseTime != nil {
			closeTime = optional(fmt.Sprint(*inbox.MalopCloseTime))
		}
	}

	simple := map[string]simpleValuesDoc{
		"creationTime":                    textValues(fmt.Sprint(inbox.CreationTime)),
		"malopStartTime":                  textValues(fmt.Sprint(inbox.CreationTime - g.between(0, hourMs))),
		"malopLastUpdateTime":             textValues(fmt.Sprint(inbox.LastUpdateTime)),
		"closeTime":                       {TotalValues: 1, Values: []*string{closeTime}},
		"managementStatus":                textValues(status),
		"detectionType":                   textValues(inbox.MalopType),
		"malopActivityTypes":              textValues(kind.activityType),
		"elementDisplayName":              textValues(kind.activityType),
		"decisionFeature":                 textValues(kind.decisionFeature),
		"rootCauseElementTypes":           textValues(inbox.RootCauseElementType),
		"rootCauseElementNames":           textValues(inbox.PrimaryRootCauseName),
		"isBlocked":                       textValues(fmt.Sprint(g.chance(30))),
		"hasRansomwareSuspendedProcesses": textValues(fmt.Sprint(inbox.MalopType == "RANSOMWARE")),
		"allRansomwareProcessesSuspended": textValues("false"),
		"customClassification":            textValues("None"),
	}
	if inbox.CloserName != nil {
		simple["closerName"] = textValues(*inbox.CloserName)
	}
	if inbox.RootCauseElementHashes != "" {
		simple["rootCauseElementHashes"] = textValues(inbox.RootCauseElementHashes)
	}
	if inbox.IconBase64 != "" {
		simple["iconBase64"] = textValues(inbox.IconBase64)
	}

	rootCause := elementRefDoc{ElementType: inbox.RootCauseElementType, GUID: g.crGUID(), Name: inbox.PrimaryRootCauseName, HasSuspicions: true}
	var machines, users []elementRefDoc
	for _, machine := range inbox.Machines {
		machines = append(machines, elementRefDoc{ElementType: "Machine", GUID: machine.GUID, Name: machine.DisplayName})
	}
	for _, user := range inbox.Users {
		users = append(users, elementRefDoc{ElementType: "User", GUID: user.GUID, Name: user.DisplayName})
	}

	return kind.requestedType, crimesElementDoc{
		SimpleValues: simple,
		ElementValues: map[string]elementValuesDoc{
			"primaryRootCauseElements": elementValues([]elementRefDoc{rootCause}),
			"affectedMachines":         elementValues(machines),
			"affectedUsers":            elementValues(users),
		},
		FilterData:    filterDataDoc{SortInGroupValue: inbox.GUID, GroupByValue: kind.requestedType + "Runtime:" + inbox.GUID + " "},
		GUIDString:    inbox.GUID,
		LabelsIDs:     []int{},
		MalopPriority: inbox.Priority,
	}
}

func textValues(values ...string) simpleValuesDoc {
	doc := simpleValuesDoc{TotalValues: len(values)}
	for _, value := range values {
		doc.Values = append(doc.Values, &value)
	}
	return doc
}

func elementValues(refs []elementRefDoc) elementValuesDoc {
	doc := elementValuesDoc{TotalValues: len(refs), ElementValues: nonNil(refs)}
	for _, ref := range refs {
		if ref.HasSuspicions {
			doc.TotalSuspicious++
		}
	}
	return doc
}

// detectionDetails returns the POST /rest/detection/details response of a generated EPP MalOp:
// its inbox object, with machines as MachineDetailsModel objects, followed by the detail members.
func detectionDetails(raw json.RawMessage, inbox malopDoc, sensors map[string]*sensorRecord) (json.RawMessage, error) {
	g := malopGenerator(inbox.GUID)
	details, err := parseObject(raw)
	if err != nil {
		return nil, err
	}

	var machines []machineDetailsDoc
	for _, machine := range inbox.Machines {
		doc := machineDetailsDoc{
			Class: ".MachineDetailsModel", GUID: machine.GUID, DisplayName: machine.DisplayName, OSType: machine.OSType,
			Connected: machine.Connected, Isolated: machine.Isolated, LastConnected: machine.LastConnected,
			ADDisplayName: strings.ToUpper(machine.DisplayName), Empty: true,
		}
		if sensor, ok := sensors[machine.GUID]; ok {
			doc.PylumID = optional(sensor.field("pylumId"))
			doc.ADDNSHostName = optional(sensor.field("fqdn"))
		}
		machines = append(machines, doc)
	}

	decision := "Detected"
	if len(inbox.DecisionStatuses) > 0 {
		decision = inbox.DecisionStatuses[0]
	}
	hash := inbox.RootCauseElementHashes
	if hash == "" {
		hash = g.hex(40)
	}
	path := `c:\users\public\downloads\` + inbox.PrimaryRootCauseName
	firstSeen := inbox.CreationTime - g.between(0, dayMs)
	fileGUID := g.crGUID()
	ownerName, ownerGUID := "", ""
	if len(inbox.Machines) > 0 {
		ownerName, ownerGUID = inbox.Machines[0].DisplayName, inbox.Machines[0].GUID
	}
	detectionName := fmt.Sprintf("Gen:Variant.%s.%d", strings.ToUpper(g.letters("abcdefghijklmnopqrstuvwxyz", 1))+g.letters("abcdefghijklmnopqrstuvwxyz", 6), g.random.IntN(100000))

	members := []memberUpdate{
		{name: "@class", value: ".DetectionMalopDetailsModel"},
		{name: "machines", value: nonNil(machines)},
		{name: "signer", value: nil},
		{name: "fileClassificationType", value: "av_detected"},
		{name: "filePaths", value: []string{path}},
		{name: "commandLines", value: []string{}},
		{name: "decodedCommandLines", value: []string{}},
		{name: "detectionValues", value: []string{detectionName}},
		{name: "detectionValueTypes", value: []string{"DVT_FILE"}},
		{name: "fileHash", value: hash},
		{name: "scriptDetectionTypes", value: []string{}},
		{name: "exploitDetectionTypes", value: []string{}},
		{name: "descriptions", value: []string{fmt.Sprintf("%s with file name %s was detected", firstOr(inbox.DetectionTypes, "Malware"), inbox.PrimaryRootCauseName)}},
		{name: "hasAnyScanEvent", value: g.chance(30)},
		{name: "activeProcessesCount", value: 0},
		{name: "totalProcessesCount", value: 0},
		{name: "fileSuspects", value: []fileSuspectDoc{{
			Class: ".FileSuspectDetailsModel", FirstSeen: firstSeen, LastSeen: inbox.LastUpdateTime, Counter: 1 + g.random.IntN(3),
			WasEverDetectedByAccess: true, DetectionDecisionStatus: decisionStatus(decision), GUID: fileGUID,
			OwnerMachineName: ownerName, OwnerMachineGUID: ownerGUID, SHA1String: hash, CorrectedPath: path,
			ElementDisplayName: inbox.PrimaryRootCauseName,
		}}},
		{name: "processSuspects", value: nil},
		{name: "processes", value: nil},
		{name: "files", value: []fileDetailsDoc{{
			Class: ".FileDetailsModel", LastDetectionDecisionStatus: decisionStatus(decision), GUID: fileGUID,
			OwnerMachineName: ownerName, OwnerMachineGUID: ownerGUID, SHA1String: hash, CorrectedPath: path,
			ElementDisplayName: inbox.PrimaryRootCauseName, Quarantined: decision == "Quarantined",
		}}},
		{name: "connections", value: nil},
		{name: "timelineEvents", value: []timelineEventDoc{{
			Class: ".MalopStartTimelineEventModel", Timestamp: firstSeen, Type: "malopStart",
			Data: map[string][]string{"detectionTypes": inbox.DetectionTypes, "detectionEngines": inbox.DetectionEngines},
		}}},
		{name: "payloads", value: []string{}},
	}
	if err := applyUpdates(details, members); err != nil {
		return nil, err
	}
	return details.marshal(), nil
}

// decisionStatus returns the detectionDecisionStatus of a file for a MalOp decision status.
func decisionStatus(decision string) string {
	switch decision {
	case "Prevented":
		return "DDS_PREVENTED"
	case "Quarantined":
		return "DDS_QUARANTINED"
	default:
		return "DDS_DETECTED"
	}
}

type machineDetailsDoc struct {
	Class          string  `json:"@class"`
	GUID           string  `json:"guid"`
	DisplayName    string  `json:"displayName"`
	OSType         string  `json:"osType"`
	Connected      bool    `json:"connected"`
	Isolated       bool    `json:"isolated"`
	LastConnected  int64   `json:"lastConnected"`
	ADOU           *string `json:"adOU"`
	ADOrganization *string `json:"adOrganization"`
	ADDisplayName  string  `json:"adDisplayName"`
	ADDNSHostName  *string `json:"adDNSHostName"`
	ADDepartment   *string `json:"adDepartment"`
	ADCompany      *string `json:"adCompany"`
	ADLocation     *string `json:"adLocation"`
	ADMachineRole  *string `json:"adMachineRole"`
	PylumID        *string `json:"pylumId"`
	Empty          bool    `json:"empty"`
}

type fileSuspectDoc struct {
	Class                   string  `json:"@class"`
	FirstSeen               int64   `json:"firstSeen"`
	LastSeen                int64   `json:"lastSeen"`
	Counter                 int     `json:"counter"`
	WasEverDetectedInScan   bool    `json:"wasEverDetectedInScan"`
	WasEverDetectedByAccess bool    `json:"wasEverDetectedByAccess"`
	DetectionDecisionStatus string  `json:"detectionDecisionStatus"`
	GUID                    string  `json:"guid"`
	OwnerMachineName        string  `json:"ownerMachineName"`
	OwnerMachineGUID        string  `json:"ownerMachineGuid"`
	SHA1String              string  `json:"sha1String"`
	BehaviourIDString       *string `json:"behaviourIdString"`
	CorrectedPath           string  `json:"correctedPath"`
	ModifiedTime            *int64  `json:"modifiedTime"`
	ElementDisplayName      string  `json:"elementDisplayName"`
}

type fileDetailsDoc struct {
	Class                       string  `json:"@class"`
	LastDetectionDecisionStatus string  `json:"lastDetectionDecisionStatus"`
	GUID                        string  `json:"guid"`
	OwnerMachineName            string  `json:"ownerMachineName"`
	OwnerMachineGUID            string  `json:"ownerMachineGuid"`
	SHA1String                  string  `json:"sha1String"`
	CorrectedPath               string  `json:"correctedPath"`
	ModifiedTime                *int64  `json:"modifiedTime"`
	ElementDisplayName          string  `json:"elementDisplayName"`
	BehaviourIDString           *string `json:"behaviourIdString"`
	Quarantined                 bool    `json:"quarantined"`
}

type timelineEventDoc struct {
	Class     string              `json:"@class"`
	Timestamp int64               `json:"timestamp"`
	Data      map[string][]string `json:"data"`
	Type      string              `json:"type"`
}
