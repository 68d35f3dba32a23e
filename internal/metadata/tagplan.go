package metadata

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// TagTarget is a tag and the manifest it points at.
type TagTarget struct {
	Name   string
	Digest digest.Digest
}

// TagMove is a further change of a tag that goes with a write: Name is
// pointed at Digest, recorded as pushed by PushedBy, or deleted when
// Digest is "".
type TagMove struct {
	Name     string
	Digest   digest.Digest
	PushedBy string
}

// TagPlan decides, from a repository's tags as they stand inside the
// transaction of a write and before it, which tag moves go with the
// write, or refuses it with an error that the write returns as is. It may
// run more than once (a retried transaction) and must not keep state.
type TagPlan func(tags []TagTarget) ([]TagMove, error)

// TagPlanner is a Store whose tag writes can carry further moves in the
// same transaction, so that rules over several tags (semver floating
// tags) hold under concurrent writes: the plans of one repository's
// writes run one after the other, each seeing the last one's moves.
type TagPlanner interface {
	// PutManifestPlanned is PutManifest with plan's moves applied after
	// the tags, in its transaction.
	PutManifestPlanned(ctx context.Context, m *Manifest, tags []string, plan TagPlan) error
	// DeleteManifestPlanned is DeleteManifest with plan's moves applied
	// after the delete, in its transaction.
	DeleteManifestPlanned(ctx context.Context, repo string, d digest.Digest, plan TagPlan) error
	// DeleteTagPlanned is DeleteTag with plan's moves applied after the
	// delete, in its transaction.
	DeleteTagPlanned(ctx context.Context, repo, tag string, plan TagPlan) error
}
