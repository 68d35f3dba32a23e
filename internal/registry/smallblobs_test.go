package registry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// smallRig is a Service on SQLite and a directory, with a clock the test
// moves, and the stores under it to look at.
type smallRig struct {
	svc   *registry.Service
	db    *sqldb.DB
	blobs *fs.Store
	mu    sync.Mutex
	now   time.Time
	// key signs upload ids, as serve does on SQLite; nil records every
	// session at its POST, as on PostgreSQL.
	key []byte
}

func newSmallRig(t *testing.T, max int64) *smallRig {
	t.Helper()
	rig := &smallRig{now: time.Now(), key: []byte("0123456789abcdef0123456789abcdef")}
	clock := func() time.Time { rig.mu.Lock(); defer rig.mu.Unlock(); return rig.now }
	rig.db = openSQLite(t, clock)
	rig.attach(t, max)
	return rig
}

// attach (re)makes the service over the rig's stores with a limit.
func (r *smallRig) attach(t *testing.T, max int64) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if r.blobs == nil {
		var err error
		if r.blobs, err = fs.New(filepath.Join(t.TempDir(), "blobs"), log); err != nil {
			t.Fatal(err)
		}
	}
	clock := func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }
	r.svc = registry.New(r.db, r.blobs, log, registry.Options{SmallBlobMax: max, Now: clock, UploadKey: r.key})
}

