package importer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// maxLinkSize bounds a link file: it holds one digest ("sha256:" and 64
// hex digits, perhaps a newline). Anything longer is not a link.
const maxLinkSize = 1 << 10

// Source is a CNCF registry's (distribution v2/v3) filesystem storage, read
// in place. The layout under the v2 directory is:
//
//	blobs/<alg>/<first two hex>/<hex>/data                  bytes by digest
//	repositories/<name>/_layers/<alg>/<hex>/link             blobs the repository may serve
//	repositories/<name>/_manifests/revisions/<alg>/<hex>/link manifests the repository holds
//	repositories/<name>/_manifests/tags/<tag>/current/link   where each tag points
//
// <name> has one or more components; a directory holding _manifests is a
// repository, and names never have a component starting with "_", which
// is how the special directories are told apart from nested names.
//
// Reading while that registry runs is safe: it writes a blob under
// _uploads and moves it into place before linking it, so a link never
// names bytes still being written. A link caught mid-write is reported,
// and the final pass, after the registry stops, reads it whole.
type Source struct {
	root string // the v2 directory
}

// OpenSource opens the storage under dir: the registry's rootdirectory
// (holding docker/registry/v2) or the v2 directory itself.
func OpenSource(dir string) (*Source, error) {
	for _, root := range []string{filepath.Join(dir, "docker", "registry", "v2"), dir} {
		if st, err := os.Stat(filepath.Join(root, "repositories")); err == nil && st.IsDir() {
			return &Source{root: root}, nil
		}
	}
	return nil, fmt.Errorf("%s holds no distribution storage: want %s (the registry's rootdirectory) or a v2 directory with repositories/ in it",
		dir, filepath.Join(dir, "docker", "registry", "v2", "repositories"))
}

// Root is the v2 directory the source reads.
func (s *Source) Root() string { return s.root }

// Repositories lists the repository names, sorted.
func (s *Source) Repositories() ([]string, error) {
	base := filepath.Join(s.root, "repositories")
	var names []string
	err := filepath.WalkDir(base, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() || path == base {
			return nil
		}
		if e.Name() == "_manifests" {
			rel, err := filepath.Rel(base, filepath.Dir(path))
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		// _layers, _manifests, _uploads belong to the repository above;
		// nested repository names continue beside them.
		if strings.HasPrefix(e.Name(), "_") {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// Layers lists the blobs linked into repo, sorted, and the links that
// name another digest than their path (skipped: neither can be trusted).
func (s *Source) Layers(repo string) (links []digest.Digest, bad []error, err error) {
	return s.links(s.repoPath(repo, "_layers"))
}

// Revisions lists the manifests repo holds, sorted, and the bad links as
// Layers does.
func (s *Source) Revisions(repo string) (links []digest.Digest, bad []error, err error) {
	return s.links(s.repoPath(repo, "_manifests", "revisions"))
}

// Tags maps each tag of repo to the manifest it points at now. A tag
// whose link cannot be read maps to "" and its error is in bad: it is
// still the source's tag, so nothing may prune it.
func (s *Source) Tags(repo string) (tags map[string]digest.Digest, bad []error, err error) {
	dir := s.repoPath(repo, "_manifests", "tags")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]digest.Digest{}, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	tags = make(map[string]digest.Digest, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		d, err := readLink(filepath.Join(dir, e.Name(), "current", "link"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // a tag the registry was deleting: it has no current target
		}
		if err != nil {
			bad = append(bad, err)
		}
		tags[e.Name()] = d
	}
	return tags, bad, nil
}

// BlobPath is where the bytes of d are.
func (s *Source) BlobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), hex[:2], hex, "data")
}

func (s *Source) repoPath(repo string, elem ...string) string {
	return filepath.Join(append([]string{s.root, "repositories", filepath.FromSlash(repo)}, elem...)...)
}

// links reads every <alg>/<hex>/link under dir. A link whose content does
// not name the digest of its own path is reported, not trusted.
func (s *Source) links(dir string) (out []digest.Digest, bad []error, err error) {
	algs, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		hexes, err := os.ReadDir(filepath.Join(dir, alg.Name()))
		if err != nil {
			return nil, nil, err
		}
		for _, hex := range hexes {
			path := filepath.Join(dir, alg.Name(), hex.Name(), "link")
			d, err := readLink(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue // being deleted by the registry
			}
			if err != nil {
				bad = append(bad, err)
				continue
			}
			if want := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), hex.Name()); d != want {
				bad = append(bad, fmt.Errorf("%s names %s, not %s: skipped", path, d, want))
				continue
			}
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out, bad, nil
}

// readLink reads a link file: one digest.
func readLink(path string) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLinkSize+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxLinkSize {
		return "", fmt.Errorf("%s is not a link: over %d bytes", path, maxLinkSize)
	}
	d, err := digest.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}
