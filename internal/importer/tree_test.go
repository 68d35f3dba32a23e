package importer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// tree writes a distribution filesystem storage, file by file, as the
// CNCF registry lays it out (registry/storage/paths.go there).
type tree struct {
	t    *testing.T
	root string // the registry's rootdirectory
}

func newTree(t *testing.T) *tree {
	return &tree{t: t, root: t.TempDir()}
}

func (tr *tree) v2(elem ...string) string {
	return filepath.Join(append([]string{tr.root, "docker", "registry", "v2"}, elem...)...)
}

func (tr *tree) write(path string, b []byte) {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) blobPath(d digest.Digest) string {
	return tr.v2("blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data")
}

// blob stores bytes in the blob store and returns their digest.
func (tr *tree) blob(b []byte) digest.Digest {
	d := digest.FromBytes(b)
	tr.write(tr.blobPath(d), b)
	return d
}

func (tr *tree) link(path string, d digest.Digest) { tr.write(path, []byte(d.String())) }

func (tr *tree) layerLink(repo string, d digest.Digest) {
	tr.link(tr.v2("repositories", repo, "_layers", "sha256", d.Encoded(), "link"), d)
}

func (tr *tree) revision(repo string, d digest.Digest) {
	tr.link(tr.v2("repositories", repo, "_manifests", "revisions", "sha256", d.Encoded(), "link"), d)
}

// tag points tag at d, with the index entry distribution keeps beside it.
func (tr *tree) tag(repo, tag string, d digest.Digest) {
	tr.link(tr.v2("repositories", repo, "_manifests", "tags", tag, "current", "link"), d)
	tr.link(tr.v2("repositories", repo, "_manifests", "tags", tag, "index", "sha256", d.Encoded(), "link"), d)
}

func (tr *tree) untag(repo, tag string) {
	if err := os.RemoveAll(tr.v2("repositories", repo, "_manifests", "tags", tag)); err != nil {
		tr.t.Fatal(err)
	}
}

type desc struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

// manifest stores a manifest of any shape as a revision of repo.
func (tr *tree) manifest(repo string, m any) (digest.Digest, []byte) {
	tr.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		tr.t.Fatal(err)
	}
	d := tr.blob(b)
	tr.revision(repo, d)
	return d, b
}

// image pushes an OCI image of the given layers to repo as a client
// would: blobs linked, manifest stored, nothing tagged.
func (tr *tree) image(repo string, layers ...string) (digest.Digest, []byte) {
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"x":%q}`, repo))
	cd := tr.blob(config)
	tr.layerLink(repo, cd)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     registry.MediaTypeOCIManifest,
		"config":        desc{"application/vnd.oci.image.config.v1+json", cd, int64(len(config))},
	}
	var ls []desc
	for _, l := range layers {
		d := tr.blob([]byte(l))
		tr.layerLink(repo, d)
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar+gzip", d, int64(len(l))})
	}
	m["layers"] = ls
	return tr.manifest(repo, m)
}

// newService is a registry service over a fresh SQLite database and
// filesystem blob store: wharf's own stores, not stand-ins.
func newService(t *testing.T, opts registry.Options) *registry.Service {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(dir, "wharf.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"), log)
	if err != nil {
		t.Fatal(err)
	}
	return registry.New(db, blobs, log, opts)
}
