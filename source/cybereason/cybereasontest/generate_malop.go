package cybereasontest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// malopDoc is a MalopInboxModel object of POST /rest/detection/inbox, with its members in the
// order the console sends them. Times are epoch milliseconds.
type malopDoc struct {
	Class                      string       `json:"@class"`
	GUID                       string       `json:"guid"`
	DisplayName                string       `json:"displayName"`
	RootCauseElementType       string       `json:"rootCauseElementType"`
	PrimaryRootCauseName       string       `json:"primaryRootCauseName"`
	RootCauseElementNamesCount int          `json:"rootCauseElementNamesCount"`
	DetectionEngines           []string     `json:"detectionEngines"`
	DetectionTypes             []string     `json:"detectionTypes"`
	MalopDetectionType         string       `json:"malopDetectionType"`
	CreationTime               int64        `json:"creationTime"`
	LastUpdateTime             int64        `json:"lastUpdateTime"`
	IconBase64                 string       `json:"iconBase64"`
	Priority                   *string      `json:"priority"`
	Group                      string       `json:"group"`
	RootCauseElementHashes     string       `json:"rootCauseElementHashes"`
	Status                     string       `json:"status"`
	Severity                   string       `json:"severity"`
	Machines                   []machineDoc `json:"machines"`
	Users                      []userDoc    `json:"users"`
	Containers                 []string     `json:"containers"`
	Labels                     []string     `json:"labels"`
	DecisionStatuses           []string     `json:"decisionStatuses"`
	MalopCloseTime             *int64       `json:"malopCloseTime"`
	CloserName                 *string      `json:"closerName"`
	MalopType                  string       `json:"malopType"`
	Escalated                  bool         `json:"escalated"`
	MalopPriority              string       `json:"malopPriority"`
	EDR                        bool         `json:"edr"`
	MalopStatus                string       `json:"malopStatus"`
	MalopSeverity              string       `json:"malopSeverity"`
	Closed                     bool         `json:"closed"`
	Empty                      bool         `json:"empty"`
}

// machineDoc is a MachineInboxModel: a machine affected by a MalOp.
type machineDoc struct {
	Class         string `json:"@class"`
	GUID          string `json:"guid"`
	DisplayName   string `json:"displayName"`
	OSType        string `json:"osType"`
	Connected     bool   `json:"connected"`
	Isolated      bool   `json:"isolated"`
	LastConnected int64  `json:"lastConnected"`
	Empty         bool   `json:"empty"`
}

// userDoc is a user affected by a MalOp.
type userDoc struct {
	GUID        string `json:"guid"`
	DisplayName string `json:"displayName"` // "<machine>\<user>"
	Admin       bool   `json:"admin"`
	LocalSystem bool   `json:"localSystem"`
	DomainUser  bool   `json:"domainUser"`
}

// detection is a kind of MalOp: its type, engines, human-readable description and root causes.
type detection struct {
	malopType   string
	engine      string
	description string
	elementType string
	rootCauses  []string
}

var (
	edrDetections = []detection{
		{"CNC", "EDR", "Connection to a known command and control server", "Process", []string{"svch0st.exe", "updater.exe", "rundll32.exe"}},
		{"MALICIOUS_PROCESS", "EDR", "Process behaves like known malware", "Process", []string{"powershell.exe", "mshta.exe", "wscript.exe"}},
		{"RANSOMWARE", "EDR", "Mass file encryption", "Process", []string{"locker.exe", "cryptsvc32.exe"}},
		{"CREDENTIAL_THEFT", "EDR", "Read access to the memory of lsass.exe", "Process", []string{"procdump64.exe", "taskmgr.exe"}},
		{"LATERAL_MOVEMENT", "EDR", "Remote service created on another machine", "Process", []string{"psexesvc.exe", "wmic.exe"}},
		{"PROCESS_INJECTION", "EDR", "Code injected into a trusted process", "Module", []string{"inject64.dll", "helper.dll"}},
		{"PERSISTENCE", "EDR", "New autorun entry for an unsigned binary", "File", []string{"onedrive_update.exe", "syshost.exe"}},
		{"CUSTOM_RULE", "EDR", "Custom detection rule matched", "Process", []string{"certutil.exe", "regsvr32.exe"}},
	}
	eppDetections = []detection{
		{"KNOWN_MALWARE", "AntiVirus", "Known malware found by the Anti-Malware engine", "File", []string{"invoice_0417.pdf.exe", "setup_crack.exe", "kprocdump.sys"}},
		{"BLACKLIST", "AntiVirus", "File hash on the blocklist", "File", []string{"toolbar_installer.exe", "payload.dll"}},
		{"PUP", "StaticAnalysis", "Potentially unwanted program", "File", []string{"free_vpn_setup.exe", "coupon_helper.exe"}},
		{"EXTENSION_MANIPULATION", "StaticAnalysis", "Executable disguised with a document extension", "File", []string{"report.docx.exe", "photo.jpg.scr"}},
		{"RANSOMWARE", "Ransomware", "Ransomware behaviour stopped", "Process", []string{"encryptor.exe", "wannadecrypt.exe"}},
	}
	malopLabels = []string{"Reviewed", "IT-Closed", "Escalated to IR", "Known test"}
	userNames   = []string{"administrator", "svc_backup", "jdoe", "asmith", "system"}
)

