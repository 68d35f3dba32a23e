// Package blobstoretest is the contract every blobstore.Store driver must
// pass. A driver's tests call Run with a constructor for an empty store.
package blobstoretest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

// Run runs the contract suite. newStore must return a new, empty store for
// each call; it registers its own cleanup with t.
//
// The suite keeps every upload's state as a registry does: it records the
// state each call returns and passes the latest back (a retry passes the
// one recorded at the offset it retries from). Bodies of up to 12 MiB
// cross the part boundaries of a driver with 5 MiB parts.
func Run(t *testing.T, newStore func(t *testing.T) blobstore.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, blobstore.Store)
	}{
		{"Stat_MissingBlobIsNotFound", testStatMissingBlob},
		{"Open_MissingBlobIsNotFound", testOpenMissingBlob},
		{"Delete_MissingBlobIsNotFound", testDeleteMissingBlob},
		{"CommitUpload_ChunkedWritesBecomeBlob", testCommitChunked},
		{"CommitUpload_EmptyBlob", testCommitEmpty},
		{"CommitUpload_LargeBlobThroughCopy", testCommitLarge},
		{"CommitUpload_ChunksCrossParts", testCommitAcrossParts},
		{"CommitUpload_SHA512Digest", testCommitSHA512},
		{"Open_SeeksWithinBlob", testOpenSeeks},
		{"Delete_MakesBlobInvisible", testDeleteInvisible},
		{"Digests_InvalidAreRejected", testInvalidDigests},

		{"Upload_MissingIsNotFound", testMissingUpload},
		{"WriteUpload_RetryAtEarlierOffsetReplacesTail", testRetryWrite},
		{"WriteUpload_RetryAcrossParts", testRetryAcrossParts},
		{"WriteUpload_OffsetBeyondSizeFails", testWriteBeyondSize},
		{"Upload_InvisibleBeforeCommit", testUploadInvisible},
		{"CommitUpload_WrongSizeRevealsNothing", testCommitWrongSize},
		{"CommitUpload_RemovesUpload", testCommitRemovesUpload},
		{"CommitUpload_SameDigestTwiceDeduplicates", testCommitDedup},
		{"CommitUpload_ConcurrentSameDigest", testCommitConcurrent},
		{"CancelUpload_RemovesUpload", testCancel},
		{"ReadUpload_ReturnsBytesSoFar", testReadUpload},
		{"UploadIDs_InvalidAreRejected", testInvalidIDs},
		{"UploadIDs_ValidAreAccepted", testValidIDs},
		{"Methods_CancelledContextFails", testCancelledContext},
		{"Ping_Succeeds", testPing},

		{"CreateBlob_CommitRevealsBlob", testCreateCommit},
		{"CreateBlob_SHA512Digest", testCreateSHA512},
		{"CreateBlob_WrongSizeRevealsNothing", testCreateWrongSize},
		{"CreateBlob_AbortRevealsNothing", testCreateAbort},
		{"CreateBlob_CommitKeepsStoredBlob", testCreateKeepsExisting},
		{"CreateBlob_ConcurrentSameDigest", testCreateConcurrent},
		{"CreateBlob_CancelledContextRevealsNothing", testCreateCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, newStore(t)) })
	}
}

// data returns n deterministic pseudo-random bytes for seed.
func data(n int, seed byte) []byte {
	b := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{seed})
	_, _ = r.Read(b)
	return b
}

func sha256Of(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:]))
}

func sha512Of(b []byte) digest.Digest {
	sum := sha512.Sum512(b)
	return digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
}

// newID returns a fresh upload id of the kind the registry generates.
func newID() string {
	return "upload-" + rand.Text()
}

// startUpload starts a new upload and returns its id and state.
func startUpload(t *testing.T, s blobstore.Store) (string, blobstore.State) {
	t.Helper()
	id := newID()
	st, err := s.StartUpload(t.Context(), id)
	if err != nil {
		t.Fatalf("StartUpload(%q): %v", id, err)
	}
	return id, st
}

// write writes b to the upload at offset, from state st, with a single
// Write, and returns the state to record.
func write(t *testing.T, s blobstore.Store, id string, offset int64, st blobstore.State, b []byte) blobstore.State {
	t.Helper()
	w, err := s.WriteUpload(t.Context(), id, offset, st)
	if err != nil {
		t.Fatalf("WriteUpload(%q, %d): %v", id, offset, err)
	}
	if n, err := w.Write(b); err != nil || n != len(b) {
		w.Close()
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(b))
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return w.State()
}

// upload starts an upload holding b and returns its id and state.
func upload(t *testing.T, s blobstore.Store, b []byte) (string, blobstore.State) {
	t.Helper()
	id, st := startUpload(t, s)
	return id, write(t, s, id, 0, st, b)
}

// commit stores b as a blob and returns its sha256 digest.
func commit(t *testing.T, s blobstore.Store, b []byte) digest.Digest {
	t.Helper()
	d := sha256Of(b)
	id, st := upload(t, s, b)
	if err := s.CommitUpload(t.Context(), id, st, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload(%q, %s): %v", id, d, err)
	}
	return d
}

// wantBlob checks that Stat and Open report blob d with exactly want.
func wantBlob(t *testing.T, s blobstore.Store, d digest.Digest, want []byte) {
	t.Helper()
	size, err := s.Stat(t.Context(), d)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Stat(%s) = %d, %v; want %d, nil", d, size, err, len(want))
	}
	r, size, err := s.Open(t.Context(), d)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Open(%s) = %d, %v; want %d, nil", d, size, err, len(want))
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %s: %v", d, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("blob %s: read %d bytes that differ from the %d written", d, len(got), len(want))
	}
}

// wantNoBlob checks that Stat and Open report blob d as not found.
func wantNoBlob(t *testing.T, s blobstore.Store, d digest.Digest) {
	t.Helper()
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat(%s) error = %v; want ErrNotFound", d, err)
	}
	r, _, err := s.Open(t.Context(), d)
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Open(%s) error = %v; want ErrNotFound", d, err)
	}
}

// wantNoUpload checks that upload id, whose last recorded state was st,
// no longer has bytes to read.
func wantNoUpload(t *testing.T, s blobstore.Store, id string, st blobstore.State) {
	t.Helper()
	r, _, err := s.ReadUpload(t.Context(), id, st)
	if err == nil {
		r.Close()
	}
	if !errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("ReadUpload(%q) error = %v; want ErrNotFound", id, err)
	}
}

// wantUpload checks that ReadUpload reports exactly want, and returns the
// state it says to record.
func wantUpload(t *testing.T, s blobstore.Store, id string, st blobstore.State, want []byte) blobstore.State {
	t.Helper()
	r, st, err := s.ReadUpload(t.Context(), id, st)
	if err != nil {
		t.Fatalf("ReadUpload(%q): %v", id, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading upload %q: %v", id, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("upload %q: read %d bytes that differ from the %d expected", id, len(got), len(want))
	}
	return st
}

// wantInvalid checks that err rejects bad input: an error, but not
// ErrNotFound, which would tell the caller that valid input is missing.
func wantInvalid(t *testing.T, call string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("%s error = %v; want an invalid-input error", call, err)
	}
}
