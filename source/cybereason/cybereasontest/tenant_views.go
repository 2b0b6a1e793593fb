package cybereasontest

import (
	"encoding/json"
	"fmt"
	"slices"
)

// This file converts MalOps between the two views that a console serves of one set of MalOps:
// the MalopInboxModel objects of POST /rest/detection/inbox and the MalOp objects of
// POST /rest/mmng/v2/malops. A loaded tenant stores both objects of every MalOp. Each object
// that a file contains is stored as loaded, and each missing one is converted from the other
// view.

// pairMalopViews gives every MalOp of a loaded tenant both views. A MalOp of MalopsFile keeps its
// inbox object and gets the v2 object with the same guid from v2, or else a conversion of its
// inbox object. A MalOp that only v2 contains is appended to the tenant's MalOps, with its
// loaded v2 object and a conversion to the inbox view. path names the v2 file in errors.
func (t *Tenant) pairMalopViews(path string, v2 []json.RawMessage) error {
	loaded := make(map[string]*malopRecord, len(v2))
	var order []*malopRecord
	for i, raw := range v2 {
		record, err := newMalopRecord(raw)
		if err != nil {
			return fmt.Errorf("%s: element %d: %w", path, i, err)
		}
		if loaded[record.guid] != nil {
			return fmt.Errorf("%s: element %d: duplicate guid %q", path, i, record.guid)
		}
		loaded[record.guid] = record
		order = append(order, record)
		t.feeds.labels.addFrom(record.raw)
	}

	inbox := make(map[string]bool, len(t.malops))
	sensors := t.sensorsByGUID()
	for _, record := range t.malops {
		inbox[record.guid] = true
		if record.v2 = loaded[record.guid]; record.v2 != nil {
			continue
		}
		converted, err := t.convertInboxToV2(record, sensors)
		if err != nil {
			return fmt.Errorf("%s: MalOp %s: convert to the v2 view: %w", MalopsFile, record.guid, err)
		}
		record.v2 = converted
	}

	for _, v2Record := range order {
		if inbox[v2Record.guid] {
			continue
		}
		record, err := convertV2ToInbox(v2Record)
		if err != nil {
			return fmt.Errorf("%s: MalOp %s: convert to the inbox view: %w", path, v2Record.guid, err)
		}
		record.v2 = v2Record
		t.malops = append(t.malops, record)
	}
	return nil
}

// convertInboxToV2 returns the v2 view of an inbox MalOp. Its times are those of the record,
// which also accepts times written as numeric strings. The caller holds t.mu or owns t.
func (t *Tenant) convertInboxToV2(record *malopRecord, sensors map[string]*sensorRecord) (*malopRecord, error) {
	var inbox struct {
		malopDoc
		// These hide the int64 times of malopDoc, because the record has already read them.
		CreationTime   json.RawMessage `json:"creationTime"`
		LastUpdateTime json.RawMessage `json:"lastUpdateTime"`
	}
	if err := json.Unmarshal(record.raw, &inbox); err != nil {
		return nil, err
	}
	inbox.malopDoc.CreationTime, inbox.malopDoc.LastUpdateTime = record.creation, record.lastUpdate

	raw, err := json.Marshal(malopV2FromInbox(inbox.malopDoc, sensors, t.feeds.labels.id))
	if err != nil {
		return nil, err
	}
	return newMalopRecord(raw)
}

// convertV2ToInbox returns a record whose object is the inbox view of a v2 MalOp.
func convertV2ToInbox(v2 *malopRecord) (*malopRecord, error) {
	var doc struct {
		malopV2Doc
		// These hide the int64 times of malopV2Doc, because the record has already read them.
		CreationTime   json.RawMessage `json:"creationTime"`
		LastUpdateTime json.RawMessage `json:"lastUpdateTime"`
	}
	if err := json.Unmarshal(v2.raw, &doc); err != nil {
		return nil, err
	}
	doc.malopV2Doc.CreationTime, doc.malopV2Doc.LastUpdateTime = v2.creation, v2.lastUpdate

	raw, err := json.Marshal(malopInboxFromV2(doc.malopV2Doc))
	if err != nil {
		return nil, err
	}
	return newMalopRecord(raw)
}

