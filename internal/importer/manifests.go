package importer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/registry"
)

// manifestHead is the part of a manifest that decides its import order
// and, when it names no mediaType (OCI allows that), its content type.
type manifestHead struct {
	MediaType string          `json:"mediaType"`
	Config    json.RawMessage `json:"config"`
	Manifests []struct {
		Digest digest.Digest `json:"digest"`
	} `json:"manifests"`
	Subject *struct {
		Digest digest.Digest `json:"digest"`
	} `json:"subject"`
}

// contentType is what a push would have sent: distribution stores only
// the bytes, so a manifest without mediaType gets the OCI type its shape
// says (as distribution itself does when serving it).
func (h *manifestHead) contentType() string {
	switch {
	case h.MediaType != "":
		return h.MediaType
	case h.Manifests != nil:
		return registry.MediaTypeOCIIndex
	default:
		return registry.MediaTypeOCIManifest
	}
}

// deps are the manifests that must be in wharf before this one: an
// index's children and a referrer's subject.
func (h *manifestHead) deps() []digest.Digest {
	var out []digest.Digest
	for _, m := range h.Manifests {
		out = append(out, m.Digest)
	}
	if h.Subject != nil {
		out = append(out, h.Subject.Digest)
	}
	return out
}

// manifests imports the revisions of repo that wharf lacks, each after
// the manifests it needs, and returns every digest wharf now holds (or,
// in a dry run, would hold).
func (im *importer) manifests(ctx context.Context, repo string, revisions []digest.Digest) (map[digest.Digest]bool, error) {
	present := map[digest.Digest]bool{}
	pending := map[digest.Digest][]digest.Digest{}
	for _, d := range revisions {
		_, err := im.reg.GetManifest(ctx, repo, d.String())
		if err == nil {
			present[d] = true
			im.rep.ManifestsSkipped++
			continue
		}
		if !errors.Is(err, registry.ErrManifestUnknown) && !errors.Is(err, registry.ErrNameUnknown) {
			return nil, err
		}
		_, head, err := im.readManifest(d)
		if err != nil {
			im.problem(Problem{Repo: repo, Digest: d, Err: err})
			continue
		}
		pending[d] = head.deps()
	}

	// Depth first, dependencies before dependents. Content addressing
	// rules out cycles; the visited mark guards against a crafted source.
	visited := map[digest.Digest]bool{}
	var visit func(d digest.Digest) error
	visit = func(d digest.Digest) error {
		if visited[d] {
			return nil
		}
		visited[d] = true
		for _, dep := range pending[d] {
			if _, ok := pending[dep]; ok {
				if err := visit(dep); err != nil {
					return err
				}
			}
		}
		return im.putManifest(ctx, repo, d, present)
	}
	order := make([]digest.Digest, 0, len(pending))
	for d := range pending {
		order = append(order, d)
	}
	slices.Sort(order)
	for _, d := range order {
		if err := visit(d); err != nil {
			return nil, err
		}
	}
	return present, nil
}

// putManifest pushes manifest d of the source to repo by digest, through
// the registry's validation. A manifest the registry refuses (a blob or
// child missing in the source, schema 1) is a problem, not a failure.
func (im *importer) putManifest(ctx context.Context, repo string, d digest.Digest, present map[digest.Digest]bool) error {
	body, head, err := im.readManifest(d)
	if err != nil {
		im.problem(Problem{Repo: repo, Digest: d, Err: err})
		return nil
	}
	if !im.opts.DryRun {
		_, err = im.reg.PutManifest(ctx, repo, d.String(), head.contentType(), body, nil)
		var re *registry.Error
		if errors.As(err, &re) {
			im.problem(Problem{Repo: repo, Digest: d, Err: fmt.Errorf("manifest not imported: %w", err)})
			return nil
		}
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d, err)
		}
	}
	present[d] = true
	im.rep.ManifestsImported++
	return nil
}

// readManifest reads manifest d from the source's blob store, verified
// against its digest and bounded by the registry's manifest size limit.
func (im *importer) readManifest(d digest.Digest) ([]byte, *manifestHead, error) {
	if !d.Algorithm().Available() {
		return nil, nil, fmt.Errorf("unsupported digest algorithm %s", d.Algorithm())
	}
	f, err := os.Open(im.src.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, ErrSourceMissing
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	limit := im.reg.MaxManifestSize()
	body, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("manifest over the %d byte limit", limit)
	}
	if got := d.Algorithm().FromBytes(body); got != d {
		return nil, nil, fmt.Errorf("manifest corrupt in the source: its content has digest %s", got)
	}
	var head manifestHead
	if err := json.Unmarshal(body, &head); err != nil {
		return nil, nil, fmt.Errorf("manifest is not JSON: %w", err)
	}
	return body, &head, nil
}
