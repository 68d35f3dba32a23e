package metadata

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// Usage is the storage a repository or a namespace holds: the blobs
// linked into it and their bytes. A repository counts each blob it links
// once; a namespace counts each blob once however many of its
// repositories link it, and a blob linked in two namespaces counts in
// both. Manifests, kept in the metadata, are not counted.
type Usage struct {
	// Name is the repository or the namespace ("" for the namespace of
	// single-segment repositories).
	Name  string
	Blobs int64
	Bytes int64
}

// UsageStore is a Store that keeps per-repository and per-namespace
// usage up to date in the transactions that link and unlink blobs, so
// that reading it costs one row whatever is stored.
type UsageStore interface {
	// RepositoryUsage returns repo's usage, zero if it holds nothing.
	RepositoryUsage(ctx context.Context, repo string) (Usage, error)
	// NamespaceUsage returns ns's usage, zero if it holds nothing.
	NamespaceUsage(ctx context.Context, ns string) (Usage, error)
	// NamespaceHoldsBlob reports whether any repository of ns links d:
	// then linking d again in ns adds nothing to its usage.
	NamespaceHoldsBlob(ctx context.Context, ns string, d digest.Digest) (bool, error)
	// RecountUsage recomputes every usage from the links themselves,
	// repairing any drift, and returns the usages (repositories and
	// namespaces) it had to correct.
	RecountUsage(ctx context.Context) (int, error)
}
