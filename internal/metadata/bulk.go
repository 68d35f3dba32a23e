package metadata

import (
	"context"

	"github.com/opencontainers/go-digest"
)

// Kind names one sort of durable record, as Bulk copies them.
type Kind string

// The kinds of durable record. Upload sessions are not among them: an
// upload's bytes live in the blob store it began in, so a session cannot
// move to another pair of stores.
const (
	KindUsers          Kind = "users"
	KindOrgs           Kind = "organisations"
	KindMembers        Kind = "memberships"
	KindTokens         Kind = "access tokens"
	KindSigningKeys    Kind = "signing keys"
	KindVisibility     Kind = "visibility"
	KindRepositories   Kind = "repositories"
	KindRepositoryInfo Kind = "repository info"
	KindBlobLinks      Kind = "blob links"
	KindManifests      Kind = "manifests"
	KindManifestRefs   Kind = "manifest references"
	KindTags           Kind = "tags"
	KindPolicies       Kind = "policies"
	KindLineage        Kind = "image lineage"
)

// Kinds lists every kind in an order that Load can follow: what a record
// refers to (its user, organisation, repository or manifest) comes first.
func Kinds() []Kind {
	return []Kind{
		KindUsers, KindOrgs, KindMembers, KindTokens, KindSigningKeys, KindVisibility,
		KindRepositories, KindRepositoryInfo, KindBlobLinks, KindManifests, KindManifestRefs, KindTags,
		KindPolicies, KindLineage,
	}
}

// Record is one durable record. Key identifies it among the records of
// its kind (a repository's records start with the repository's name, never
// a driver's row id); Values are the rest of it, each a string, an int64, a
// []byte or a bool, times as Unix nanoseconds (0 for none). A record that
// one driver dumps, another loads.
type Record struct {
	Key    []string
	Values []any
}

// LoadMode says what Load does with a record that is already there.
type LoadMode int

// Load modes.
const (
	// LoadKeep adds the missing records and leaves a record whose values
	// differ as it is, reporting it.
	LoadKeep LoadMode = iota
	// LoadReplace adds the missing records and overwrites a record whose
	// values differ.
	LoadReplace
	// LoadCheck writes nothing: it counts the missing records as Added
	// and reports the ones that differ.
	LoadCheck
)

// LoadResult counts what Load did with each record.
type LoadResult struct {
	Added    int // missing, and added (LoadCheck: missing)
	Same     int // there already, equal
	Replaced int // there with other values, overwritten (LoadReplace)
	// Differ holds the keys of the records there with other values, left
	// as they are (LoadKeep, LoadCheck).
	Differ [][]string
}

// Add accumulates r into lr.
func (lr *LoadResult) Add(r LoadResult) {
	lr.Added += r.Added
	lr.Same += r.Same
	lr.Replaced += r.Replaced
	lr.Differ = append(lr.Differ, r.Differ...)
}

// BlobRef is a blob that some repository links, with its size.
type BlobRef struct {
	Digest digest.Digest
	Size   int64
}

// Bulk is a Store whose durable records can be copied wholesale into
// another Store of any driver, for `wharf migrate`. Every implementation
// passes metadatatest.RunBulk.
type Bulk interface {
	// Dump returns up to n (> 0) records of kind whose keys come after
	// `after` (nil: from the first), in key order (byte order, field by
	// field).
	Dump(ctx context.Context, kind Kind, after []string, n int) ([]Record, error)
	// Load writes records of kind as mode says, in one transaction. A
	// record is the same as the one there when its values are equal, the
	// date of a blob link (which reads renew) aside. The
	// records another one refers to (see Kinds) must be loaded first; a
	// repository's records whose repository is missing are an error
	// (LoadCheck counts them missing).
	// Derived data (the totals Stats reports) is kept up to date.
	Load(ctx context.Context, kind Kind, recs []Record, mode LoadMode) (LoadResult, error)
	// LinkedBlobs returns up to n (> 0) of the blobs that some repository
	// links, whose digests come after `after`, in digest order.
	LinkedBlobs(ctx context.Context, after digest.Digest, n int) ([]BlobRef, error)
}
