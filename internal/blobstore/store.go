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
	// Drivers backed by files return an *os.File so that HTTP responses can
	// use sendfile.
	Open(ctx context.Context, d digest.Digest) (io.ReadSeekCloser, int64, error)
	// Delete removes a committed blob. Deleting a missing blob is ErrNotFound.
	Delete(ctx context.Context, d digest.Digest) error

	// StartUpload creates an empty upload area for id.
	StartUpload(ctx context.Context, id string) error
	// WriteUpload returns a writer that appends to the upload at offset.
	// Bytes beyond offset from an earlier, failed write are discarded first,
	// so a retried chunk replaces a partial one. Close must be called; its
	// error says whether the bytes were written.
	WriteUpload(ctx context.Context, id string, offset int64) (io.WriteCloser, error)
	// ReadUpload returns a reader of the upload's bytes so far.
	ReadUpload(ctx context.Context, id string) (io.ReadCloser, error)
	// UploadSize returns how many bytes the upload holds.
	UploadSize(ctx context.Context, id string) (int64, error)
	// CommitUpload makes the upload (exactly size bytes) durable and visible as
	// blob d, atomically, then removes the upload. If d already exists the
	// upload is simply removed (blobs are immutable and deduplicated).
	CommitUpload(ctx context.Context, id string, d digest.Digest, size int64) error
	// CancelUpload removes the upload area. Cancelling a missing upload is
	// ErrNotFound.
	CancelUpload(ctx context.Context, id string) error
	// Ping reports whether the store is reachable and writable.
	Ping(ctx context.Context) error
}

// Collector is a Store whose blobs garbage collection can list and remove
// while the registry keeps serving.
type Collector interface {
	// Walk calls fn for every committed blob, in no particular order; an
	// error from fn stops the walk and is returned.
	Walk(ctx context.Context, fn func(d digest.Digest, size int64) error) error
	// Collect removes blob d unless it was written, or reused by a
	// CommitUpload that found it present, at or after cutoff; removed
	// says whether it went. A CommitUpload racing Collect either finds
	// the blob gone and stores its own bytes, or marks it reused in time
	// for Collect to keep it: a commit that returned nil always leaves
	// the blob in place. A missing blob is not an error (removed false).
	Collect(ctx context.Context, d digest.Digest, cutoff time.Time) (removed bool, err error)
	// Reuse marks blob d as reused now, as CommitUpload does when it finds
	// the blob present, and reports whether it is in place: a Collect
	// racing it then either keeps the blob or took it first (false).
	Reuse(ctx context.Context, d digest.Digest) (present bool, err error)
}

// UploadWalker is a Store whose upload area can be listed, so that the
// uploads a crash left without a session can be found and removed.
type UploadWalker interface {
	// WalkUploads calls fn for every upload in the upload area with the
	// time of its last write, in no particular order; an error from fn
	// stops the walk and is returned.
	WalkUploads(ctx context.Context, fn func(id string, written time.Time) error) error
}
