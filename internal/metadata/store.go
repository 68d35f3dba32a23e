package metadata

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// Store is the registry's metadata. Every implementation passes the suite
// in metadatatest. Listing methods return at most n entries after last, in
// lexical (byte) order; n <= 0 means no limit.
type Store interface {
	// RepositoryExists reports whether name has ever received content.
	RepositoryExists(ctx context.Context, name string) (bool, error)
	// ListRepositories lists repository names.
	ListRepositories(ctx context.Context, last string, n int) ([]string, error)

	// LinkBlob records that repo holds blob d of the given size, creating the
	// repository on first use.
	LinkBlob(ctx context.Context, repo string, d digest.Digest, size int64) error
	// BlobSize returns the size of blob d if repo holds it, else ErrNotFound.
	BlobSize(ctx context.Context, repo string, d digest.Digest) (int64, error)
	// AnyBlobSize returns the size of blob d if any repository holds it.
	AnyBlobSize(ctx context.Context, d digest.Digest) (int64, error)
	// BlobRepositories lists the repositories that hold blob d.
	BlobRepositories(ctx context.Context, d digest.Digest, last string, n int) ([]string, error)
	// UnlinkBlob removes repo's link to d, or returns ErrNotFound.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// MissingBlobs returns the digests among ds that repo does not hold.
	MissingBlobs(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error)

	// PutManifest stores m (idempotently) and points each tag at it, in one
	// transaction, creating the repository on first use.
	PutManifest(ctx context.Context, m *Manifest, tags []string) error
	// GetManifest returns the manifest d of repo, or ErrNotFound.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (*Manifest, error)
	// GetTaggedManifest returns the manifest tag points at, or ErrNotFound.
	GetTaggedManifest(ctx context.Context, repo, tag string) (*Manifest, error)
	// MissingManifests returns the digests among ds that repo does not hold.
	MissingManifests(ctx context.Context, repo string, ds []digest.Digest) ([]digest.Digest, error)
	// DeleteManifest removes manifest d and every tag pointing at it.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest) error
	// DeleteTag removes one tag, leaving the manifest in place.
	DeleteTag(ctx context.Context, repo, tag string) error
	// ListTags lists repo's tag names; ErrNotFound if repo does not exist.
	ListTags(ctx context.Context, repo, last string, n int) ([]string, error)
	// Referrers lists the manifests of repo whose subject is d, filtered by
	// artifactType when it is not empty.
	Referrers(ctx context.Context, repo string, d digest.Digest, artifactType string) ([]Descriptor, error)

	// CreateUpload records a new upload session.
	CreateUpload(ctx context.Context, u *Upload) error
	// GetUpload returns the session id of repo, or ErrNotFound.
	GetUpload(ctx context.Context, repo, id string) (*Upload, error)
	// AdvanceUpload moves a session from offset from to u.Offset with a new
	// hash state, store state and content, and ends its writer's lease, in one
	// write; ErrConflict (and nothing changed) if its offset is no longer
	// from or its writer is no longer u.Writer.
	AdvanceUpload(ctx context.Context, u *Upload, from int64) error
	// DeleteUpload removes a session, or returns ErrNotFound.
	DeleteUpload(ctx context.Context, repo, id string) error
	// StaleUploads lists up to n (> 0) sessions not written since before.
	StaleUploads(ctx context.Context, before time.Time, n int) ([]Upload, error)
	// UploadExists reports whether session id exists, in any repository.
	UploadExists(ctx context.Context, id string) (bool, error)
	// UploadStoreState returns the StoreState recorded for session id, in
	// any repository, or ErrNotFound: the upload janitor asks which
	// objects the session's state names.
	UploadStoreState(ctx context.Context, id string) ([]byte, error)

	// Stats counts the distinct blobs linked anywhere and their bytes.
	Stats(ctx context.Context) (Stats, error)

	// ListRepositoryInfo returns one page of repositories matching q and
	// how many match in all.
	ListRepositoryInfo(ctx context.Context, q RepositoryQuery) ([]RepositoryInfo, int, error)
	// GetRepositoryInfo returns one repository's summary with its readme,
	// or ErrNotFound.
	GetRepositoryInfo(ctx context.Context, name string) (*RepositoryInfo, error)
	// SetRepositoryDescription replaces the summary and readme of an
	// existing repository, or returns ErrNotFound.
	SetRepositoryDescription(ctx context.Context, name, description, readme string) error
	// DeleteRepository removes the repository with its tags, manifests and
	// blob links, or returns ErrNotFound.
	DeleteRepository(ctx context.Context, name string) error
	// ListTagInfo returns one page of repo's tags matching q and how many
	// match in all; ErrNotFound if repo does not exist.
	ListTagInfo(ctx context.Context, repo string, q TagQuery) ([]TagInfo, int, error)
	// GetTagInfo returns one tag with its manifest, or ErrNotFound.
	GetTagInfo(ctx context.Context, repo, tag string) (*TagInfo, error)
	// AddPulls adds counted pulls to repositories and tags in one
	// transaction; pulls of tags deleted since are skipped.
	AddPulls(ctx context.Context, pulls []Pull) error

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// UploadLeaser is a Store whose upload sessions several processes may
// write (replicas sharing one PostgreSQL). The offset check of
// AdvanceUpload alone would let two writers at one offset both write
// their bytes, and the loser's could replace the winner's in the blob
// store; so a writer claims the session before it writes any bytes,
// renews the claim while its body streams, and AdvanceUpload ends it.
// A claim lapses unless renewed, so that a writer which died does not
// hold its session for ever. Times come from the caller's clock.
type UploadLeaser interface {
	// SharedUploads reports whether processes other than this one may
	// write the store's sessions, so that writers must claim them. A
	// store only one process writes returns false: its callers serialise
	// their writers in memory and save a write per chunk.
	SharedUploads() bool
	// ClaimUpload makes token (not "") the writer of session id of repo
	// until until, if its offset is offset and no other writer's lease
	// is live at now. ErrConflict (and nothing changed) if it is not;
	// ErrNotFound if there is no such session.
	ClaimUpload(ctx context.Context, repo, id string, offset int64, token string, now, until time.Time) error
	// RenewUpload moves token's lease out to until. ErrConflict if token
	// is no longer the session's writer (another writer claimed it after
	// the lease lapsed, or the session advanced); ErrNotFound if there is
	// no such session.
	RenewUpload(ctx context.Context, repo, id, token string, until time.Time) error
	// ReleaseUpload ends token's lease if token still holds it; it is not
	// an error if it does not, or if the session is gone.
	ReleaseUpload(ctx context.Context, repo, id, token string) error
}

// EndedUploads is a Store that remembers which upload sessions have ended,
// for sessions the registry opens without recording them (their ids are
// signed, so a live one is recognised without a record): once finished or
// cancelled, such an id must not look like a new session again. An ended
// record is kept until ForgetEndedUploads, which the caller runs once the
// id has expired anyway.
type EndedUploads interface {
	// FinishEndedUpload links blob d (size bytes) to repo, removes session
	// id's record if it has one, and records id as ended, in one
	// transaction. Finishing an id already ended is not an error.
	FinishEndedUpload(ctx context.Context, repo, id string, started time.Time, d digest.Digest, size int64) error
	// EndUpload removes session id's record if it has one and records id
	// as ended, in one transaction; ending it twice is not an error.
	EndUpload(ctx context.Context, repo, id string, started time.Time) error
	// UploadEnded reports whether id of repo was recorded as ended.
	UploadEnded(ctx context.Context, repo, id string) (bool, error)
	// ForgetEndedUploads drops the ended records of sessions started
	// before before and returns how many it dropped.
	ForgetEndedUploads(ctx context.Context, before time.Time) (int, error)
}

// SmallBlobs is a Store that can keep the bytes of small blobs in their
// record (the one every stored blob has, see Collector.KeepBlob) instead
// of a blob store: committing such a blob is then one transaction, where
// a blob store needs its own writes and flushes before the link's. The
// caller decides what is small; the store holds whatever it is given.
type SmallBlobs interface {
	// PutSmallBlob records content as the bytes of blob d, links d to
	// repo (as LinkBlob) and ends the upload session end names, if any,
	// in one transaction. Bytes d's record holds already are kept.
	PutSmallBlob(ctx context.Context, repo string, d digest.Digest, content []byte, end UploadEnd) error
	// SmallBlob returns the bytes d's record holds; ErrNotFound when it
	// holds none (the blob store has them, or d is not stored).
	SmallBlob(ctx context.Context, d digest.Digest) ([]byte, error)
	// MountSmallBlob links d to repo if d's record holds its bytes,
	// dating the record as KeepBlob does, in one transaction, and reports
	// whether it did: a collection that takes the record first leaves
	// nothing to mount.
	MountSmallBlob(ctx context.Context, repo string, d digest.Digest) (bool, error)
	// LinkedBlob is BlobSize, and also says whether d's record holds its
	// bytes, so that a read or a mount goes to the right place at once.
	LinkedBlob(ctx context.Context, repo string, d digest.Digest) (BlobInfo, error)
	// AnyLinkedBlob is AnyBlobSize, and says the same.
	AnyLinkedBlob(ctx context.Context, d digest.Digest) (BlobInfo, error)
	// CollectSmallBlobs deletes up to n records that hold bytes and are
	// unused (as UnusedBlobs says, with the same before and linkSince),
	// skipping those another transaction holds, and returns them; with
	// dryRun it only lists them, after `after` in digest order.
	CollectSmallBlobs(ctx context.Context, before, linkSince time.Time, after digest.Digest, n int, dryRun bool) ([]UnusedBlob, error)
}

// BlobInfo is what a repository's link to a blob says of it.
type BlobInfo struct {
	Size int64
	// InRecord: the blob's record holds its bytes (SmallBlobs.SmallBlob).
	InRecord bool
}

// UploadEnd names the upload session whose last request carried a small
// blob whole, for PutSmallBlob to end with the commit.
type UploadEnd struct {
	// ID is the session's id; empty when there was none (a monolithic
	// POST).
	ID string
	// Started, when set, is the start of a session whose id the registry
	// signed instead of recording it: the id is recorded as ended, as
	// EndedUploads.FinishEndedUpload does.
	Started time.Time
}

// ManifestRef names a manifest in a repository.
type ManifestRef struct {
	Repo   string
	Digest digest.Digest
}

// Collector is a Store that garbage collection can ask what nothing uses
// any more. "before" is the grace cutoff: what was created or linked at or
// after it may belong to a push still under way and is never collected.
type Collector interface {
	// UntaggedManifests lists up to n manifests created before `before`
	// that no tag names, that no manifest of their repository lists as a
	// child, and whose subject, if they have one, is gone.
	UntaggedManifests(ctx context.Context, before time.Time, n int) ([]ManifestRef, error)
	// DeleteUntaggedManifest deletes the manifest if it is still such a
	// manifest, in one transaction, and reports whether it did. A
	// WebhookStore records its delete event there, by the context's
	// ChangeInfo actor.
	DeleteUntaggedManifest(ctx context.Context, ref ManifestRef, before time.Time) (bool, error)
	// PruneBlobLinks removes (or with dryRun only counts) the links made
	// before `before` to blobs that no manifest of the linking repository
	// references.
	PruneBlobLinks(ctx context.Context, before time.Time, dryRun bool) (int64, error)
	// BlobsInUse reports which of ds a manifest references or a link made
	// at or after `before` reaches; with a zero `before`, any link at all.
	// A collection passes zero: a link pruning kept may have lost its
	// manifest since, and is pruned next time.
	BlobsInUse(ctx context.Context, ds []digest.Digest, before time.Time) (map[digest.Digest]bool, error)
	// RenewBlobLink dates repo's link to d now, as linking it again would,
	// unless the link was made or renewed at or after since (so that a
	// read renews a link at most once in a while). ErrNotFound when repo
	// holds no such link, pruned perhaps since it was last read.
	RenewBlobLink(ctx context.Context, repo string, d digest.Digest, since time.Time) error

	// KeepBlob dates blob d's record (every stored blob has one: LinkBlob
	// writes it too) as used now, creating it if needed, so that a
	// collection whose cutoff is earlier keeps d's bytes. A commit or a
	// mount calls it before it looks for the bytes: a DeleteUnusedBlob of d
	// under way finishes first (the bytes are then gone, and the caller
	// stores its own), or sees the new date and keeps them.
	KeepBlob(ctx context.Context, d digest.Digest, size int64) error
	// UnusedBlobs lists, in digest order after `after`, up to n recorded
	// blobs last used before `before` that no manifest references and no
	// link made at or after linkSince reaches (a zero linkSince: no link at
	// all). n <= 0 means no limit.
	UnusedBlobs(ctx context.Context, before, linkSince time.Time, after digest.Digest, n int) ([]UnusedBlob, error)
	// DeleteUnusedBlob deletes d's record if it is still unused (no link,
	// no manifest reference, last used before `before`), and calls remove,
	// which deletes the bytes, inside the transaction that holds the
	// record: a KeepBlob or LinkBlob of d waits until the bytes are gone.
	// A record another collection holds is skipped. It reports whether the
	// record went; an error from remove keeps it.
	DeleteUnusedBlob(ctx context.Context, d digest.Digest, before time.Time, remove func(ctx context.Context) error) (bool, error)
	// DeleteUnusedBlobRecords deletes, in one transaction, the records of
	// those of ds that are still unused (as DeleteUnusedBlob, but without
	// bytes to remove: a store that guards its own blobs removed them
	// already), skipping records another transaction holds. It reports how
	// many went.
	DeleteUnusedBlobRecords(ctx context.Context, ds []digest.Digest, before time.Time) (int64, error)
}

// UnusedBlob is a stored blob that nothing references.
type UnusedBlob struct {
	Digest digest.Digest
	Size   int64
}
