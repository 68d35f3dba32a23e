package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// Golden images and lineage. Every pushed image manifest gets a record of
// its layer chains and of the base it was built on:
//
//   - the base its annotations (org.opencontainers.image.base.name and
//     .digest) name, if that image is stored here and its layers are a
//     prefix of this image's; an annotation that does not hold is noted,
//     not trusted;
//   - otherwise the golden image whose layers are the longest prefix of
//     this image's.
//
// A layer chain identifies a list of layers: chain_1 = sha256(layer_1),
// chain_k = sha256(chain_{k-1} + layer_k). An image whose layers start
// with a golden image's N layers has, at k = N, the golden image's whole
// chain; so a push looks its L chains up among the golden images in one
// indexed query, whatever the number of golden images.

// Base annotations of the OCI image spec.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// How a base was found.
const (
	SourceAnnotation = metadata.SourceAnnotation
	SourceLayers     = metadata.SourceLayers
)

// LayerChains returns chain_1 … chain_L of layers: what a push records,
// and what a seeded database (benchmarks) must hold to be found alike.
func LayerChains(layers []digest.Digest) []string {
	out := make([]string, len(layers))
	prev := ""
	for i, l := range layers {
		sum := sha256.Sum256([]byte(prev + l.String()))
		prev = hex.EncodeToString(sum[:])
		out[i] = prev
	}
	return out
}

// foundBase is what detection found, with whether the base is golden
// (which the push gate asks and the record does not keep).
type foundBase struct {
	lineage *metadata.Lineage
	golden  bool
}

// detectLineage finds the base of image manifest m (digest d) of repo;
// nil for what is not a container image. With deferred, a base the
// annotations do not name is left for the store to find as it records
// the lineage (metadata.Lineage.FindBase), and the answer's golden is
// not known.
func (s *Service) detectLineage(ctx context.Context, repo string, d digest.Digest, m *manifest, golden, deferred bool) (*foundBase, error) {
	if s.lineage == nil || m.isIndex() || !isImageConfig(m) {
		return nil, nil
	}
	layers := make([]digest.Digest, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = l.Digest
	}
	chains := LayerChains(layers)
	l := &metadata.Lineage{Repo: repo, Digest: d, Layers: len(chains), Golden: golden}
	if len(chains) > 0 {
		l.Chain, l.First = chains[len(chains)-1], chains[0]
	}
	out := &foundBase{lineage: l}
	if name, bd := m.Annotations[AnnotationBaseName], m.Annotations[AnnotationBaseDigest]; name != "" && bd != "" {
		ok, err := s.baseFromAnnotation(ctx, out, chains, name, digest.Digest(bd))
		if ok || err != nil {
			return out, err
		}
	}
	if deferred {
		l.FindBase = chains
		return out, nil
	}
	found, err := s.lineage.GoldenByChain(ctx, chains)
	if err != nil {
		return nil, err
	}
	if b, ok := metadata.BaseAmong(found, repo, d); ok {
		l.Base, out.golden = b, true
	}
	return out, nil
}

