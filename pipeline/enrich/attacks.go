package enrich

import (
	"strings"

	"github.com/oversoc/cybereason-connector/schemas"
)

// mitreAttacks reads mitreTactics, mitreTechniques and mitreSubTechniques, the lists of strings
// that v2 MalOps carry, into OCSF attack objects. Cybereason lists tactics and techniques
// separately, so each becomes its own attack item: pairing them would claim a link that the
// vendor did not make. A sub-technique id such as T1059.001 also names its technique, T1059, and
// counts as a sub-technique even in the technique list. Duplicates are dropped.
//
// NOTE: every published sample has empty MITRE lists, so the text form of an item is unknown.
// parseAttackElement accepts a bare id, a name, and an id with a name in the usual forms.
func mitreAttacks(object vendorObject) []schemas.Attack {
	var attacks []schemas.Attack
	seen := make(map[schemas.AttackElement]bool)
	add := func(kind string, element schemas.AttackElement) {
		if kind == "technique" && strings.Contains(element.UID, ".") {
			kind = "sub_technique"
		}
		key := schemas.AttackElement{UID: kind + element.UID, Name: element.Name}
		if seen[key] {
			return
		}
		seen[key] = true
		var attack schemas.Attack
		switch kind {
		case "tactic":
			attack.Tactic = &element
		case "technique":
			attack.Technique = &element
		default:
			attack.SubTechnique = &element
			if parent, _, found := strings.Cut(element.UID, "."); found {
				attack.Technique = &schemas.AttackElement{UID: parent}
			}
		}
		attacks = append(attacks, attack)
	}
	for _, list := range []struct{ field, kind string }{
		{"mitreTactics", "tactic"},
		{"mitreTechniques", "technique"},
		{"mitreSubTechniques", "sub_technique"},
	} {
		for _, text := range object.texts(list.field) {
			add(list.kind, parseAttackElement(text))
		}
	}
	return attacks
}

// parseAttackElement splits an ATT&CK item into its id and name. It accepts "T1059",
// "T1059 - Command and Scripting Interpreter", "T1059: Command and Scripting Interpreter",
// "Command and Scripting Interpreter (T1059)" and a bare name such as "Execution". text is not
// empty.
func parseAttackElement(text string) schemas.AttackElement {
	if isAttackID(text) {
		return schemas.AttackElement{UID: strings.ToUpper(text)}
	}
	if cut := strings.IndexAny(text, " :"); cut > 0 && isAttackID(text[:cut]) {
		name := strings.TrimSpace(strings.TrimLeft(text[cut:], " :-"))
		return schemas.AttackElement{UID: strings.ToUpper(text[:cut]), Name: name}
	}
	if strings.HasSuffix(text, ")") {
		if open := strings.LastIndexByte(text, '('); open > 0 {
			id := text[open+1 : len(text)-1]
			if name := strings.TrimSpace(text[:open]); isAttackID(id) && name != "" {
				return schemas.AttackElement{UID: strings.ToUpper(id), Name: name}
			}
		}
	}
	return schemas.AttackElement{Name: text}
}

// isAttackID reports whether s is an ATT&CK tactic id (TA and 4 digits), technique id (T and 4
// digits) or sub-technique id (a technique id, a dot and 3 digits), in any case.
func isAttackID(s string) bool {
	s = strings.ToUpper(s)
	switch {
	case strings.HasPrefix(s, "TA"):
		return len(s) == 6 && isDigits(s[2:])
	case strings.HasPrefix(s, "T"):
		technique, sub, found := strings.Cut(s[1:], ".")
		return len(technique) == 4 && isDigits(technique) && (!found || len(sub) == 3 && isDigits(sub))
	}
	return false
}
