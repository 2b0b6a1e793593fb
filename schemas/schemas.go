// Package schemas contains the OverSOC record contract: the JSON Schemas (draft 2020-12) embedded
// from oversoc/<version>/, a validator for them, the Go record types and the content fingerprint
// that gives each record its CloudEvents id.
//
// Released version folders stay as they are: released.sha256 lists the SHA-256 of their files, and a
// test fails when one changes. A new version is a copy of the latest folder with the changes applied
// and Version bumped. README.md beside this file gives the versioning rules.
package schemas

import (
	"embed"
	"fmt"
)

// Version is the contract version of the schemas that Validate uses and that producers write into
// schema_version.
const Version = "1.1.0"

// OCSFVersion is the OCSF release the records are aligned with, written into metadata.version.
const OCSFVersion = "1.8.0"

// idBase prefixes every schema $id. The full id is idBase + "oversoc/<version>/<name>.schema.json",
// whose part after idBase is the path of the file in schemaFiles.
const idBase = "https://schemas.oversoc.com/"

// schemaFiles contains oversoc/<version>/*.schema.json for every released version.
//
//go:embed oversoc
var schemaFiles embed.FS

// Kind names a record type. Each kind has one schema file per version.
type Kind string

// Record kinds.
const (
	KindAsset   Kind = "asset"   // machine inventory record, asset.schema.json
	KindFinding Kind = "finding" // MalOp record, finding.schema.json
	// KindAssetSecurityState is a change of an asset's protection posture,
	// asset-security-state.schema.json, added in 1.1.0.
	KindAssetSecurityState Kind = "asset-security-state"
)

// kinds lists every record kind of Version in a fixed order. An older version folder may lack the
// kinds added after it.
func kinds() []Kind { return []Kind{KindAsset, KindFinding, KindAssetSecurityState} }

func (k Kind) valid() bool {
	return k == KindAsset || k == KindFinding || k == KindAssetSecurityState
}

// SchemaID returns the $id of the kind's schema in Version, which producers put in the
// ce_dataschema header. It returns "" for an unknown kind.
func SchemaID(kind Kind) string {
	if !kind.valid() {
		return ""
	}
	return schemaID(Version, string(kind))
}

// schemaID returns the $id of oversoc/<version>/<name>.schema.json.
func schemaID(version, name string) string {
	return idBase + schemaPath(version, name)
}

// schemaPath returns the path of a schema file inside schemaFiles.
func schemaPath(version, name string) string {
	return fmt.Sprintf("oversoc/%s/%s.schema.json", version, name)
}