// baseFromAnnotation checks the base the annotations name against the
// layers, recording it when it holds and a note when it does not.
func (s *Service) baseFromAnnotation(ctx context.Context, out *foundBase, chains []string, name string, bd digest.Digest) (bool, error) {
	repo, tag := splitImageName(name)
	base, err := s.lineage.GetLineage(ctx, repo, bd)
	switch {
	case errors.Is(err, metadata.ErrNotFound):
		out.lineage.Note = fmt.Sprintf("the base annotation names %s@%s, which is not stored here", name, bd)
		return false, nil
	case err != nil:
		return false, err
	case base.Layers > len(chains) || (base.Layers > 0 && chains[base.Layers-1] != base.Chain):
		out.lineage.Note = fmt.Sprintf("the base annotation names %s@%s, whose layers are not a prefix of this image's", name, bd)
		return false, nil
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	out.lineage.Base = metadata.BaseRef{Repo: repo, Digest: bd, Tags: tags, Layers: base.Layers, Source: SourceAnnotation}
	out.golden = base.Golden
	return true, nil
}

// splitImageName splits a reference as the base annotation gives it
// (registry.example:5000/golden/base:1.0, maybe with @digest) into the
// repository name here and the tag.
func splitImageName(ref string) (repo, tag string) {
	ref, _, _ = strings.Cut(ref, "@")
	if first, rest, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		ref = rest
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// policyTrue reports whether key is "true" for repo.
func (s *Service) policyTrue(ctx context.Context, repo, key string) (bool, error) {
	if s.policies == nil {
		return false, nil
	}
	v, err := s.policies.Value(ctx, repo, key)
	return v == "true", err
}

// lineageForPush detects the base of a pushed manifest and applies the
// push gate, returning what to record with it.
func (s *Service) lineageForPush(ctx context.Context, repo string, d digest.Digest, m *manifest) (*metadata.Lineage, error) {
	if s.lineage == nil {
		return nil, nil
	}
	// One read of the policy version serves the sync and both keys: a
	// push pays for lineage in queries, and each read is one.
	v, set, err := s.policies.settingsAt(ctx, repo, KeyGolden, KeyRequireGoldenBase)
	if err != nil {
		return nil, err
	}
	if err := s.syncGoldenAt(ctx, v); err != nil {
		return nil, err
	}
	golden, gate := set[0].Value == "true", set[1].Value == "true"
	// A golden repository is where bases come from: the gate is for the
	// images built on them. Where no gate waits for the base, finding it
	// is left to the write.
	gated := gate && !golden
	found, err := s.detectLineage(ctx, repo, d, m, golden, !gated)
	if err != nil || !gated {
		return lineageOf(found), err
	}
	if m.isIndex() {
		return nil, s.gateIndex(ctx, repo, m)
	}
	if found == nil {
		return nil, nil
	}
	return found.lineage, s.gate(ctx, repo, found)
}

func lineageOf(f *foundBase) *metadata.Lineage {
	if f == nil {
		return nil
	}
	return f.lineage
}

// gate refuses an image the require-golden-base policy does not let in.
func (s *Service) gate(ctx context.Context, repo string, f *foundBase) error {
	if f.golden {
		return nil
	}
	b := f.lineage.Base
	var found string
	if b.Repo == "" {
		scratch, err := s.policyTrue(ctx, repo, KeyAllowScratch)
		if err != nil || scratch {
			return err
		}
		found = "none found"
		if f.lineage.Note != "" {
			found += " (" + f.lineage.Note + ")"
		}
	} else {
		found = baseName(b) + ", which is not golden"
	}
	return Errorf(ErrGoldenBaseRequired, "policy require-golden-base=true on %s: the image must be built on a golden image; base found: %s", repo, found).
		withDetail(map[string]any{"policy": KeyRequireGoldenBase, "base": b.Repo, "base_digest": b.Digest.String()})
}

// gateIndex checks each platform image of an index the gate covers.
func (s *Service) gateIndex(ctx context.Context, repo string, m *manifest) error {
	for _, child := range m.Manifests {
		f, err := s.recordedBase(ctx, repo, child.Digest)
		if errors.Is(err, metadata.ErrNotFound) {
			continue // a platform not pushed here (sparse index): nothing to check
		}
		if err != nil {
			return err
		}
		if f == nil {
			continue
		}
		if err := s.gate(ctx, repo, f); err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Message = fmt.Sprintf("platform %s: %s", child.Digest, e.Message)
			}
			return err
		}
	}
	return nil
}

