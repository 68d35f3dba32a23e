package registry

import (
	"context"
	"errors"
	"slices"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// PutManifestResult says what a manifest push stored.
type PutManifestResult struct {
	Digest  digest.Digest
	Subject digest.Digest
	Tags    []string
}

// PutManifest validates and stores a manifest pushed to repo under ref (a
// tag or a digest) plus any extra tags, returning its digest.
func (s *Service) PutManifest(ctx context.Context, repo, ref, contentType string, body []byte, extraTags []string) (*PutManifestResult, error) {
	defer s.pushes.begin()()
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	if int64(len(body)) > s.opts.MaxManifestSize {
		return nil, Errorf(ErrManifestTooLarge, "manifest is %d bytes; the limit is %d", len(body), s.opts.MaxManifestSize)
	}
	var tags []string
	var d digest.Digest
	if IsDigestReference(ref) {
		want, err := ParseDigest(ref)
		if err != nil {
			return nil, err
		}
		if _, err := newHash(want.Algorithm()); err != nil {
			return nil, err
		}
		d = want.Algorithm().FromBytes(body)
		if d != want {
			return nil, Errorf(ErrDigestInvalid, "manifest content has digest %s, not %s", d, want).
				withDetail(map[string]any{"expected": want.String(), "actual": d.String()})
		}
	} else {
		if err := ValidateTag(ref); err != nil {
			return nil, Errorf(ErrManifestInvalid, "%v", err)
		}
		tags = append(tags, ref)
		d = digest.Canonical.FromBytes(body)
	}
	for _, t := range extraTags {
		if err := ValidateTag(t); err != nil {
			return nil, Errorf(ErrManifestInvalid, "%v", err)
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}

	parsed, err := parseManifest(contentType, body)
	if err != nil {
		return nil, err
	}
	if s.policies != nil {
		if ctx, err = s.policies.pin(ctx); err != nil {
			return nil, err
		}
	}
	m := &metadata.Manifest{
		Repo:         repo,
		Digest:       d,
		MediaType:    parsed.MediaType,
		Content:      body,
		ArtifactType: parsed.artifactType(),
		Annotations:  parsed.Annotations,
		Blobs:        parsed.blobDigests(),
		Children:     parsed.childDigests(),
		PushedBy:     Actor(ctx),
	}
	if parsed.Subject != nil {
		m.Subject = parsed.Subject.Digest
	}
	if !s.opts.SparseManifests && !mirrorWrite(ctx) {
		m.RequiredBlobs = parsed.requiredBlobs()
		m.RequireChildren = true
	}
	if m.Lineage, err = s.lineageForPush(ctx, repo, d, parsed); err != nil {
		return nil, err
	}
	if err := s.enforceQuota(ctx, repo, "", 0, true); err != nil {
		return nil, err
	}
	var planner metadata.TagPlanner
	var rules *tagRules
	if len(tags) > 0 {
		if planner, rules, ctx, err = s.tagWrite(ctx, repo); err != nil {
			return nil, err
		}
	}
	if planner != nil {
		err = planner.PutManifestPlanned(ctx, m, tags, pushPlan(rules, d, tags, m.PushedBy))
	} else {
		err = s.meta.PutManifest(ctx, m, tags)
	}
	if err != nil {
		var mr *metadata.MissingReference
		if errors.As(err, &mr) {
			return nil, missingReference(repo, mr)
		}
		return nil, err
	}
	s.log.InfoContext(ctx, "manifest stored", "repo", repo, "digest", d, "media_type", m.MediaType, "tags", tags)
	return &PutManifestResult{Digest: d, Subject: m.Subject, Tags: tags}, nil
}

// missingReference explains which reference of a pushed manifest is absent.
func missingReference(repo string, mr *metadata.MissingReference) error {
	detail := map[string]any{"digest": mr.Digest.String()}
	if mr.Manifest {
		return Errorf(ErrManifestChildMissing, "manifest %s is referenced by the index but was not pushed to %s", mr.Digest, repo).withDetail(detail)
	}
	return Errorf(ErrManifestBlobUnknown, "blob %s is referenced by the manifest but was not pushed to %s", mr.Digest, repo).withDetail(detail)
}

// GetManifest returns the manifest ref (a tag or a digest) of repo. It may
// be shared with other callers (it comes from a cache): read-only.
func (s *Service) GetManifest(ctx context.Context, repo, ref string) (*metadata.Manifest, error) {
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	var m *metadata.Manifest
	var err error
	// A store that resolves without reading lets the bytes come from the
	// digest-keyed cache (manifestcache.go): pulls are the hottest path.
	res, fast := s.meta.(manifestResolver)
	if IsDigestReference(ref) {
		d, perr := ParseDigest(ref)
		if perr != nil {
			return nil, perr
		}
		if fast {
			m, err = s.pullByDigest(ctx, res, repo, d)
		} else {
			m, err = s.meta.GetManifest(ctx, repo, d)
		}
	} else {
		if terr := ValidateTag(ref); terr != nil {
			return nil, Errorf(ErrManifestUnknown, "%v", terr)
		}
		if fast {
			var d digest.Digest
			if d, err = res.ResolveTag(ctx, repo, ref); err == nil {
				m, err = s.manifestByDigest(ctx, repo, d)
			}
		} else {
			m, err = s.meta.GetTaggedManifest(ctx, repo, ref)
		}
		if err == nil {
			s.recordPull(repo, ref)
		}
	}
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, s.manifestUnknown(ctx, repo, ref)
	}
	return m, err
}

// DeleteManifest deletes a manifest by digest (with every tag pointing at
// it) or just a tag.
func (s *Service) DeleteManifest(ctx context.Context, repo, ref string) error {
	defer s.pushes.begin()()
	if err := ValidateName(repo); err != nil {
		return err
	}
	var err error
	if IsDigestReference(ref) {
		d, perr := ParseDigest(ref)
		if perr != nil {
			return perr
		}
		err = s.deleteManifest(ctx, repo, d)
		s.manifests.drop(repo, d)
	} else {
		if terr := ValidateTag(ref); terr != nil {
			return Errorf(ErrManifestUnknown, "%v", terr)
		}
		err = s.deleteTag(ctx, repo, ref)
	}
	if errors.Is(err, metadata.ErrNotFound) {
		return s.manifestUnknown(ctx, repo, ref)
	}
	if err == nil {
		kind := "tag"
		if IsDigestReference(ref) {
			kind = "manifest"
		}
		s.auditDelete(ctx, kind, repo, ref)
	}
	return err
}

// deleteManifest deletes manifest d, unless an immutable tag points at
// it; under floating-tags=semver the floating tags that pointed at its
// version tags fall back.
func (s *Service) deleteManifest(ctx context.Context, repo string, d digest.Digest) error {
	planner, rules, ctx, err := s.tagWrite(ctx, repo)
	if err != nil {
		return err
	}
	if planner != nil {
		gone := func(t metadata.TagTarget) bool { return t.Digest == d }
		return planner.DeleteManifestPlanned(ctx, repo, d, deletePlan(rules, gone, Actor(ctx)))
	}
	return s.meta.DeleteManifest(ctx, repo, d)
}

// deleteTag deletes one tag, unless it is immutable; under
// floating-tags=semver the floating tags that pointed at it, if it is a
// version, fall back. A retention run's delete also checks that the tag
// has not moved since it was decided (guardTarget).
func (s *Service) deleteTag(ctx context.Context, repo, tag string) error {
	planner, rules, ctx, err := s.tagWrite(ctx, repo)
	if err != nil {
		return err
	}
	var plan metadata.TagPlan
	if planner != nil {
		gone := func(t metadata.TagTarget) bool { return t.Name == tag }
		plan = deletePlan(rules, gone, Actor(ctx))
	}
	plan = guardTarget(ctx, tag, plan)
	if planner, ok := s.meta.(metadata.TagPlanner); ok && plan != nil {
		return planner.DeleteTagPlanned(ctx, repo, tag, plan)
	}
	return s.meta.DeleteTag(ctx, repo, tag)
}

// Referrers lists the manifests in repo whose subject is d.
func (s *Service) Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]metadata.Descriptor, error) {
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	return s.meta.Referrers(ctx, repo, d, artifactType)
}

// manifestUnknown says whether the repository or the manifest is missing.
func (s *Service) manifestUnknown(ctx context.Context, repo, ref string) error {
	if ok, err := s.meta.RepositoryExists(ctx, repo); err == nil && !ok {
		return Errorf(ErrNameUnknown, "repository %s not found", repo).withDetail(map[string]any{"name": repo})
	}
	return Errorf(ErrManifestUnknown, "manifest %s not found in %s", ref, repo).withDetail(map[string]any{"reference": ref})
}
