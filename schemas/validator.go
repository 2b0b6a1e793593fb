package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/oversoc/cybereason-connector/internal/jsonvalue"
	"github.com/oversoc/cybereason-connector/schemas/internal/fastschema"
)

// maxViolations caps the violations that a ValidationError message lists, so that one broken record
// cannot produce a log line of unbounded length.
const maxViolations = 8

// Validator checks records against the embedded schemas of Version. It is safe for concurrent use.
//
// Each record is checked first by a validator compiled from the schemas (schemas/internal/fastschema),
// which only decides valid or invalid: on the JSON text, then, when the text alone does not show
// the record valid, on the decoded record. A record it rejects is validated again by
// santhosh-tekuri/jsonschema, the reference, which words the violations.
type Validator struct {
	version string
	schemas map[Kind]*jsonschema.Schema
	fast    map[Kind]*fastschema.Schema
	printer *message.Printer // formats the reasons of jsonschema errors
}

// NewValidator compiles the embedded schemas of Version. It registers every embedded file under its
// $id and never loads anything else, so no network or file system access happens. Format assertions
// (ipv4, uri, ...) are on.
func NewValidator() (*Validator, error) {
	return newValidator(Version)
}

func newValidator(version string) (*Validator, error) {
	resources, err := embeddedResources()
	if err != nil {
		return nil, err
	}
	compiler, err := newCompiler(resources)
	if err != nil {
		return nil, err
	}
	formats, err := libraryFormats()
	if err != nil {
		return nil, err
	}

	v := &Validator{
		version: version,
		schemas: make(map[Kind]*jsonschema.Schema),
		fast:    make(map[Kind]*fastschema.Schema),
		printer: message.NewPrinter(language.English),
	}
	for _, kind := range kinds() {
		if _, err := fs.Stat(schemaFiles, schemaPath(version, string(kind))); err != nil && version != Version {
			continue // the kind is newer than this version
		}
		id := schemaID(version, string(kind))
		sch, err := compiler.Compile(id)
		if err != nil {
			return nil, fmt.Errorf("compile %s schema %s: %w", kind, id, err)
		}
		fast, err := fastschema.Compile(resources, id, fastschema.Options{Formats: formats})
		if err != nil {
			return nil, fmt.Errorf("compile %s schema %s for fast validation: %w", kind, id, err)
		}
		v.schemas[kind] = sch
		v.fast[kind] = fast
	}
	return v, nil
}

// newCompilerWithOptions returns a draft 2020-12 compiler with format assertions on that loads
// nothing by itself.
func newCompilerWithOptions() *jsonschema.Compiler {
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.AssertFormat()
	compiler.UseLoader(embeddedOnlyLoader{})
	return compiler
}

// newCompiler returns a compiler of newCompilerWithOptions with every embedded schema file
// registered by its $id.
func newCompiler(resources map[string]any) (*jsonschema.Compiler, error) {
	compiler := newCompilerWithOptions()
	for id, doc := range resources {
		if err := compiler.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("register embedded schema %s: %w", id, err)
		}
	}
	return compiler, nil
}

// embeddedResources decodes every embedded schema file, keyed by its $id, which must be idBase +
// path so that a schema's id always names the folder of its version.
func embeddedResources() (map[string]any, error) {
	paths, err := fs.Glob(schemaFiles, "oversoc/*/*.schema.json")
	if err != nil {
		return nil, fmt.Errorf("list embedded schemas: %w", err)
	}
	if len(paths) == 0 {
		return nil, errors.New("list embedded schemas: no oversoc/*/*.schema.json file is embedded")
	}
	resources := make(map[string]any, len(paths))
	for _, path := range paths {
		data, err := schemaFiles.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read embedded schema %s: %w", path, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parse embedded schema %s: %w", path, err)
		}
		object, _ := doc.(map[string]any)
		id, _ := object["$id"].(string)
		if want := idBase + path; id != want {
			return nil, fmt.Errorf("embedded schema %s: $id is %q, expected %q", path, id, want)
		}
		resources[id] = doc
	}
	return resources, nil
}

// libraryFormatNames lists the formats that jsonschema v6 asserts. The fast validator takes their
// checks from the library, so that both accept the same values.
var libraryFormatNames = []string{
	"date", "date-time", "duration", "email", "hostname", "iri", "iri-reference", "ipv4", "ipv6",
	"json-pointer", "period", "regex", "relative-json-pointer", "semver", "time", "uri",
	"uri-reference", "uri-template", "uuid",
}

// libraryFormats returns the check of every format in libraryFormatNames as the compiler of
// newCompilerWithOptions applies it, taken from a one-keyword schema per format.
func libraryFormats() (map[string]func(any) error, error) {
	const id = "urn:oversoc:formats"
	defs := make(map[string]any, len(libraryFormatNames))
	for _, name := range libraryFormatNames {
		defs[name] = map[string]any{"format": name}
	}
	compiler := newCompilerWithOptions()
	if err := compiler.AddResource(id, map[string]any{"$defs": defs}); err != nil {
		return nil, fmt.Errorf("register format schemas: %w", err)
	}

	formats := make(map[string]func(any) error, len(libraryFormatNames))
	for _, name := range libraryFormatNames {
		sch, err := compiler.Compile(id + "#/$defs/" + name)
		if err != nil {
			return nil, fmt.Errorf("compile format %s: %w", name, err)
		}
		if sch.Format == nil {
			return nil, fmt.Errorf("compile format %s: the schema library does not assert it", name)
		}
		formats[name] = sch.Format.Validate
	}
	return formats, nil
}

// embeddedOnlyLoader rejects every URL. The compiler consults it only for a $ref to a document
// that is not embedded, which is a mistake in the schema files.
type embeddedOnlyLoader struct{}

