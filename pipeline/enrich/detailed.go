package enrich

import (
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// maxLoggedDetailsErrors caps the details problems that are logged, so that a source sending
// broken details for every MalOp cannot flood the log. Stats.DetailsFailed counts past the cap.
const maxLoggedDetailsErrors = 100

// processMalop maps a message of MalopsTopic. Its ce_type names the shape of the value: an inbox
// MalOp (also when ce_type is absent), a v2 MalOp, or a detailed MalOp wrapper.
func (s *Stage) processMalop(msg kafka.Message) (kafka.Message, error) {
	eventType, _ := header(msg.Headers, sink.HeaderType)
	var (
		env     envelope
		finding schemas.Finding
		guid    string
		err     error
	)
	switch eventType {
	case "", RawMalopType, RawMalopV2Type:
		var malop vendorObject
		env, malop, guid, err = readRaw(msg, eventType, "guid")
		if err == nil {
			finding = s.mapMalop(malop, guid, env, s.reportUnknown)
		}
	case RawMalopDetailedType:
		var detailed detailedMalop
		detailed, err = s.readDetailedMalop(msg)
		if err == nil {
			return s.detailedRecord(detailed)
		}
	default:
		err = fmt.Errorf("unsupported %s %q, expected %q, %q or %q", sink.HeaderType, eventType, RawMalopType, RawMalopV2Type, RawMalopDetailedType)
	}
	if err != nil {
		return kafka.Message{}, fmt.Errorf("enrich MalOp: %w", err)
	}
	return s.malopRecord(finding, guid, env)
}

// malopRecord encodes and validates the finding of a MalOp.
func (s *Stage) malopRecord(finding schemas.Finding, guid string, env envelope) (kafka.Message, error) {
	out, err := s.recordMessage(schemas.KindFinding, s.cfg.FindingsTopic, findingType, finding.FindingUID, &finding, &finding.Metadata, env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("enrich MalOp %q: %w", guid, err)
	}
	s.malops.Add(1)
	return out, nil
}

// detailedMalop is a detailed MalOp read from its wrapper.
type detailedMalop struct {
	env      envelope
	guid     string
	endpoint string          // detailsEndpoint of the wrapper
	plain    schemas.Finding // the finding of the MalOp object alone
	detailed schemas.Finding // plain enriched with the details, when detailsErr is nil
	// detailsErr is the reason why the details cannot be used.
	detailsErr error
}

// detailedRecord publishes the finding enriched with the details. When the details could not be
// applied, or the enriched finding fails its schema, it publishes the finding of the MalOp object
// alone, and logs and counts the problem.
func (s *Stage) detailedRecord(malop detailedMalop) (kafka.Message, error) {
	if malop.detailsErr == nil {
		finding := malop.detailed
		out, err := s.recordMessage(schemas.KindFinding, s.cfg.FindingsTopic, findingType, finding.FindingUID, &finding, &finding.Metadata, malop.env)
		if err == nil {
			s.malops.Add(1)
			return out, nil
		}
		malop.detailsErr = err
	}
	s.reportDetailsProblem(malop.guid, malop.endpoint, malop.detailsErr)
	return s.malopRecord(malop.plain, malop.guid, malop.env)
}

// readDetailedMalop reads a RawMalopDetailedType value,
// {"malop": <inbox or v2 MalOp>, "malopType": <its ce_type>, "details": <object>, "detailsEndpoint": <path>},
// and maps it to a finding with and without the details. An error means the wrapper or its malop
// cannot be used. Details that are missing or cannot be used set detailsErr instead.
func (s *Stage) readDetailedMalop(msg kafka.Message) (detailedMalop, error) {
	env, err := parseEnvelope(msg.Headers, RawMalopDetailedType)
	if err != nil {
		return detailedMalop{}, err
	}
	wrapper, err := decodeVendorObject(msg.Value)
	if err != nil {
		return detailedMalop{}, err
	}
	object, ok := wrapper["malop"].(map[string]any)
	if !ok {
		return detailedMalop{}, fmt.Errorf("malop in the detailed MalOp is a JSON %s, expected an object", jsonTypeName(wrapper["malop"]))
	}
	malop := vendorObject(object)
	guid := malop.text("guid")
	if err := checkKey(msg.Key, "guid", guid); err != nil {
		return detailedMalop{}, err
	}
	switch malopType := wrapper.text("malopType"); malopType {
	case "", RawMalopType, RawMalopV2Type:
	default:
		return detailedMalop{}, fmt.Errorf("unsupported malopType %q in the detailed MalOp, expected %q or %q", malopType, RawMalopType, RawMalopV2Type)
	}

	result := detailedMalop{env: env, guid: guid, endpoint: wrapper.text("detailsEndpoint")}
	result.plain = s.mapMalop(malop, guid, env, s.reportUnknown)
	result.detailed = result.plain
	result.detailed.Devices = append([]schemas.DeviceRef(nil), result.plain.Devices...)
	result.detailed.Users = append([]schemas.User(nil), result.plain.Users...)
	result.detailed.Unmapped = copyUnmapped(result.plain.Unmapped)
	result.detailsErr = s.applyDetails(&result.detailed, malop, wrapper["details"], result.endpoint, env.tenant, s.reportUnknown)
	return result, nil
}

// checkKey checks that the id field of a value is set and equals the message key.
func checkKey(key []byte, idField, id string) error {
	if id == "" {
		return fmt.Errorf("missing %s in the value", idField)
	}
	if string(key) != id {
		return fmt.Errorf("message key %q does not match %s %q", key, idField, id)
	}
	return nil
}

// copyUnmapped copies the unmapped bag and its cybereason object, the only part that details
// change.
func copyUnmapped(unmapped schemas.Unmapped) schemas.Unmapped {
	out := make(schemas.Unmapped, len(unmapped)+1)
	for vendor, values := range unmapped {
		out[vendor] = values
	}
	fields := make(map[string]any)
	if vendorFields, ok := unmapped["cybereason"].(map[string]any); ok {
		for name, value := range vendorFields {
			fields[name] = value
		}
	}
	out["cybereason"] = fields
	return out
}

// reportDetailsProblem counts a detailed MalOp whose details could not be used and logs the first
// maxLoggedDetailsErrors of them.
func (s *Stage) reportDetailsProblem(guid, endpoint string, err error) {
	s.detailsFailed.Add(1)
	s.mu.Lock()
	log := s.loggedDetailsErrors < maxLoggedDetailsErrors
	if log {
		s.loggedDetailsErrors++
	}
	s.mu.Unlock()
	if log {
		s.logger.Warn("MalOp details not used, finding built from the MalOp alone",
			"guid", guid, "details_endpoint", endpoint, "error", truncate(err.Error(), 300))
	}
}

// errNoDetails is the details problem of a wrapper without a details object.
var errNoDetails = errors.New("details missing or null")