// malopV2FromInbox returns the management API view of an inbox MalOp. sensors maps machine guids
// to the sensors that still exist, for the pylumIds of the machines, and labelID returns the id
// of a label text. The view has no MITRE classification and every label has count 1, because the
// inbox object has neither.
func malopV2FromInbox(inbox malopDoc, sensors map[string]*sensorRecord, labelID func(string) int) malopV2Doc {
	doc := malopV2Doc{
		GUID:                   inbox.GUID,
		DisplayName:            inbox.DisplayName,
		CreationTime:           inbox.CreationTime,
		LastUpdateTime:         inbox.LastUpdateTime,
		MetadataUpdateTime:     inbox.LastUpdateTime,
		DecisionStatuses:       nonNil(inbox.DecisionStatuses),
		DetectionEngines:       nonNil(inbox.DetectionEngines),
		MitreTactics:           []string{},
		MitreTechniques:        []string{},
		MitreSubTechniques:     []string{},
		RootCauseElementHashes: []string{},
		IOCs:                   []string{},
		DetectionTypes:         nonNil(inbox.DetectionTypes),
		Labels:                 []labelDoc{},
		InvestigationStatus:    "Pending",
		CloserName:             inbox.CloserName,
		Priority:               inbox.Priority,
		Status:                 inbox.Status,
		Severity:               inbox.Severity,
		DetectionType:          inbox.MalopDetectionType,
		Escalated:              inbox.Escalated,
		IconBase64:             inbox.IconBase64,
		IsEDR:                  inbox.EDR,
		Groups:                 []string{},
		RootCauseElementType:   inbox.RootCauseElementType,
		Machines:               []machineV2Doc{},
		Users:                  nonNil(inbox.Users),
	}
	if doc.DetectionType == "" {
		doc.DetectionType = inbox.MalopType
	}
	if inbox.Closed {
		doc.InvestigationStatus = "Closed"
	}
	// NOTE: iocs lists the root cause element type here, as in the one published v2 sample.
	// What else consoles put there is not known.
	if inbox.RootCauseElementType != "" {
		doc.IOCs = []string{inbox.RootCauseElementType}
	}
	if inbox.RootCauseElementHashes != "" {
		doc.RootCauseElementHashes = []string{inbox.RootCauseElementHashes}
	}
	if inbox.Group != "" {
		doc.Groups = []string{inbox.Group}
	}
	for _, label := range inbox.Labels {
		doc.Labels = append(doc.Labels, labelDoc{ID: labelID(label), LabelText: label, Count: 1})
	}
	for _, machine := range inbox.Machines {
		var sensor *sensorRecord
		if machine.GUID != "" {
			sensor = sensors[machine.GUID]
		}
		doc.Machines = append(doc.Machines, machineV2FromInbox(machine, sensor))
	}
	return doc
}

// machineV2FromInbox returns the management API view of a machine. Its pylumId is that of
// sensor, or null when sensor is nil.
func machineV2FromInbox(machine machineDoc, sensor *sensorRecord) machineV2Doc {
	var pylumID *string
	if sensor != nil {
		pylumID = optional(sensor.field("pylumId"))
	}
	return machineV2Doc{
		GUID: machine.GUID, DisplayName: machine.DisplayName, Connected: machine.Connected,
		Isolated: machine.Isolated, OSType: machine.OSType, LastConnected: machine.LastConnected, PylumID: pylumID,
	}
}