func (embeddedOnlyLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schema %s is not embedded, and loading from elsewhere is disabled", url)
}

// Validate checks one JSON record of the given kind. A record that breaks the schema returns a
// *ValidationError; a value that is not JSON or an unknown kind returns another error.
func (v *Validator) Validate(kind Kind, value []byte) error {
	sch, ok := v.schemas[kind]
	if !ok {
		return fmt.Errorf("validate: unknown record kind %q", kind)
	}
	if v.fast[kind].ValidJSON(value) {
		return nil
	}

	doc, err := decodeJSON(value)
	if err != nil {
		return fmt.Errorf("validate %s record: invalid JSON: %w", kind, err)
	}
	if v.fast[kind].Valid(doc) {
		return nil
	}

	// The fast validator found the record invalid. The library validates it again to word the
	// violations, and it remains the reference: a record that it accepts is valid.
	err = validateWithLibrary(sch, doc)
	if err == nil {
		return nil
	}
	var schemaErr *jsonschema.ValidationError
	if !errors.As(err, &schemaErr) {
		return fmt.Errorf("validate %s record: %w", kind, err)
	}
	return &ValidationError{Kind: kind, SchemaID: schemaID(v.version, string(kind)), Violations: violations(schemaErr, v.printer)}
}

// validateWithLibrary validates doc with the jsonschema library and turns a panic of the library
// into an error: v6.0.3 panics when uniqueItems compares more than 20 elements and one is a number
// that big.Rat cannot parse, such as 1e9999999.
func validateWithLibrary(sch *jsonschema.Schema, doc any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the schema library failed on the record: %v", r)
		}
	}()
	return sch.Validate(doc)
}

// decodeJSON decodes a record for validation with jsonvalue.Parse, or with jsonschema's own decoder
// when that fails, so that an invalid document gets that decoder's error.
func decodeJSON(value []byte) (any, error) {
	if doc, err := jsonvalue.Parse(value); err == nil {
		return doc, nil
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(value))
}

// ValidationError reports a record that does not match its schema.
type ValidationError struct {
	Kind       Kind
	SchemaID   string
	Violations []Violation // sorted by Pointer, duplicates removed
}

// Violation is one failed check: the JSON pointer of the value inside the record ("" for the root)
// and the reason.
type Violation struct {
	Pointer string
	Reason  string
}

// Error returns one line listing at most maxViolations violations, e.g.
// `invalid asset record: /device: missing property 'uid'; /time: minimum: got 0, want 1`.
func (e *ValidationError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "invalid %s record:", e.Kind)
	for i, violation := range e.Violations {
		if i == maxViolations {
			fmt.Fprintf(&sb, " (and %d more)", len(e.Violations)-maxViolations)
			break
		}
		if i > 0 {
			sb.WriteByte(';')
		}
		pointer := violation.Pointer
		if pointer == "" {
			pointer = "/"
		}
		fmt.Fprintf(&sb, " %s: %s", pointer, violation.Reason)
	}
	return sb.String()
}

// violations flattens the error tree of jsonschema into the checks that failed, because the inner
// nodes only report that a $ref or a subschema failed. The failed branches of an anyOf or oneOf that all
// concern one value become one violation whose reasons are joined with "or".
func violations(root *jsonschema.ValidationError, printer *message.Printer) []Violation {
	var out []Violation
	seen := make(map[Violation]bool)
	add := func(violation Violation) {
		if !seen[violation] {
			seen[violation] = true
			out = append(out, violation)
		}
	}

	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			add(Violation{Pointer: jsonPointer(e.InstanceLocation), Reason: reason(e, printer)})
			return
		}
		if isAlternative(e) {
			if violation, ok := joinAlternatives(e, printer); ok {
				add(violation)
				return
			}
		}
		for _, cause := range e.Causes {
			walk(cause)
		}
	}
	walk(root)

	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}

func isAlternative(e *jsonschema.ValidationError) bool {
	switch e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
		return true
	}
	return false
}

// joinAlternatives returns one violation for the failed branches of an anyOf or oneOf when every
// failed check in them is about the same value.
func joinAlternatives(e *jsonschema.ValidationError, printer *message.Printer) (Violation, bool) {
	var leaves []*jsonschema.ValidationError
	var collect func(e *jsonschema.ValidationError)
	collect = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, cause := range e.Causes {
			collect(cause)
		}
	}
	collect(e)
	if len(leaves) == 0 {
		return Violation{}, false
	}

	pointer := jsonPointer(leaves[0].InstanceLocation)
	reasons := make([]string, 0, len(leaves))
	for _, leaf := range leaves {
		if jsonPointer(leaf.InstanceLocation) != pointer {
			return Violation{}, false
		}
		reasons = append(reasons, reason(leaf, printer))
	}
	return Violation{Pointer: pointer, Reason: strings.Join(reasons, " or ")}, true
}

// reason describes one failed check. jsonschema reports a property that unevaluatedProperties
// rejects as "false schema", which is reworded here.
func reason(e *jsonschema.ValidationError, printer *message.Printer) string {
	if _, ok := e.ErrorKind.(*kind.FalseSchema); ok && strings.HasSuffix(e.SchemaURL, "/unevaluatedProperties") {
		return "property is not defined by the schema"
	}
	return oneLine(e.ErrorKind.LocalizedString(printer))
}

// jsonPointer encodes instance location tokens as an RFC 6901 JSON pointer.
func jsonPointer(tokens []string) string {
	var sb strings.Builder
	for _, token := range tokens {
		sb.WriteByte('/')
		token = strings.ReplaceAll(token, "~", "~0")
		sb.WriteString(strings.ReplaceAll(token, "/", "~1"))
	}
	return sb.String()
}

// oneLine keeps a reason on a single line, since values quoted from the record may contain line breaks.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