// malop returns a MalOp created and last updated at the given times, affecting 1 to 3 of the
// sensors that are not archived.
func (g *generator) malop(sensors []*sensorRecord, creation, lastUpdate int64) malopDoc {
	edr := g.chance(50)
	kind := pick(g, eppDetections)
	if edr {
		kind = pick(g, edrDetections)
	}
	rootCause := pick(g, kind.rootCauses)
	severity := pick(g, []string{"High", "Medium", "Low"})

	doc := malopDoc{
		Class:                      ".MalopInboxModel",
		GUID:                       g.malopGUID(),
		DisplayName:                rootCause,
		RootCauseElementType:       kind.elementType,
		PrimaryRootCauseName:       rootCause,
		RootCauseElementNamesCount: 1,
		DetectionEngines:           []string{kind.engine},
		DetectionTypes:             []string{kind.description},
		MalopDetectionType:         kind.malopType,
		CreationTime:               creation,
		LastUpdateTime:             lastUpdate,
		Severity:                   severity,
		Containers:                 []string{},
		Labels:                     []string{},
		DecisionStatuses:           []string{},
		MalopType:                  kind.malopType,
		Escalated:                  g.chance(10),
		EDR:                        edr,
		MalopSeverity:              severity,
		Empty:                      true,
	}
	if kind.elementType == "File" {
		doc.RootCauseElementHashes = g.hex(40)
	}
	if !edr {
		doc.DecisionStatuses = []string{pick(g, []string{"Detected", "Prevented", "Quarantined"})}
	}
	if g.chance(40) {
		doc.IconBase64 = g.icon()
	}
	if g.chance(30) {
		doc.Labels = append(doc.Labels, pick(g, malopLabels))
	}
	g.priority(&doc)
	g.malopState(&doc)
	g.affected(&doc, sensors)
	return doc
}

func (g *generator) malopGUID() string {
	for {
		guid := g.crGUID()
		if g.chance(50) {
			guid = fmt.Sprintf("11.%d", int64(g.random.Uint64()))
		}
		if !g.guids[guid] {
			g.guids[guid] = true
			return guid
		}
	}
}

// icon returns a base64 PNG-like picture of a few hundred bytes.
func (g *generator) icon() string {
	picture := []byte("\x89PNG\r\n\x1a\n")
	for range 200 + g.random.IntN(600) {
		picture = append(picture, byte(g.random.IntN(256)))
	}
	return base64.StdEncoding.EncodeToString(picture)
}

func (g *generator) priority(doc *malopDoc) {
	if g.chance(20) {
		return // null priority and an empty malopPriority, as consoles send for unprioritised MalOps
	}
	priority := strings.ToUpper(doc.Severity)
	doc.Priority = &priority
	doc.MalopPriority = priority
}

// malopState makes most MalOps active, some remediated and some closed.
func (g *generator) malopState(doc *malopDoc) {
	switch pickWeighted(g, []weighted[string]{{"Active", 70}, {"Remediated", 15}, {"Closed", 15}}) {
	case "Active":
		doc.Status = "Active"
	case "Remediated":
		doc.Status = "Remediated"
	default:
		closer := "soc.analyst@" + g.organization + ".example"
		closedAt := doc.LastUpdateTime
		doc.Status = "Closed"
		doc.Closed = true
		doc.CloserName = &closer
		doc.MalopCloseTime = &closedAt
	}
	doc.MalopStatus = doc.Status
}

// affected fills machines and users from sensors that are not archived.
func (g *generator) affected(doc *malopDoc, sensors []*sensorRecord) {
	doc.Machines = []machineDoc{}
	doc.Users = []userDoc{}

	var candidates []*sensorRecord
	for _, sensor := range sensors {
		if sensor.field("status") != "Archived" {
			candidates = append(candidates, sensor)
		}
	}
	count := min(len(candidates), pickWeighted(g, []weighted[int]{{1, 70}, {2, 20}, {3, 10}}))
	var chosen []*sensorRecord
	for len(chosen) < count {
		sensor := pick(g, candidates)
		if slices.Contains(chosen, sensor) {
			continue
		}
		chosen = append(chosen, sensor)
		doc.Machines = append(doc.Machines, g.machine(sensor, doc.LastUpdateTime))
	}
	if len(chosen) == 0 {
		return
	}

	if group := chosen[0].field("groupId"); group != unassignedGroup && g.chance(50) {
		doc.Group = group
	}
	for range g.random.IntN(3) {
		doc.Users = append(doc.Users, g.user(chosen[0].field("machineName")))
	}
}

const unassignedGroup = "00000000-0000-0000-0000-000000000000"

func (g *generator) machine(sensor *sensorRecord, lastUpdate int64) machineDoc {
	connected := sensor.field("status") == "Online"
	lastConnected := lastUpdate - g.between(0, dayMs)
	if connected {
		lastConnected = g.now - g.between(0, 5*minuteMs)
	}
	return machineDoc{
		Class:         ".MachineInboxModel",
		GUID:          sensor.field("guid"),
		DisplayName:   sensor.field("machineName"),
		OSType:        sensor.field("osType"),
		Connected:     connected,
		Isolated:      sensor.field("isolated") == "true",
		LastConnected: lastConnected,
		Empty:         true,
	}
}

func (g *generator) user(machineName string) userDoc {
	name := pick(g, userNames)
	return userDoc{
		GUID:        g.crGUID(),
		DisplayName: machineName + `\` + name,
		Admin:       name == "administrator",
		LocalSystem: name == "system",
		DomainUser:  name != "system" && name != "administrator" && g.chance(70),
	}
}
