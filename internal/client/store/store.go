// Package store is wharf's local image store: an OCI image layout (oci-layout,
// index.json, blobs/sha256/…) under one root directory, shared by every wharf
// process on the machine.
//
// index.json holds two kinds of entries:
//   - an image record per stored manifest (image or index), without the
//     org.opencontainers.image.ref.name annotation; it carries the repository
//     digests known from pushes and pulls (annotation io.wharf.repo-digests);
//   - a tag per reference, the same descriptor annotated with
//     org.opencontainers.image.ref.name = the full normalised reference
//     (docker.io/library/ubuntu:latest).
//
// An image record without tags is a dangling image (<none>:<none>). Every
// read-modify-write of index.json happens under an exclusive lock file; reads
// take a shared lock. Blobs are written to a temporary file, verified against
// their digest and renamed into place, so a blob that exists is complete.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/gofrs/flock"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned (wrapped, as "No such image: X") when a reference,
// digest or image ID matches nothing in the store.
var ErrNotFound = errors.New("No such image")

// ErrConflict is returned (wrapped, with docker's message) when removing an
// image needs --force.
var ErrConflict = errors.New("conflict")

const (
	// AnnotationRefName is the OCI annotation that names a tag.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// annotationRepoDigests lists, comma-separated, the repositories known to
	// hold the record's manifest at a registry (see repoRefs).
	annotationRepoDigests = "io.wharf.repo-digests"

	indexFile  = "index.json"
	lockFile   = "wharf.lock"
	layoutFile = "oci-layout"
)

// Store is a local image store rooted at one directory. It holds no state
// besides the path, so several Stores (and processes) may share a root.
type Store struct {
	root string
	path layout.Path
}

// DefaultRoot returns $WHARF_HOME, else ~/.local/share/wharf.
func DefaultRoot() string {
	if h := os.Getenv("WHARF_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(".wharf")
	}
	return filepath.Join(home, ".local", "share", "wharf")
}

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("create image store: %w", err)
	}
	s := &Store{root: abs, path: layout.Path(abs)}
	if _, err := os.Stat(filepath.Join(abs, layoutFile)); errors.Is(err, os.ErrNotExist) {
		if err := writeFileAtomic(filepath.Join(abs, layoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return nil, fmt.Errorf("create image store: %w", err)
		}
	}
	return s, nil
}

// Root returns the store's root directory (an OCI image layout).
func (s *Store) Root() string { return s.root }

// Layout returns the OCI layout path, for reading blobs and child manifests.
func (s *Store) Layout() layout.Path { return s.path }

// HasBlob reports whether the blob is stored (for "Already exists" on pull).
func (s *Store) HasBlob(h v1.Hash) bool {
	fi, err := os.Stat(s.blobPath(h))
	return err == nil && fi.Mode().IsRegular()
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.root, "blobs", h.Algorithm, h.Hex)
}

// view runs fn on index.json under a shared lock.
func (s *Store) view(ctx context.Context, fn func(*v1.IndexManifest) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fl := flock.New(filepath.Join(s.root, lockFile))
	if err := fl.RLock(); err != nil {
		return fmt.Errorf("lock image store: %w", err)
	}
	defer fl.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	return fn(idx)
}

// update runs fn on index.json under the exclusive lock and writes the result
// back if fn succeeds.
func (s *Store) update(ctx context.Context, fn func(*v1.IndexManifest) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fl := flock.New(filepath.Join(s.root, lockFile))
	if err := fl.Lock(); err != nil {
		return fmt.Errorf("lock image store: %w", err)
	}
	defer fl.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.root, indexFile), b)
}

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(s.root, indexFile))
	if errors.Is(err, os.ErrNotExist) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, err := v1.ParseIndexManifest(f)
	if err != nil {
		return nil, fmt.Errorf("image store index %s is corrupt: %w", f.Name(), err)
	}
	return idx, nil
}

// writeFileAtomic writes b to a temporary file beside name, syncs it and
// renames it over name, so readers never see a partial file, then syncs
// the directory: until then a crash of the machine could undo the rename,
// and with it a pull or tag that was reported done.
func writeFileAtomic(name string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

func refName(d v1.Descriptor) string { return d.Annotations[AnnotationRefName] }

// repoRefs parses a record's repository digests. An entry is "NAME" when the
// registry holds the record's own manifest, or "NAME@DIGEST" when it holds
// another manifest that resolves to this image: the multi-platform index a
// pull went through, whose digest docker reports as the repository digest.
func repoRefs(d v1.Descriptor) []reference.Canonical {
	v := d.Annotations[annotationRepoDigests]
	if v == "" {
		return nil
	}
	var out []reference.Canonical
	for _, e := range strings.Split(v, ",") {
		named, err := reference.ParseNormalizedNamed(e)
		if err != nil {
			continue // written by something else; not ours to interpret
		}
		if c, ok := named.(reference.Canonical); ok {
			out = append(out, c)
			continue
		}
		if c, err := reference.WithDigest(reference.TrimNamed(named), digest.Digest(d.Digest.String())); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// setRepoRefs writes refs back in repoRefs' form, sorted and without
// duplicates.
func setRepoRefs(d *v1.Descriptor, refs []reference.Canonical) {
	var entries []string
	for _, r := range refs {
		e := r.String()
		if r.Digest().String() == d.Digest.String() {
			e = r.Name()
		}
		if !slices.Contains(entries, e) {
			entries = append(entries, e)
		}
	}
	slices.Sort(entries)
	if len(entries) == 0 {
		delete(d.Annotations, annotationRepoDigests)
		if len(d.Annotations) == 0 {
			d.Annotations = nil
		}
		return
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[annotationRepoDigests] = strings.Join(entries, ",")
}
