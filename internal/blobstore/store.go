// Package blobstore keeps blob bytes by digest. It knows nothing about
// repositories: the metadata store decides who may see which blob.
package blobstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned when a blob or an upload does not exist.
var ErrNotFound = errors.New("blobstore: not found")

// Store holds committed blobs and the in-progress bytes of uploads.
//
// A blob becomes visible to Stat and Open only after CommitUpload has made
// its bytes durable and moved them into place; an upload's bytes are never
// visible as a blob. The store does not hash: callers verify digests while
// streaming and call CommitUpload only with a verified digest.
type Store interface {
	// Stat returns the size of a committed blob, or ErrNotFound.
	Stat(ctx context.Context, d digest.Digest) (int64, error)
	// Open returns a reader of a committed blob and its size, or ErrNotFound.
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error)
	// Delete removes a committed blob. Deleting a missing blob is ErrNotFound.
	Delete(ctx context.Context, d digest.Digest) error

	// StartUpload begins upload id and returns its initial state. A
	// driver that keeps an upload's progress outside itself (S3) returns
	// it as State; the caller records that state with the session and
	// passes the latest recorded one back on every later call, so that any
	// process may continue any upload. A driver that keeps its progress
	// itself (the filesystem) returns nil and ignores the states passed.
	StartUpload(ctx context.Context, id string) (State, error)
	// WriteUpload returns a writer that appends to the upload at offset,
	// the size that state records. Bytes beyond offset from an earlier,
	// failed write are discarded, so a retry that passes the state
	// recorded at the offset it retries from replaces a partial chunk.
	// Close must be called; its error says whether the bytes were written,
	// and after a successful Close the writer's State is the state to
	// record with the new offset.
	WriteUpload(ctx context.Context, id string, offset int64, state State) (UploadWriter, error)
	// ReadUpload returns a reader of the upload's bytes so far and the
	// state to record: a driver may have to finish storing the bytes to
	// read them (S3 completes its multipart upload), after which the
	// upload can be committed or cancelled but perhaps not appended to.
	ReadUpload(ctx context.Context, id string, state State) (io.ReadCloser, State, error)
	// CommitUpload makes the upload (exactly size bytes) durable and visible as
	// blob d, atomically, then removes the upload. If d already exists the
	// upload is simply removed (blobs are immutable and deduplicated).
	CommitUpload(ctx context.Context, id string, state State, d digest.Digest, size int64) error
	// CancelUpload removes the upload's bytes. Cancelling a missing upload
	// (for a driver with states: a nil state) is ErrNotFound.
	CancelUpload(ctx context.Context, id string, state State) error
	// Ping reports whether the store is reachable and writable.
	Ping(ctx context.Context) error
}

// State is a driver's opaque record of an upload's progress (see
// Store.StartUpload); nil means no upload.
type State []byte

// UploadWriter appends to an upload.
type UploadWriter interface {
	io.WriteCloser
	// State is the upload's state after a successful Close.
	State() State
}

// Aborter is an UploadWriter that can be given up without storing what it
// buffered, for a caller that must write nothing more to the upload (it
// lost its claim on the session). Its State is then meaningless.
type Aborter interface {
	Abort()
}

// LengthHinter is an UploadWriter that can be told, before its first
// Write, how many bytes its caller will write: knowing that a part will be
// whole, an object store's writer sends it on while its bytes arrive
// instead of holding it until it is full.
type LengthHinter interface {
	WillWrite(n int64)
}

// BlobCreator is a Store that can write a blob whose digest is known
// before its bytes straight to where the blob lives, rather than to an
// upload that CommitUpload then moves into place: on an object store that
// move is a server-side copy, which reads and writes every byte again.
type BlobCreator interface {
	// CreateBlob returns a writer of blob d's bytes, size of them (-1:
	// not known). Nothing of them is visible as d until the writer's
	// Commit, which fails unless exactly size bytes were written.
	CreateBlob(ctx context.Context, d digest.Digest, size int64) (BlobWriter, error)
}

