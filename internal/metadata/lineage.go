package metadata

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// Lineage is what is known of one image manifest's base: the image whose
// layers its own layers start with. internal/registry finds the base and
// decides what is golden; the store keeps the answer and indexes it.
type Lineage struct {
	Repo   string
	Digest digest.Digest
	// Chain identifies the image's whole layer list, First its first
	// layer alone (see registry's layer chains): an image whose layers
	// start with a golden image's has, at that golden image's layer
	// count, the golden image's Chain.
	Chain  string
	First  string
	Layers int
	// Golden marks an image of a golden repository: one that images
	// pushed later are matched against.
	Golden bool
	// Base is the base found, zero when none was.
	Base BaseRef
	// Note says what was doubted on the way (an annotation naming a base
	// whose layers do not match), "" when nothing was.
	Note string
	// FindBase, when Base is zero, has the store find the base as it
	// records the lineage, in the same transaction: the golden image
	// other than this one whose Chain is the longest among these chains
	// (the image's chain_1 … chain_L), recorded with the tags pointing at
	// it and Source SourceLayers. A push that need not refuse on the
	// answer leaves the lookup to the writer, whose pages are warm, where
	// a read of its own would start cold after every commit; and the
	// golden set it reads cannot change before the lineage is written.
	FindBase []string
}

// How a base was found (BaseRef.Source).
const (
	SourceAnnotation = "annotation"
	SourceLayers     = "layers"
)

// BaseRef names the image another was built on.
type BaseRef struct {
	Repo   string
	Digest digest.Digest
	// Tags are the base's tags that named it when it was found (the
	// annotation's tag, or every tag then pointing at it).
	Tags   []string
	Layers int
	// Source is how it was found: "annotation" or "layers".
	Source string
}

// GoldenImage is one golden image, as a layer-chain lookup finds it.
type GoldenImage struct {
	Repo   string
	Digest digest.Digest
	Chain  string
	Layers int
	// Tags are the tags pointing at it, by name: what a push that finds
	// it as its base records, read in the same lookup.
	Tags []string
}

// BaseAmong is the base that golden, the answer of a chain lookup
// (longest first, as GoldenByChain gives it), names for image d of repo:
// the first golden image that is not d itself, found by its layers.
func BaseAmong(golden []GoldenImage, repo string, d digest.Digest) (BaseRef, bool) {
	for _, g := range golden {
		if g.Repo == repo && g.Digest == d {
			continue
		}
		return BaseRef{Repo: g.Repo, Digest: g.Digest, Tags: g.Tags, Layers: g.Layers, Source: SourceLayers}, true
	}
	return BaseRef{}, false
}

// DerivedImage is a tag whose image (or one platform of whose index) was
// built on a base.
type DerivedImage struct {
	Repo     string
	Tag      string
	Digest   digest.Digest // what the tag points at
	PushedAt time.Time
	Base     BaseRef
}

// DerivedQuery selects a page of the images built on BaseRepo.
type DerivedQuery struct {
	BaseRepo string
	// BaseDigests, if not empty, keeps images built on one of them.
	BaseDigests []digest.Digest
	// Visible, if not nil, keeps derived repositories a viewer may pull.
	Visible       *VisibleTo
	Offset, Limit int
}

// LineageStore keeps image lineage. Pushes write it in the manifest's
// transaction (Manifest.Lineage); the rest is for lookups and for the
// backfill when a repository becomes golden or stops being golden.
type LineageStore interface {
	// PutLineage records l, replacing what was recorded for the manifest;
	// ErrNotFound if the manifest is not stored.
	PutLineage(ctx context.Context, l *Lineage) error
	// GetLineage returns the lineage recorded for manifest d of repo, or
	// ErrNotFound.
	GetLineage(ctx context.Context, repo string, d digest.Digest) (*Lineage, error)
	// GoldenByChain returns the golden images whose Chain is among
	// chains, longest first, with their tags: one indexed lookup whatever
	// the number of golden images.
	GoldenByChain(ctx context.Context, chains []string) ([]GoldenImage, error)
	// SetGolden flags (or unflags) every recorded image of repo as
	// golden. Unflagging also forgets the bases found in repo by their
	// layers, which were found only because repo was golden. It returns
	// how many images changed.
	SetGolden(ctx context.Context, repo string, golden bool) (int64, error)
	// GoldenRepositories lists the repositories with golden images.
	GoldenRepositories(ctx context.Context) ([]string, error)
	// ManifestsWithoutLineage lists up to n manifests of repo, in digest
	// order after `after`, with no recorded lineage (stored before lineage
	// was, or not images), content included.
	ManifestsWithoutLineage(ctx context.Context, repo string, after digest.Digest, n int) ([]Manifest, error)
	// FirstChains lists the distinct First chains of repo's images.
	FirstChains(ctx context.Context, repo string) ([]string, error)
	// BaselessImages lists up to n images, after `after`, with no base
	// whose First is among firsts: what a backfill matches again when
	// golden images appear.
	BaselessImages(ctx context.Context, firsts []string, after ManifestRef, n int) ([]ManifestRef, error)
	// DerivedImages returns one page of the tags whose images were built
	// on q.BaseRepo, by repository and tag name, and how many match.
	DerivedImages(ctx context.Context, q DerivedQuery) ([]DerivedImage, int, error)
	// TagsAt lists the tags of repo that point at d, by name.
	TagsAt(ctx context.Context, repo string, d digest.Digest) ([]string, error)
	// TagTargets lists every tag of repo with what it points at and when
	// it was pushed; ErrNotFound if repo does not exist.
	TagTargets(ctx context.Context, repo string) ([]Tag, error)
}