// malopInboxFromV2 returns the inbox view of a management API MalOp.
func malopInboxFromV2(v2 malopV2Doc) malopDoc {
	closed := v2.InvestigationStatus == "Closed"
	doc := malopDoc{
		Class:                ".MalopInboxModel",
		GUID:                 v2.GUID,
		DisplayName:          v2.DisplayName,
		RootCauseElementType: v2.RootCauseElementType,
		PrimaryRootCauseName: v2.DisplayName,
		// NOTE: the v2 object has no count of root cause names, so each converted MalOp has one.
		RootCauseElementNamesCount: 1,
		DetectionEngines:           nonNil(v2.DetectionEngines),
		DetectionTypes:             nonNil(v2.DetectionTypes),
		MalopDetectionType:         v2.DetectionType,
		CreationTime:               v2.CreationTime,
		LastUpdateTime:             v2.LastUpdateTime,
		IconBase64:                 v2.IconBase64,
		Priority:                   v2.Priority,
		Group:                      firstOr(v2.Groups, ""),
		// NOTE: the inbox object holds one hash, so only the first of several v2 hashes is kept.
		RootCauseElementHashes: firstOr(v2.RootCauseElementHashes, ""),
		Status:                 v2.Status,
		Severity:               v2.Severity,
		Machines:               []machineDoc{},
		Users:                  nonNil(v2.Users),
		Containers:             []string{},
		Labels:                 []string{},
		DecisionStatuses:       nonNil(v2.DecisionStatuses),
		CloserName:             v2.CloserName,
		MalopType:              v2.DetectionType,
		Escalated:              v2.Escalated,
		EDR:                    v2.IsEDR,
		MalopStatus:            v2.Status,
		MalopSeverity:          v2.Severity,
		Closed:                 closed,
		Empty:                  true,
	}
	if v2.Priority != nil {
		doc.MalopPriority = *v2.Priority
	}
	// NOTE: the v2 object has no close time, so a closed MalOp is taken to have closed at its
	// lastUpdateTime.
	if closed {
		closeTime := v2.LastUpdateTime
		doc.MalopCloseTime = &closeTime
	}
	for _, label := range v2.Labels {
		doc.Labels = append(doc.Labels, label.LabelText)
	}
	for _, machine := range v2.Machines {
		doc.Machines = append(doc.Machines, machineDoc{
			Class: ".MachineInboxModel", GUID: machine.GUID, DisplayName: machine.DisplayName, OSType: machine.OSType,
			Connected: machine.Connected, Isolated: machine.Isolated, LastConnected: machine.LastConnected, Empty: true,
		})
	}
	return doc
}

// generatedLabelID returns the id of a label of a generated tenant: 100 plus the position of the
// text among the generated labels, or 100 for a text that is not one of them.
func generatedLabelID(text string) int {
	return 100 + max(slices.Index(malopLabels, text), 0)
}

// labelTable contains the MalOp label ids of a loaded tenant by label text. It starts with the
// ids of the loaded v2 objects, and gives each new text the next id above the highest one.
type labelTable struct {
	byText map[string]int
	maxID  int
}

// addFrom adds the labels of a v2 object, and ignores labels that are not {id, labelText}
// objects.
func (l *labelTable) addFrom(v2 json.RawMessage) {
	var doc struct {
		Labels []json.RawMessage `json:"labels"`
	}
	if json.Unmarshal(v2, &doc) != nil {
		return
	}
	for _, raw := range doc.Labels {
		var label labelDoc
		if json.Unmarshal(raw, &label) != nil || label.LabelText == "" {
			continue
		}
		if _, ok := l.byText[label.LabelText]; !ok {
			l.set(label.LabelText, label.ID)
		}
	}
}

// id returns the id of a label text, and gives a new text the next free id.
// NOTE: consoles assign label ids themselves. Numbering new texts above the highest loaded id
// (from 100 when none was loaded) is a guess that keeps ids unique.
func (l *labelTable) id(text string) int {
	if id, ok := l.byText[text]; ok {
		return id
	}
	id := max(l.maxID, 99) + 1
	l.set(text, id)
	return id
}

func (l *labelTable) set(text string, id int) {
	if l.byText == nil {
		l.byText = make(map[string]int)
	}
	l.byText[text] = id
	l.maxID = max(l.maxID, id)
}

// v2Change is what Advance changes in a MalOp, to apply to its stored v2 object.
type v2Change struct {
	updates []memberUpdate
	machine *machineV2Doc // appended to machines when the object has a machines array
}

// applyV2Change returns a record of the v2 object of old with change applied, keeping its other
// members and their order. A nil old returns nil, for tenants that derive v2 objects when served.
func applyV2Change(old *malopRecord, change v2Change) (*malopRecord, error) {
	if old == nil {
		return nil, nil
	}
	v2, err := parseObject(old.raw)
	if err != nil {
		return nil, err
	}
	if change.machine != nil {
		raw, ok := v2.get("machines")
		var machines []json.RawMessage
		if ok && json.Unmarshal(raw, &machines) == nil {
			machine, err := json.Marshal(change.machine)
			if err != nil {
				return nil, err
			}
			if err := v2.set("machines", append(machines, machine)); err != nil {
				return nil, err
			}
		}
	}
	if err := applyUpdates(v2, change.updates); err != nil {
		return nil, err
	}
	return newMalopRecord(v2.marshal())
}