func (r *smallRig) advance(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

// wantInStore says whether the blob store holds d.
func (r *smallRig) wantInStore(t *testing.T, d digest.Digest, want bool) {
	t.Helper()
	_, err := r.blobs.Stat(t.Context(), d)
	if got := err == nil; got != want || (err != nil && !errors.Is(err, blobstore.ErrNotFound)) {
		t.Errorf("blob store holds %s: %v (%v); want %v", d, got, err, want)
	}
}

// bothSessionKinds runs test on a rig (limit 1024) whose upload ids are
// signed, as serve's on SQLite, and on one that records every session at
// its POST, as on PostgreSQL.
func bothSessionKinds(t *testing.T, test func(*testing.T, *smallRig)) {
	t.Run("signed upload ids", func(t *testing.T) { test(t, newSmallRig(t, 1024)) })
	t.Run("recorded sessions", func(t *testing.T) {
		rig := newSmallRig(t, 1024)
		rig.key = nil
		rig.attach(t, 1024)
		test(t, rig)
	})
}

// wantNoUploads fails if the blob store holds an upload.
func (r *smallRig) wantNoUploads(t *testing.T) {
	t.Helper()
	err := r.blobs.WalkUploads(t.Context(), func(id string, _ time.Time) error {
		t.Errorf("the blob store holds upload %s", id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// wantInRecord says whether d's metadata record holds its bytes.
func (r *smallRig) wantInRecord(t *testing.T, d digest.Digest, want bool) {
	t.Helper()
	_, err := r.db.SmallBlob(t.Context(), d)
	if got := err == nil; got != want || (err != nil && !errors.Is(err, metadata.ErrNotFound)) {
		t.Errorf("record of %s holds its bytes: %v (%v); want %v", d, got, err, want)
	}
}

// wantBlob reads d from repo through the service.
func wantBlob(t *testing.T, svc *registry.Service, repo string, want []byte) {
	t.Helper()
	d := digest.FromBytes(want)
	rc, size, err := svc.OpenBlob(t.Context(), repo, d)
	if err != nil {
		t.Fatalf("OpenBlob(%s, %s): %v", repo, d, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) || size != int64(len(want)) {
		t.Errorf("OpenBlob(%s, %s) = %q (size %d), %v; want %q", repo, d, got, size, err, want)
	}
	if n, err := svc.StatBlob(t.Context(), repo, d); err != nil || n != int64(len(want)) {
		t.Errorf("StatBlob(%s, %s) = %d, %v; want %d", repo, d, n, err, len(want))
	}
}

// A blob sent whole and small enough is kept in its record, by either
// monolithic push; one sent in chunks, or larger, or with the limit off,
// goes to the blob store.
func TestSmallBlob_KeptInTheDatabaseWhenSentWhole(t *testing.T) {
	bothSessionKinds(t, testSmallBlobKept)
}

func testSmallBlobKept(t *testing.T, rig *smallRig) {
	ctx := t.Context()
	svc := rig.svc

	post := []byte(`{"config":"posted with its digest"}`)
	if _, err := svc.PutBlob(ctx, "app", digest.FromBytes(post), bytes.NewReader(post), int64(len(post))); err != nil {
		t.Fatal(err)
	}
	put := []byte(`{"config":"POST, then PUT with the body"}`)
	up, err := svc.StartUpload(ctx, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CompleteUpload(ctx, "app", up.ID, digest.FromBytes(put), bytes.NewReader(put), int64(len(put))); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{post, put} {
		rig.wantInRecord(t, digest.FromBytes(b), true)
		rig.wantInStore(t, digest.FromBytes(b), false)
		wantBlob(t, svc, "app", b)
	}
	if _, err := svc.UploadStatus(ctx, "app", up.ID); err == nil {
		t.Error("the session is still open after its PUT")
	}

	// One PATCH, then a PUT without a body: kept in the session's record
	// and then the blob's, whether the session started unrecorded or was
	// recorded at its POST; the store upload such a POST started goes.
	patched := []byte("sent in a PATCH")
	pushPatched(t, svc, "app", patched, -1)
	rig.wantInRecord(t, digest.FromBytes(patched), true)
	rig.wantInStore(t, digest.FromBytes(patched), false)
	wantBlob(t, svc, "app", patched)
	rig.wantNoUploads(t)
	large := bytes.Repeat([]byte("l"), 1025)
	if _, err := svc.PutBlob(ctx, "app", digest.FromBytes(large), bytes.NewReader(large), int64(len(large))); err != nil {
		t.Fatal(err)
	}
	rig.wantInRecord(t, digest.FromBytes(large), false)
	rig.wantInStore(t, digest.FromBytes(large), true)
	wantBlob(t, svc, "app", large)

	rig.attach(t, -1)
	off := []byte("with the limit off")
	if _, err := rig.svc.PutBlob(ctx, "app", digest.FromBytes(off), bytes.NewReader(off), int64(len(off))); err != nil {
		t.Fatal(err)
	}
	rig.wantInRecord(t, digest.FromBytes(off), false)
	rig.wantInStore(t, digest.FromBytes(off), true)
	// What was kept in records stays readable and mountable.
	wantBlob(t, rig.svc, "app", post)
	if ok, err := rig.svc.MountBlob(ctx, "other", digest.FromBytes(put), "app"); err != nil || !ok {
		t.Errorf("MountBlob with the limit off = %v, %v; want true", ok, err)
	}
	wantBlob(t, rig.svc, "other", put)
}

// pushPatched pushes b as docker does: POST, one PATCH of length bytes
// (-1: not declared, as docker sends it), PUT without a body.
func pushPatched(t *testing.T, svc *registry.Service, repo string, b []byte, length int64) {
	t.Helper()
	up, err := svc.StartUpload(t.Context(), repo, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WriteUpload(t.Context(), repo, up.ID, 0, bytes.NewReader(b), length); err != nil {
		t.Fatalf("WriteUpload: %v", err)
	}
	if _, err := svc.CompleteUpload(t.Context(), repo, up.ID, digest.FromBytes(b), nil, 0); err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	if _, err := svc.UploadStatus(t.Context(), repo, up.ID); !errors.Is(err, registry.ErrUploadUnknown) {
		t.Errorf("UploadStatus after the commit = %v; want %v", err, registry.ErrUploadUnknown)
	}
}

// A session whose first PATCH was small keeps its bytes in its record
// until its commit, through every turn a session can take: another chunk
// or a last chunk with the PUT moves them to the blob store, a wrong
// digest leaves the session as it was, a restart keeps it, a cancel or
// a larger first chunk leaves nothing in a record.
func TestSmallBlob_SessionKeptInItsRecord(t *testing.T) { bothSessionKinds(t, testSessionKept) }

func testSessionKept(t *testing.T, rig *smallRig) {
	ctx := t.Context()
	svc := rig.svc
	start := func() string {
		t.Helper()
		up, err := svc.StartUpload(ctx, "app", "")
		if err != nil {
			t.Fatal(err)
		}
		return up.ID
	}
	write := func(id string, b []byte, length int64) {
		t.Helper()
		if _, err := svc.WriteUpload(ctx, "app", id, -1, bytes.NewReader(b), length); err != nil {
			t.Fatalf("WriteUpload(%q): %v", b, err)
		}
	}
	complete := func(id string, whole, last []byte) error {
		t.Helper()
		var r io.Reader
		if last != nil {
			r = bytes.NewReader(last)
		}
		_, err := svc.CompleteUpload(ctx, "app", id, digest.FromBytes(whole), r, int64(len(last)))
		return err
	}
	stored := func(b []byte) {
		t.Helper()
		rig.wantInRecord(t, digest.FromBytes(b), false)
		rig.wantInStore(t, digest.FromBytes(b), true)
		wantBlob(t, svc, "app", b)
	}

	// Declared and not declared lengths.
	for _, length := range []int64{-1, 0} {
		b := []byte(fmt.Sprintf("one PATCH, length %d", length))
		if length == 0 {
			length = int64(len(b))
		}
		pushPatched(t, svc, "app", b, length)
		rig.wantInRecord(t, digest.FromBytes(b), true)
		rig.wantInStore(t, digest.FromBytes(b), false)
		wantBlob(t, svc, "app", b)
	}

	// A second PATCH.
	id := start()
	write(id, []byte("first "), -1)
	write(id, []byte("and second"), -1)
	if err := complete(id, []byte("first and second"), nil); err != nil {
		t.Fatal(err)
	}
	stored([]byte("first and second"))

	// A last chunk in the PUT.
	id = start()
	write(id, []byte("patched "), -1)
	if err := complete(id, []byte("patched then put"), []byte("then put")); err != nil {
		t.Fatal(err)
	}
	stored([]byte("patched then put"))

	// A wrong digest, then a restart, then the right one.
	id = start()
	kept := []byte("kept across a wrong digest and a restart")
	write(id, kept, -1)
	if err := complete(id, []byte("something else"), nil); !errors.Is(err, registry.ErrDigestInvalid) {
		t.Fatalf("CompleteUpload with a wrong digest = %v; want %v", err, registry.ErrDigestInvalid)
	}
	rig.attach(t, 1024)
	svc = rig.svc
	if up, err := svc.UploadStatus(ctx, "app", id); err != nil || up.Offset != int64(len(kept)) {
		t.Fatalf("UploadStatus after a wrong digest = %+v, %v; want offset %d", up, err, len(kept))
	}
	if err := complete(id, kept, nil); err != nil {
		t.Fatal(err)
	}
	rig.wantInRecord(t, digest.FromBytes(kept), true)
	wantBlob(t, svc, "app", kept)

	// Committed with another algorithm than the session guessed.
	id = start()
	other := []byte("hashed again with sha512")
	write(id, other, -1)
	d512 := digest.SHA512.FromBytes(other)
	if _, err := svc.CompleteUpload(ctx, "app", id, d512, nil, 0); err != nil {
		t.Fatalf("CompleteUpload(%s): %v", d512, err)
	}
	rig.wantInRecord(t, d512, true)

	// Cancelled: nothing anywhere.
	id = start()
	gone := []byte("cancelled")
	write(id, gone, -1)
	if err := svc.CancelUpload(ctx, "app", id); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UploadStatus(ctx, "app", id); !errors.Is(err, registry.ErrUploadUnknown) {
		t.Errorf("UploadStatus after a cancel = %v; want %v", err, registry.ErrUploadUnknown)
	}
	rig.wantInRecord(t, digest.FromBytes(gone), false)
	rig.wantInStore(t, digest.FromBytes(gone), false)

	// A first chunk of undeclared length just over the limit, and one
	// well over it.
	for _, n := range []int{1025, 300 << 10} {
		big := bytes.Repeat([]byte{byte(n)}, n)
		id = start()
		write(id, big, -1)
		if err := complete(id, big, nil); err != nil {
			t.Fatal(err)
		}
		stored(big)
	}

	// A body shorter than declared is refused and leaves the session
	// fresh.
	id = start()
	if _, err := svc.WriteUpload(ctx, "app", id, 0, strings.NewReader("short"), 10); !errors.Is(err, registry.ErrSizeInvalid) {
		t.Fatalf("WriteUpload of a short body = %v; want %v", err, registry.ErrSizeInvalid)
	}
	if up, err := svc.UploadStatus(ctx, "app", id); err != nil || up.Offset != 0 {
		t.Errorf("UploadStatus after a short body = %+v, %v; want offset 0", up, err)
	}
	if err := svc.CancelUpload(ctx, "app", id); err != nil {
		t.Fatal(err)
	}
	// Every session committed or cancelled: no upload is left behind.
	rig.wantNoUploads(t)
}

// A small blob whose bytes do not match its digest, or that is cut
// short, is refused and leaves nothing: no record, no link, no file.
func TestSmallBlob_BadBodyStoresNothing(t *testing.T) {
	rig := newSmallRig(t, 0)
	ctx := t.Context()
	body := []byte("the real bytes")
	wrong := digest.FromString("other bytes")
	_, err := rig.svc.PutBlob(ctx, "app", wrong, bytes.NewReader(body), int64(len(body)))
	if !errors.Is(err, registry.ErrDigestInvalid) {
		t.Errorf("PutBlob with a wrong digest = %v; want DIGEST_INVALID", err)
	}
	up, err := rig.svc.StartUpload(ctx, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(body)
	_, err = rig.svc.CompleteUpload(ctx, "app", up.ID, d, strings.NewReader("the real"), int64(len(body)))
	if !errors.Is(err, registry.ErrSizeInvalid) && !errors.Is(err, registry.ErrUploadInvalid) {
		t.Errorf("CompleteUpload of a short body = %v; want SIZE_INVALID", err)
	}
	for _, d := range []digest.Digest{wrong, d} {
		rig.wantInRecord(t, d, false)
		rig.wantInStore(t, d, false)
		if _, err := rig.svc.StatBlob(ctx, "app", d); err == nil {
			t.Errorf("StatBlob(app, %s) found a blob that was refused", d)
		}
	}
	// The session is still there for a correct PUT.
	if _, err := rig.svc.CompleteUpload(ctx, "app", up.ID, d, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("CompleteUpload after a short body: %v", err)
	}
	wantBlob(t, rig.svc, "app", body)
}

// A small blob mounts like any other; once nothing links or references
// it, garbage collection deletes its record with its bytes (a dry run
// counts it first), and what is in use stays.
func TestSmallBlob_MountedAndCollected(t *testing.T) {
	rig := newSmallRig(t, 0)
	ctx := t.Context()
	svc := rig.svc
	gone, kept := []byte("collected"), []byte("still linked")
	for _, b := range [][]byte{gone, kept} {
		if _, err := svc.PutBlob(ctx, "app", digest.FromBytes(b), bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := svc.MountBlob(ctx, "copy", digest.FromBytes(gone), "app"); err != nil || !ok {
		t.Fatalf("MountBlob = %v, %v; want true", ok, err)
	}
	wantBlob(t, svc, "copy", gone)
	for _, repo := range []string{"app", "copy"} {
		if err := svc.DeleteBlob(ctx, repo, digest.FromBytes(gone)); err != nil {
			t.Fatal(err)
		}
	}
	// Within the grace nothing goes.
	rep, err := svc.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour})
	if err != nil || rep.Blobs != 0 {
		t.Fatalf("CollectGarbage within the grace = %+v, %v; want nothing collected", rep, err)
	}
	rig.advance(2 * time.Hour)
	// A pusher's HEAD renews the link of the blob that stays (no manifest
	// references it, so an old link would be pruned and the blob go too).
	if _, err := svc.StatBlob(ctx, "app", digest.FromBytes(kept)); err != nil {
		t.Fatal(err)
	}
	rep, err = svc.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour, DryRun: true})
	if err != nil || rep.Blobs != 1 || rep.Bytes != int64(len(gone)) {
		t.Errorf("dry run = %+v, %v; want 1 blob of %d bytes", rep, err, len(gone))
	}
	rig.wantInRecord(t, digest.FromBytes(gone), true)
	rep, err = svc.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour})
	if err != nil || rep.Blobs != 1 || rep.Bytes != int64(len(gone)) {
		t.Errorf("CollectGarbage = %+v, %v; want 1 blob of %d bytes", rep, err, len(gone))
	}
	rig.wantInRecord(t, digest.FromBytes(gone), false)
	if ok, err := svc.MountBlob(ctx, "copy", digest.FromBytes(gone), ""); err != nil || ok {
		t.Errorf("MountBlob of a collected blob = %v, %v; want false", ok, err)
	}
	rig.wantInRecord(t, digest.FromBytes(kept), true)
	wantBlob(t, svc, "app", kept)
}

// recordReads counts the reads and mounts that ask a blob's record for
// its bytes.
type recordReads struct {
	*sqldb.DB
	reads, mounts atomic.Int64
}

func (r *recordReads) SmallBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	r.reads.Add(1)
	return r.DB.SmallBlob(ctx, d)
}

func (r *recordReads) MountSmallBlob(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	r.mounts.Add(1)
	return r.DB.MountSmallBlob(ctx, repo, d)
}

// A GET or mount of a small blob goes straight to where its bytes are: a
// blob the blob store holds costs no question to its record, one whose
// record holds it no look in the blob store.
func TestSmallBlob_ReadsGoStraightToTheBytes(t *testing.T) {
	rig := newSmallRig(t, -1)
	ctx := t.Context()
	stored := []byte("small, stored while the limit was off")
	if _, err := rig.svc.PutBlob(ctx, "app", digest.FromBytes(stored), bytes.NewReader(stored), int64(len(stored))); err != nil {
		t.Fatal(err)
	}
	counted := &recordReads{DB: rig.db}
	log := slog.New(slog.DiscardHandler)
	svc := registry.New(counted, rig.blobs, log, registry.Options{SmallBlobMax: 1024, Now: time.Now, UploadKey: rig.key})
	kept := []byte("small, kept in its record")
	if _, err := svc.PutBlob(ctx, "app", digest.FromBytes(kept), bytes.NewReader(kept), int64(len(kept))); err != nil {
		t.Fatal(err)
	}
	rig.wantInStore(t, digest.FromBytes(stored), true)
	rig.wantInRecord(t, digest.FromBytes(kept), true)

	for _, from := range []string{"app", ""} {
		if ok, err := svc.MountBlob(ctx, "copy", digest.FromBytes(stored), from); err != nil || !ok {
			t.Fatalf("MountBlob(stored, from %q) = %v, %v; want true", from, ok, err)
		}
	}
	wantBlob(t, svc, "app", stored)
	wantBlob(t, svc, "copy", stored)
	if n, m := counted.reads.Load(), counted.mounts.Load(); n != 0 || m != 0 {
		t.Errorf("a stored blob's GETs and mounts asked its record %d and %d times; want 0", n, m)
	}

	if ok, err := svc.MountBlob(ctx, "copy", digest.FromBytes(kept), "app"); err != nil || !ok {
		t.Fatalf("MountBlob(kept) = %v, %v; want true", ok, err)
	}
	wantBlob(t, svc, "copy", kept)
	if n, m := counted.reads.Load(), counted.mounts.Load(); n != 1 || m != 1 {
		t.Errorf("a kept blob's GET and mount asked its record %d and %d times; want 1 and 1", n, m)
	}
	rig.wantInStore(t, digest.FromBytes(kept), false)
}