// recordedBase returns what is known of the base of manifest d of repo:
// its record, or for a manifest stored before lineage was, a detection
// made now.
func (s *Service) recordedBase(ctx context.Context, repo string, d digest.Digest) (*foundBase, error) {
	l, err := s.lineage.GetLineage(ctx, repo, d)
	if err == nil {
		f := &foundBase{lineage: l}
		if l.Base.Repo != "" {
			base, err := s.lineage.GetLineage(ctx, l.Base.Repo, l.Base.Digest)
			if err != nil && !errors.Is(err, metadata.ErrNotFound) {
				return nil, err
			}
			f.golden = err == nil && base.Golden
		}
		return f, nil
	}
	if !errors.Is(err, metadata.ErrNotFound) {
		return nil, err
	}
	stored, err := s.meta.GetManifest(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	m, ok := storedManifest(stored)
	if !ok {
		return nil, nil
	}
	return s.detectLineage(ctx, repo, d, m, false, false)
}

// storedManifest decodes a stored manifest's fields, false if it cannot
// be (it was checked when pushed, so only a manifest stored sparse or by
// an older wharf might not).
func storedManifest(stored *metadata.Manifest) (*manifest, bool) {
	var m manifest
	if json.Unmarshal(stored.Content, &m) != nil {
		return nil, false
	}
	if m.MediaType == "" {
		m.MediaType = stored.MediaType
	}
	return &m, true
}

// baseName is repo:tag (the first tag recorded), or repo@digest.
func baseName(b metadata.BaseRef) string {
	if len(b.Tags) > 0 {
		return fmt.Sprintf("%s:%s (%s)", b.Repo, b.Tags[0], b.Digest)
	}
	return b.Repo + "@" + b.Digest.String()
}

// goldenSync keeps the golden flags of recorded images in step with the
// golden policy: policies change by `wharf policy` (offline, or on
// another replica), so each process compares the policy version it last
// synced with the current one before relying on the flags.
type goldenSync struct {
	mu      sync.Mutex
	version atomic.Int64 // policy version synced, -1 before the first
	started atomic.Bool
}

// syncGolden flags the images of repositories that became golden (after
// recording the lineage of those stored before lineage was, and finding
// again the bases of images that had none) and unflags those of
// repositories that stopped being golden. It runs once per policy
// version; every process that sees the version move runs it, and its
// writes are idempotent.
func (s *Service) syncGolden(ctx context.Context) error {
	if s.lineage == nil {
		return nil
	}
	v, err := s.policies.version(ctx)
	if err != nil {
		return err
	}
	return s.syncGoldenAt(ctx, v)
}

// syncGoldenAt is syncGolden for policy version v, read by the caller.
func (s *Service) syncGoldenAt(ctx context.Context, v int64) error {
	if s.golden.started.Load() && s.golden.version.Load() == v {
		return nil
	}
	s.golden.mu.Lock()
	defer s.golden.mu.Unlock()
	if s.golden.started.Load() && s.golden.version.Load() == v {
		return nil
	}
	flagged, err := s.lineage.GoldenRepositories(ctx)
	if err != nil {
		return err
	}
	was := map[string]bool{}
	for _, r := range flagged {
		was[r] = true
	}
	const batch = 500
	for last := ""; ; {
		names, err := s.meta.ListRepositories(ctx, last, batch)
		if err != nil {
			return err
		}
		for _, name := range names {
			golden, err := s.policyTrue(ctx, name, KeyGolden)
			if err != nil {
				return err
			}
			if golden {
				if err := s.backfillGolden(ctx, name); err != nil {
					return err
				}
			} else if was[name] {
				if _, err := s.lineage.SetGolden(ctx, name, false); err != nil {
					return err
				}
				s.log.InfoContext(ctx, "repository no longer golden", "repo", name)
			}
		}
		if len(names) < batch {
			break
		}
		last = names[len(names)-1]
	}
	s.golden.version.Store(v)
	s.golden.started.Store(true)
	return nil
}

// backfillGolden makes repo's images golden: it records the lineage of
// those that have none, flags them, and matches again the images that
// had no base and start with one of repo's first layers.
func (s *Service) backfillGolden(ctx context.Context, repo string) error {
	var added int
	for after := digest.Digest(""); ; {
		ms, err := s.lineage.ManifestsWithoutLineage(ctx, repo, after, 100)
		if err != nil {
			return err
		}
		for i := range ms {
			m, ok := storedManifest(&ms[i])
			if !ok {
				continue
			}
			f, err := s.detectLineage(ctx, repo, ms[i].Digest, m, true, false)
			if err != nil {
				return err
			}
			if f == nil {
				continue
			}
			if err := s.lineage.PutLineage(ctx, f.lineage); err != nil && !errors.Is(err, metadata.ErrNotFound) {
				return err
			}
			added++
		}
		if len(ms) < 100 {
			break
		}
		after = ms[len(ms)-1].Digest
	}
	n, err := s.lineage.SetGolden(ctx, repo, true)
	if err != nil {
		return err
	}
	if added == 0 && n == 0 {
		return nil
	}
	firsts, err := s.lineage.FirstChains(ctx, repo)
	if err != nil {
		return err
	}
	rematched, err := s.rematch(ctx, firsts)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "repository became golden", "repo", repo, "recorded", added, "flagged", n, "bases_found", rematched)
	return nil
}

// rematch finds again the bases of base-less images whose first layer is
// among firsts.
func (s *Service) rematch(ctx context.Context, firsts []string) (int, error) {
	var found int
	for after := (metadata.ManifestRef{}); ; {
		refs, err := s.lineage.BaselessImages(ctx, firsts, after, 100)
		if err != nil {
			return found, err
		}
		for _, ref := range refs {
			stored, err := s.meta.GetManifest(ctx, ref.Repo, ref.Digest)
			if errors.Is(err, metadata.ErrNotFound) {
				continue
			}
			if err != nil {
				return found, err
			}
			m, ok := storedManifest(stored)
			if !ok {
				continue
			}
			old, err := s.lineage.GetLineage(ctx, ref.Repo, ref.Digest)
			if errors.Is(err, metadata.ErrNotFound) {
				continue // deleted since it was listed
			}
			if err != nil {
				return found, err
			}
			f, err := s.detectLineage(ctx, ref.Repo, ref.Digest, m, old.Golden, false)
			if err != nil {
				return found, err
			}
			if f == nil || f.lineage.Base.Repo == "" {
				continue
			}
			if err := s.lineage.PutLineage(ctx, f.lineage); err != nil && !errors.Is(err, metadata.ErrNotFound) {
				return found, err
			}
			found++
		}
		if len(refs) < 100 {
			return found, nil
		}
		after = refs[len(refs)-1]
	}
}
