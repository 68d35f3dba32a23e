package metadatatest

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// hashState returns the marshalled state of sha256 after hashing the first
// n bytes of a fixed stream, as the registry stores it.
func hashState(t *testing.T, n int) []byte {
	t.Helper()
	h := sha256.New()
	h.Write(bytes.Repeat([]byte{0, 1, 2, 0xff}, n/4+1)[:n])
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// timeAt returns a wall-clock time offset from now, at microsecond
// precision so that every database can store it exactly.
func timeAt(offset time.Duration) time.Time {
	return time.Now().Add(offset).Truncate(time.Microsecond)
}

// newUpload returns a fresh session of repo at offset 0.
func newUpload(t *testing.T, repo string) *metadata.Upload {
	started := timeAt(-time.Minute)
	return &metadata.Upload{
		ID:        newUploadID(),
		Repo:      repo,
		Algorithm: digest.SHA256,
		HashState: hashState(t, 0),
		StartedAt: started,
		UpdatedAt: started,
	}
}

func createUpload(t *testing.T, s metadata.Store, u *metadata.Upload) {
	t.Helper()
	if err := s.CreateUpload(t.Context(), u); err != nil {
		t.Fatalf("CreateUpload(%s, %s): %v", u.Repo, u.ID, err)
	}
}

// advance returns a copy of u moved n bytes on, written at updated.
func advance(t *testing.T, u *metadata.Upload, n int64, updated time.Time) *metadata.Upload {
	v := *u
	v.Offset += n
	v.HashState = hashState(t, int(v.Offset))
	v.UpdatedAt = updated
	return &v
}

// wantUpload checks that the store holds exactly want.
func wantUpload(t *testing.T, s metadata.Store, want *metadata.Upload) {
	t.Helper()
	call := fmt.Sprintf("GetUpload(%s, %s)", want.Repo, want.ID)
	got, err := s.GetUpload(t.Context(), want.Repo, want.ID)
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	if got.ID != want.ID || got.Repo != want.Repo || got.Algorithm != want.Algorithm || got.Offset != want.Offset {
		t.Errorf("%s = {%s %s %s offset %d}; want {%s %s %s offset %d}", call,
			got.ID, got.Repo, got.Algorithm, got.Offset, want.ID, want.Repo, want.Algorithm, want.Offset)
	}
	if !bytes.Equal(got.HashState, want.HashState) {
		t.Errorf("%s hash state = %x; want %x", call, got.HashState, want.HashState)
	}
	if !bytes.Equal(got.StoreState, want.StoreState) {
		t.Errorf("%s store state = %q; want %q", call, got.StoreState, want.StoreState)
	}
	if (got.Content == nil) != (want.Content == nil) || !bytes.Equal(got.Content, want.Content) {
		t.Errorf("%s content = %q; want %q", call, got.Content, want.Content)
	}
	if got.Writer != want.Writer || !got.LeaseUntil.Equal(want.LeaseUntil) {
		t.Errorf("%s lease = %q until %v; want %q until %v", call, got.Writer, got.LeaseUntil, want.Writer, want.LeaseUntil)
	}
	if !got.StartedAt.Equal(want.StartedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("%s times = started %v, updated %v; want %v, %v", call,
			got.StartedAt, got.UpdatedAt, want.StartedAt, want.UpdatedAt)
	}
}

func wantNoUpload(t *testing.T, s metadata.Store, repo, id string) {
	t.Helper()
	_, err := s.GetUpload(t.Context(), repo, id)
	wantErr(t, fmt.Sprintf("GetUpload(%s, %s)", repo, id), err, metadata.ErrNotFound)
}

func testUploadRoundTrip(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo")
	createUpload(t, s, u)
	wantUpload(t, s, u)

	// Sessions may start at an offset and with another algorithm.
	v := newUpload(t, "repo")
	v.Algorithm = digest.SHA512
	v.Offset = 12345
	v.HashState = []byte{0, 0xff, 0, 1, 2, 3, 0}
	createUpload(t, s, v)
	wantUpload(t, s, v)
	wantUpload(t, s, u)

	// An upload session does not create its repository: nothing is in it yet.
	wantRepoExists(t, s, "repo", false)
}

func testUploadDuplicate(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo")
	createUpload(t, s, u)
	dup := newUpload(t, "other")
	dup.ID = u.ID
	dup.Offset = 99
	if err := s.CreateUpload(t.Context(), dup); err == nil {
		t.Errorf("CreateUpload with an existing id succeeded; want an error")
	}
	wantUpload(t, s, u)
}

func testGetUploadWrongRepo(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo/a")
	createUpload(t, s, u)
	wantNoUpload(t, s, "repo/b", u.ID)
	wantNoUpload(t, s, "repo", u.ID)
	wantUpload(t, s, u)
}

func testGetUploadMissing(t *testing.T, s metadata.Store) {
	wantNoUpload(t, s, "repo", newUploadID())
	createUpload(t, s, newUpload(t, "repo"))
	wantNoUpload(t, s, "repo", newUploadID())
}

func testAdvanceUpload(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo")
	createUpload(t, s, u)
	v := advance(t, u, 4096, timeAt(-30*time.Second))
	if err := s.AdvanceUpload(t.Context(), v, 0); err != nil {
		t.Fatalf("AdvanceUpload(0 -> 4096): %v", err)
	}
	wantUpload(t, s, v)

	w := advance(t, v, 1, timeAt(0))
	if err := s.AdvanceUpload(t.Context(), w, 4096); err != nil {
		t.Fatalf("AdvanceUpload(4096 -> 4097): %v", err)
	}
	wantUpload(t, s, w)

	// Advancing by nothing (an empty chunk) is allowed.
	if err := s.AdvanceUpload(t.Context(), w, w.Offset); err != nil {
		t.Fatalf("AdvanceUpload(%d -> %d): %v", w.Offset, w.Offset, err)
	}
	wantUpload(t, s, w)
}

func testAdvanceUploadConflict(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo")
	createUpload(t, s, u)
	v := advance(t, u, 100, timeAt(0))
	if err := s.AdvanceUpload(t.Context(), v, 0); err != nil {
		t.Fatalf("AdvanceUpload(0 -> 100): %v", err)
	}
	for _, from := range []int64{0, 50, 99, 101, 200} {
		stale := advance(t, v, 10, timeAt(time.Second))
		err := s.AdvanceUpload(t.Context(), stale, from)
		wantErr(t, fmt.Sprintf("AdvanceUpload(from %d) at offset 100", from), err, metadata.ErrConflict)
	}
	// A failed advance changes nothing.
	wantUpload(t, s, v)
}

// testUploadStoreState: the blob store's state of an upload is kept with
// the offset, replaced by the advance that moves the offset, and left
// alone by one that lost the race.
func testUploadStoreState(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo")
	u.StoreState = []byte(`{"mpu":"m-1"}`)
	createUpload(t, s, u)
	wantUpload(t, s, u)
	v := advance(t, u, 6<<20, timeAt(0))
	v.StoreState = []byte("\x00binary\xff{\"mpu\":\"m-1\",\"parts\":[1]}")
	if err := s.AdvanceUpload(t.Context(), v, 0); err != nil {
		t.Fatalf("AdvanceUpload(0 -> %d): %v", v.Offset, err)
	}
	wantUpload(t, s, v)
	lost := advance(t, u, 10, timeAt(time.Second))
	lost.StoreState = []byte(`{"mpu":"m-2"}`)
	err := s.AdvanceUpload(t.Context(), lost, 0)
	wantErr(t, "AdvanceUpload(from 0) at a later offset", err, metadata.ErrConflict)
	wantUpload(t, s, v)
	// An advance that keeps the offset (a driver's read-back) may still
	// replace the state.
	w := *v
	w.StoreState = []byte(`{"assembled":true}`)
	if err := s.AdvanceUpload(t.Context(), &w, v.Offset); err != nil {
		t.Fatalf("AdvanceUpload(same offset): %v", err)
	}
	wantUpload(t, s, &w)
}

// A session whose record keeps its bytes has them back with it, and an
// advance that moves them to the blob store clears them.
func testUploadContent(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo")
	u.Offset, u.Content = 5, []byte("\x00abc\xff")
	createUpload(t, s, u)
	wantUpload(t, s, u)
	v := advance(t, u, 9, timeAt(0))
	v.Content, v.StoreState = nil, []byte(`{"file":true}`)
	if err := s.AdvanceUpload(t.Context(), v, 5); err != nil {
		t.Fatalf("AdvanceUpload(5 -> 9): %v", err)
	}
	wantUpload(t, s, v)
}

func testAdvanceUploadMissing(t *testing.T, s metadata.Store) {
	u := newUpload(t, "repo")
	err := s.AdvanceUpload(t.Context(), advance(t, u, 10, timeAt(0)), 0)
	wantErr(t, "AdvanceUpload of unknown session", err, metadata.ErrNotFound)

	createUpload(t, s, u)
	other := advance(t, u, 10, timeAt(0))
	other.Repo = "other"
	err = s.AdvanceUpload(t.Context(), other, 0)
	wantErr(t, "AdvanceUpload in another repository", err, metadata.ErrNotFound)
	wantUpload(t, s, u)

	if err := s.DeleteUpload(t.Context(), u.Repo, u.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	err = s.AdvanceUpload(t.Context(), advance(t, u, 10, timeAt(0)), 0)
	wantErr(t, "AdvanceUpload of deleted session", err, metadata.ErrNotFound)
}

func testDeleteUpload(t *testing.T, s metadata.Store) {
	u, keep := newUpload(t, "repo"), newUpload(t, "repo")
	createUpload(t, s, u)
	createUpload(t, s, keep)
	if err := s.DeleteUpload(t.Context(), u.Repo, u.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	wantNoUpload(t, s, u.Repo, u.ID)
	wantUpload(t, s, keep)
	// The id may be used again.
	createUpload(t, s, u)
	wantUpload(t, s, u)
}

func testDeleteUploadMissing(t *testing.T, s metadata.Store) {
	err := s.DeleteUpload(t.Context(), "repo", newUploadID())
	wantErr(t, "DeleteUpload of unknown session", err, metadata.ErrNotFound)

	u := newUpload(t, "repo")
	createUpload(t, s, u)
	err = s.DeleteUpload(t.Context(), "other", u.ID)
	wantErr(t, "DeleteUpload in another repository", err, metadata.ErrNotFound)
	wantUpload(t, s, u)

	if err := s.DeleteUpload(t.Context(), u.Repo, u.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	err = s.DeleteUpload(t.Context(), u.Repo, u.ID)
	wantErr(t, "second DeleteUpload", err, metadata.ErrNotFound)
}

func testStaleUploads(t *testing.T, s metadata.Store) {
	cutoff := timeAt(-time.Hour)
	oldest, old, fresh := newUpload(t, "repo/a"), newUpload(t, "repo/b"), newUpload(t, "repo/a")
	oldest.StartedAt, oldest.UpdatedAt = timeAt(-4*time.Hour), timeAt(-3*time.Hour)
	old.StartedAt, old.UpdatedAt = timeAt(-3*time.Hour), timeAt(-2*time.Hour)
	old.Offset = 10
	fresh.StartedAt = timeAt(-5 * time.Hour) // started long ago, but written lately
	fresh.UpdatedAt = timeAt(-time.Minute)
	for _, u := range []*metadata.Upload{oldest, old, fresh} {
		createUpload(t, s, u)
	}

	wantStale := func(n int, want ...*metadata.Upload) {
		t.Helper()
		got, err := s.StaleUploads(t.Context(), cutoff, n)
		if err != nil {
			t.Fatalf("StaleUploads(%d): %v", n, err)
		}
		var gotIDs, wantIDs []string
		for _, u := range got {
			gotIDs = append(gotIDs, u.ID)
		}
		for _, u := range want {
			wantIDs = append(wantIDs, u.ID)
		}
		slices.Sort(gotIDs)
		slices.Sort(wantIDs)
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("StaleUploads(%d) = %q; want %q", n, gotIDs, wantIDs)
		}
		// The caller needs repo and id to cancel a session.
		for _, g := range got {
			for _, w := range want {
				if g.ID == w.ID && (g.Repo != w.Repo || g.Offset != w.Offset || g.Algorithm != w.Algorithm || !g.UpdatedAt.Equal(w.UpdatedAt)) {
					t.Errorf("StaleUploads(%d) entry %s = {%s offset %d %s updated %v}; want {%s offset %d %s updated %v}", n, g.ID,
						g.Repo, g.Offset, g.Algorithm, g.UpdatedAt, w.Repo, w.Offset, w.Algorithm, w.UpdatedAt)
				}
			}
		}
	}
	wantStale(10, oldest, old)

	got, err := s.StaleUploads(t.Context(), cutoff, 1)
	if err != nil || len(got) != 1 || (got[0].ID != oldest.ID && got[0].ID != old.ID) {
		t.Errorf("StaleUploads(1) = %v, %v; want one of the two stale sessions", got, err)
	}

	// Writing to a session makes it fresh again.
	if err := s.AdvanceUpload(t.Context(), advance(t, oldest, 5, timeAt(0)), 0); err != nil {
		t.Fatalf("AdvanceUpload: %v", err)
	}
	wantStale(10, old)

	if err := s.DeleteUpload(t.Context(), old.Repo, old.ID); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	wantStale(10)
}

func testUploadExists(t *testing.T, s metadata.Store) {
	ctx := t.Context()
	u := newUpload(t, "repo/a")
	createUpload(t, s, u)
	for id, want := range map[string]bool{u.ID: true, newUploadID(): false} {
		if got, err := s.UploadExists(ctx, id); err != nil || got != want {
			t.Errorf("UploadExists(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	if err := s.DeleteUpload(ctx, u.Repo, u.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UploadExists(ctx, u.ID); err != nil || got {
		t.Errorf("UploadExists of a deleted session = %v, %v; want false", got, err)
	}
}

func testUploadStoreStateByID(t *testing.T, s metadata.Store) {
	ctx := t.Context()
	u := newUpload(t, "repo/a")
	u.StoreState = []byte(`{"mpu":"m1"}`)
	createUpload(t, s, u)
	if got, err := s.UploadStoreState(ctx, u.ID); err != nil || string(got) != string(u.StoreState) {
		t.Errorf("UploadStoreState(%s) = %q, %v; want %q", u.ID, got, err, u.StoreState)
	}
	if _, err := s.UploadStoreState(ctx, newUploadID()); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("UploadStoreState of an unknown session: %v; want ErrNotFound", err)
	}
}