// BlobWriter writes the bytes of one blob, invisibly until Commit. The
// store does not hash: the caller verifies the bytes while it writes them,
// and commits only bytes that hash to the blob's digest.
type BlobWriter interface {
	io.Writer
	// Commit makes the bytes written durable and visible as the blob,
	// atomically; if the blob is already there it stays as it is and the
	// bytes are dropped (blobs are immutable and deduplicated). On an
	// error nothing new is visible.
	Commit(ctx context.Context) error
	// Abort drops the bytes written, none of which becomes visible; it is
	// for every writer that is not committed. After Commit it does
	// nothing.
	Abort()
}

// Collector is a Store whose blobs garbage collection can list and remove
// while the registry keeps serving.
type Collector interface {
	// Walk calls fn for every committed blob, in no particular order; an
	// error from fn stops the walk and is returned.
	Walk(ctx context.Context, fn func(d digest.Digest) error) error
	// Collect removes blob d unless it was written, or reused by a
	// CommitUpload that found it present, at or after cutoff; removed
	// says whether it went, size how many bytes went with it. A CommitUpload racing Collect either finds
	// the blob gone and stores its own bytes, or marks it reused in time
	// for Collect to keep it: a commit that returned nil always leaves
	// the blob in place. A missing blob is not an error (removed false).
	Collect(ctx context.Context, d digest.Digest, cutoff time.Time) (size int64, removed bool, err error)
	// Reuse marks blob d as reused now, as CommitUpload does when it finds
	// the blob present, and reports whether it is in place: a Collect
	// racing it then either keeps the blob or took it first (false).
	Reuse(ctx context.Context, d digest.Digest) (present bool, err error)
}

// Redirector is a Store that can send clients to fetch a blob's bytes
// from the store itself (an object store's presigned URL), so that they
// do not pass through wharf.
type Redirector interface {
	// RedirectURL returns a short-lived URL from which a client without
	// credentials can GET blob d, Range requests included, or "" when the
	// store is configured not to redirect. It may not check that d
	// exists: callers ask only for blobs the metadata holds.
	RedirectURL(ctx context.Context, d digest.Digest) (string, error)
}

// UploadWalker is a Store whose upload area can be listed, so that the
// uploads a crash left without a session can be found and removed.
type UploadWalker interface {
	// WalkUploads calls fn for every upload in the upload area with the
	// time of its last write, in no particular order; an error from fn
	// stops the walk and is returned.
	WalkUploads(ctx context.Context, fn func(id string, written time.Time) error) error
}

// UploadObject is one object, or one unfinished multipart upload, in the
// upload area of an UploadSweeper.
type UploadObject struct {
	// Upload is the id of the upload it belongs to.
	Upload string
	// Name says which of the upload's objects it is, in the store's own
	// terms; the caller only hands it back.
	Name string
	// Written is when it was last written (a multipart upload: started).
	Written time.Time
}

// UploadSweeper is a Store that keeps an upload's progress in the state
// its caller records, not in its upload area (so CancelUpload needs that
// state), but whose upload area a background janitor can still list, to
// find the objects that no recorded state names: those of an upload
// whose session is gone, and those that a writer which had lost its claim
// on a live session stored.
type UploadSweeper interface {
	// WalkUploadObjects calls fn for every object and unfinished multipart
	// upload in the upload area, in no particular order; an error from fn
	// stops the walk and is returned.
	WalkUploadObjects(ctx context.Context, fn func(o UploadObject) error) error
	// Owns reports whether state, the recorded state of o's upload, names
	// o (as bytes of the upload, or as litter its next write removes).
	Owns(o UploadObject, state State) bool
	// RemoveUploadObject removes o; one already gone is no error.
	RemoveUploadObject(ctx context.Context, o UploadObject) error
}
