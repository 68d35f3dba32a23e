package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Remove deletes an image named by reference or ID with `docker rmi`
// semantics and returns docker's "Untagged: …" and "Deleted: …" lines:
//   - by name: the tag is removed; the image is deleted only when no tag or
//     repository digest refers to it any more;
//   - by ID: all its references are removed and it is deleted, but without
//     force only when at most one tag, in one repository, refers to it.
//
// Blobs no other stored image uses are deleted with the image.
func (s *Store) Remove(ctx context.Context, str string, force bool) ([]string, error) {
	var lines []string
	err := s.update(ctx, func(idx *v1.IndexManifest) error {
		recs := records(idx)
		found, byID, err := s.find(recs, str)
		if err != nil {
			return err
		}
		if !byID {
			r := found[0]
			named := reference.TagNameOnly(mustParse(str))
			var remaining int
			lines, remaining = untagByName(idx, r, named)
			if remaining > 0 {
				// The image stays, but an index it was pulled through may
				// no longer be referenced.
				return s.deleteUnreferenced(idx, r.repos)
			}
		} else {
			var refs []reference.Named
			for _, r := range found {
				for _, t := range r.tags {
					refs = append(refs, t)
				}
				for _, c := range r.repos {
					refs = append(refs, c)
				}
			}
			if !force && !isSingleReference(refs) {
				id, _ := s.imageID(found[0].desc)
				return fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", ErrConflict, id.Hex[:12])
			}
			for _, r := range found {
				lines = append(lines, untagAll(idx, r)...)
			}
		}
		deleted, err := s.deleteRecords(idx, recs, found)
		lines = append(lines, deleted...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return lines, nil
}

func mustParse(s string) reference.Named {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		panic(err) // find already parsed s successfully
	}
	return n
}

// isSingleReference mirrors docker: at most one tag, all references in one
// repository.
func isSingleReference(refs []reference.Named) bool {
	tags := 0
	for i, r := range refs {
		if _, ok := r.(reference.NamedTagged); ok {
			tags++
		}
		if i > 0 && r.Name() != refs[0].Name() {
			return false
		}
	}
	return tags <= 1
}

// untagByName removes the tag or repository digest named and, when it was
// the repository's last tag, that repository's digest; it returns docker's
// lines and how many references to the image remain.
func untagByName(idx *v1.IndexManifest, r *record, named reference.Named) ([]string, int) {
	var lines []string
	tags := slices.Clone(r.tags)
	repos := slices.Clone(r.repos)
	if c, ok := named.(reference.Canonical); ok {
		want := c.String()
		if c.Digest().String() == r.desc.Digest.String() {
			want = "" // by the image's own digest: any repository's entry for it
		}
		if i := slices.IndexFunc(repos, func(n reference.Canonical) bool {
			return n.Name() == c.Name() && (want == "" && n.Digest() == c.Digest() || n.String() == want)
		}); i >= 0 {
			lines = append(lines, "Untagged: "+reference.FamiliarString(repos[i]))
			repos = slices.Delete(repos, i, i+1)
		}
	} else if t, ok := named.(reference.NamedTagged); ok {
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return refName(d) == t.String() })
		tags = slices.DeleteFunc(tags, func(x reference.NamedTagged) bool { return x.String() == t.String() })
		lines = append(lines, "Untagged: "+reference.FamiliarString(t))
		if !slices.ContainsFunc(tags, func(x reference.NamedTagged) bool { return x.Name() == t.Name() }) {
			repos = slices.DeleteFunc(repos, func(n reference.Canonical) bool {
				if n.Name() != t.Name() {
					return false
				}
				lines = append(lines, "Untagged: "+reference.FamiliarString(n))
				return true
			})
		}
	}
	setRecordRepos(idx, r.desc.Digest, repos)
	return lines, len(tags) + len(repos)
}

// untagAll removes every tag and repository digest of r.
func untagAll(idx *v1.IndexManifest, r *record) []string {
	var lines []string
	for _, t := range r.tags {
		lines = append(lines, "Untagged: "+reference.FamiliarString(t))
	}
	for _, n := range r.repos {
		lines = append(lines, "Untagged: "+reference.FamiliarString(n))
	}
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return d.Digest == r.desc.Digest && refName(d) != "" })
	setRecordRepos(idx, r.desc.Digest, nil)
	return lines
}

func setRecordRepos(idx *v1.IndexManifest, h v1.Hash, repos []reference.Canonical) {
	for i, d := range idx.Manifests {
		if d.Digest == h && refName(d) == "" {
			setRepoRefs(&idx.Manifests[i], repos)
		}
	}
}

// deleteRecords drops the records from idx and deletes the blobs only they
// used. It runs under the exclusive lock; WriteImage re-checks its blobs
// under the same lock, so a blob deleted here is written again there.
func (s *Store) deleteRecords(idx *v1.IndexManifest, all, gone []*record) ([]string, error) {
	var lines []string
	goneSet := map[v1.Hash]bool{}
	for _, r := range gone {
		goneSet[r.desc.Digest] = true
		if id, err := s.imageID(r.desc); err == nil {
			line := "Deleted: " + id.String()
			if !slices.Contains(lines, line) {
				lines = append(lines, line)
			}
		}
	}
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return goneSet[d.Digest] })

	keep := map[v1.Hash]bool{}
	candidates := map[v1.Hash]bool{}
	for _, r := range all {
		into := keep
		if goneSet[r.desc.Digest] {
			into = candidates
		}
		s.walk(r.desc, into)
		// The manifest of an index the image was pulled through is kept
		// (only that blob: its other platforms were never stored).
		for _, repo := range r.repos {
			if h, err := v1.NewHash(repo.Digest().String()); err == nil {
				into[h] = true
			}
		}
	}
	for h := range candidates {
		if keep[h] {
			continue
		}
		if err := s.path.RemoveBlob(h); err != nil {
			return lines, fmt.Errorf("delete blob %s: %w", h, err)
		}
	}
	return lines, nil
}

// deleteUnreferenced deletes the index manifests refs point at (when not
// the image's own manifest) that no record in idx refers to any more.
func (s *Store) deleteUnreferenced(idx *v1.IndexManifest, refs []reference.Canonical) error {
	keep := map[v1.Hash]bool{}
	for _, r := range records(idx) {
		s.walk(r.desc, keep)
		for _, repo := range r.repos {
			if h, err := v1.NewHash(repo.Digest().String()); err == nil {
				keep[h] = true
			}
		}
	}
	for _, c := range refs {
		h, err := v1.NewHash(c.Digest().String())
		if err != nil || keep[h] || !s.HasBlob(h) {
			continue
		}
		if err := s.path.RemoveBlob(h); err != nil {
			return fmt.Errorf("delete blob %s: %w", h, err)
		}
	}
	return nil
}

// walk adds the digests of desc's manifest and everything it references.
// Missing or unreadable blobs are skipped: walking only decides deletions.
func (s *Store) walk(desc v1.Descriptor, into map[v1.Hash]bool) {
	if into[desc.Digest] {
		return
	}
	into[desc.Digest] = true
	raw, err := s.path.Bytes(desc.Digest)
	if err != nil {
		return
	}
	var m struct {
		Config    *v1.Descriptor  `json:"config"`
		Layers    []v1.Descriptor `json:"layers"`
		Manifests []v1.Descriptor `json:"manifests"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return
	}
	if m.Config != nil {
		into[m.Config.Digest] = true
	}
	for _, l := range m.Layers {
		into[l.Digest] = true
	}
	for _, c := range m.Manifests {
		s.walk(c, into)
	}
}
