package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/importer"
)

// distributionTree writes a one-image CNCF registry storage under a temp
// rootdirectory: app:v1 with a config and one layer, whose bytes are
// layer. It returns the rootdirectory and the layer's data file.
func distributionTree(t *testing.T, layer string) (root, layerFile string) {
	t.Helper()
	root = t.TempDir()
	v2 := filepath.Join(root, "docker", "registry", "v2")
	write := func(path, content string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(content string) digest.Digest {
		d := digest.FromString(content)
		write(filepath.Join(v2, "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data"), content)
		return d
	}
	link := func(d digest.Digest, elem ...string) {
		write(filepath.Join(append(append([]string{v2, "repositories", "app"}, elem...), "link")...), d.String())
	}
	config := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`
	cd, ld := blob(config), blob(layer)
	link(cd, "_layers", "sha256", cd.Encoded())
	link(ld, "_layers", "sha256", ld.Encoded())
	md := blob(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		cd, len(config), ld, len(layer)))
	link(md, "_manifests", "revisions", "sha256", md.Encoded())
	link(md, "_manifests", "tags", "v1", "current")
	return root, filepath.Join(v2, "blobs", "sha256", ld.Encoded()[:2], ld.Encoded(), "data")
}

func TestImportDistribution_SummarisesAndImportsOnce(t *testing.T) {
	root, _ := distributionTree(t, "layer bytes")
	dataDir := filepath.Join(t.TempDir(), "data")

	// A dry run compares with an existing data directory; the first
	// real import may create it.
	if _, _, err := wharf(t, nil, "import", "distribution", root, "--data-dir", dataDir, "--dry-run"); err == nil {
		t.Error("a dry run against a missing data directory succeeded")
	}
	out := mustWharf(t, "import", "distribution", root, "--data-dir", dataDir)
	if !strings.Contains(out, "[1/1] app:") ||
		!strings.Contains(out, "blobs 2 imported (0.0 MB), 0 already present; manifests 1 imported, 0 already present; tags 1 set, 0 unchanged") {
		t.Errorf("first pass:\n%s", out)
	}
	out = mustWharf(t, "import", "distribution", root, "--data-dir", dataDir)
	if !strings.Contains(out, "blobs 0 imported (0.0 MB), 2 already present; manifests 0 imported, 1 already present; tags 0 set, 1 unchanged") {
		t.Errorf("second pass:\n%s", out)
	}
	out = mustWharf(t, "import", "distribution", root, "--data-dir", dataDir, "--dry-run")
	if !strings.Contains(out, "Would import 1 repositories") || !strings.Contains(out, "2 already present") {
		t.Errorf("dry run:\n%s", out)
	}
}

func TestImportDistribution_CorruptBlobFailsWithASummary(t *testing.T) {
	root, layerFile := distributionTree(t, "layer bytes")
	if err := os.WriteFile(layerFile, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := wharf(t, nil, "import", "distribution", root, "--data-dir", t.TempDir())
	if !errors.Is(err, importer.ErrIncomplete) {
		t.Fatalf("import of a corrupt source: %v, want ErrIncomplete\n%s", err, out)
	}
	if !strings.Contains(out, "Imported 1 repositories") || !strings.Contains(out, "3 problems; not imported:") ||
		!strings.Contains(out, "corrupt in the source") {
		t.Errorf("output:\n%s", out)

	}
}

func TestImportDistribution_RefusesADirectoryWithoutStorage(t *testing.T) {
	_, _, err := wharf(t, nil, "import", "distribution", t.TempDir(), "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "holds no distribution storage") {
		t.Errorf("err = %v", err)
	}
}
