package schemas_test

import (
	"context"
	"testing"

	"github.com/oversoc/cybereason-connector/internal/benchloop"
	"github.com/oversoc/cybereason-connector/schemas"
	"github.com/oversoc/cybereason-connector/sink"
)

// TestFastValidatorAgreesOnEnrichRecords runs the real source and enrich stages over a generated
// tenant of the fake console and checks that the fast validator and the library agree on every
// record, and on every mutation of the first record of each kind.
func TestFastValidatorAgreesOnEnrichRecords(t *testing.T) {
	ctx := context.Background()
	raw, err := benchloop.RawInput(ctx, 7, 200, 100)
	if err != nil {
		t.Fatalf("generate raw input: %v", err)
	}
	records, err := benchloop.NormalizedInput(ctx, raw)
	if err != nil {
		t.Fatalf("enrich raw input: %v", err)
	}
	v, err := schemas.NewValidator()
	if err != nil {
		t.Fatal(err)
	}

	kindOfSchema := map[string]schemas.Kind{
		schemas.SchemaID(schemas.KindAsset):              schemas.KindAsset,
		schemas.SchemaID(schemas.KindFinding):            schemas.KindFinding,
		schemas.SchemaID(schemas.KindAssetSecurityState): schemas.KindAssetSecurityState,
	}
	mutated := make(map[schemas.Kind]bool)
	counts := make(map[schemas.Kind]int)
	for _, record := range records {
		var kind schemas.Kind
		for _, header := range record.Headers {
			if header.Key == sink.HeaderDataSchema {
				kind = kindOfSchema[string(header.Value)]
			}
		}
		if kind == "" {
			continue // not a record, such as the end of an inventory
		}
		counts[kind]++
		schemas.CheckFastValidator(t, v, kind, string(record.Key), record.Value, !mutated[kind])
		mutated[kind] = true
	}
	t.Logf("records checked: %v", counts)
	if counts[schemas.KindAsset] == 0 || counts[schemas.KindFinding] == 0 {
		t.Errorf("records checked %v, want assets and findings", counts)
	}
}
