package schemas

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

// releasedManifest lists the SHA-256 of every file of every released schema folder, in the format
// of sha256sum, so `sha256sum -c released.sha256` checks it too.
const releasedManifest = "released.sha256"

// readManifest returns the sums of releasedManifest keyed by file path.
func readManifest(t *testing.T) map[string]string {
	t.Helper()
	file, err := os.Open(releasedManifest)
	if err != nil {
		t.Fatalf("open manifest of released schemas: %v", err)
	}
	defer file.Close()

	sums := make(map[string]string)
	scanner := bufio.NewScanner(file)
	for line := 1; scanner.Scan(); line++ {
		sum, name, ok := strings.Cut(scanner.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("%s line %d: expected \"<sha256>  <path>\", got %q", releasedManifest, line, scanner.Text())
		}
		sums[name] = sum
	}
	if err := scanner.Err(); err != nil {
		t.Fatalf("read %s: %v", releasedManifest, err)
	}
	return sums
}

// TestReleasedSchemasUnchanged fails when a file of a released version folder changes, is removed
// or is added. A change to the contract goes into a new version folder instead.
func TestReleasedSchemasUnchanged(t *testing.T) {
	sums := readManifest(t)
	released := make(map[string]bool)
	for name, want := range sums {
		version := path.Base(path.Dir(name))
		released[version] = true
		data, err := schemaFiles.ReadFile(name)
		if err != nil {
			t.Errorf("released schema %s is missing: %v", name, err)
			continue
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("released schema %s changed: SHA-256 is %s, the manifest has %s; put the change in a new version folder", name, got, want)
		}
	}

	for version := range released {
		files, err := fs.Glob(schemaFiles, "oversoc/"+version+"/*")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if _, ok := sums[name]; !ok {
				t.Errorf("released version %s gained the file %s; put it in a new version folder", version, name)
			}
		}
	}
}

// TestEveryVersionReleased requires every version folder to be in the manifest, so that no folder
// can change after the version that follows it exists.
func TestEveryVersionReleased(t *testing.T) {
	sums := readManifest(t)
	var released []string
	for name := range sums {
		released = append(released, path.Base(path.Dir(name)))
	}
	for _, version := range embeddedVersions(t) {
		if !slices.Contains(released, version) {
			t.Errorf("version folder %s is not in %s; add its sums with: sha256sum oversoc/%s/*.json >> %s",
				version, releasedManifest, version, releasedManifest)
		}
	}
}

// TestEveryKindHasExamples requires, for every version folder, an example record in
// testdata/<version>/ of each kind that the folder defines, so that the compatibility check of
// TestExamplesValidate covers every schema.
func TestEveryKindHasExamples(t *testing.T) {
	covered := make(map[string]bool)
	for p := range examples(t) {
		covered[path.Base(path.Dir(p))+"/"+string(exampleKind(p))] = true
	}
	for _, version := range embeddedVersions(t) {
		for _, kind := range kinds() {
			if _, err := fs.Stat(schemaFiles, schemaPath(version, string(kind))); err != nil {
				continue
			}
			if !covered[version+"/"+string(kind)] {
				t.Errorf("testdata/%s has no example of kind %s", version, kind)
			}
		}
	}
}
