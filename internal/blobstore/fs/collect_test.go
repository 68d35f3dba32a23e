package fs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
)

func newTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sha256Digest(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:]))
}

func sha512Digest(b []byte) digest.Digest {
	sum := sha512.Sum512(b)
	return digest.NewDigestFromEncoded(digest.SHA512, hex.EncodeToString(sum[:]))
}

// startWith starts upload id holding b.
func startWith(t testing.TB, s *Store, id string, b []byte) {
	t.Helper()
	if _, err := s.StartUpload(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	w, err := s.WriteUpload(t.Context(), id, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// store commits b as blob d through a new upload id.
func store(t *testing.T, s *Store, id string, d digest.Digest, b []byte) {
	t.Helper()
	startWith(t, s, id, b)
	if err := s.CommitUpload(t.Context(), id, nil, d, int64(len(b))); err != nil {
		t.Fatalf("CommitUpload(%s): %v", d, err)
	}
}

func blobFile(t *testing.T, s *Store, d digest.Digest) string {
	t.Helper()
	p, err := s.blobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// age makes blob d look committed, and last reused, at t0.
func age(t *testing.T, s *Store, d digest.Digest, t0 time.Time) {
	t.Helper()
	if err := os.Chtimes(blobFile(t, s, d), t0, t0); err != nil {
		t.Fatal(err)
	}
}

func mtime(t *testing.T, s *Store, d digest.Digest) time.Time {
	t.Helper()
	fi, err := os.Stat(blobFile(t, s, d))
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// wantBlob checks that Stat and Open report blob d with exactly want.
func wantBlob(t *testing.T, s *Store, d digest.Digest, want []byte) {
	t.Helper()
	if size, err := s.Stat(t.Context(), d); err != nil || size != int64(len(want)) {
		t.Fatalf("Stat(%s) = %d, %v; want %d, nil", d, size, err, len(want))
	}
	if err := readBlob(s, d, want); err != nil {
		t.Fatal(err)
	}
}

// readBlob opens blob d and checks its bytes; it may run off the test's
// goroutine.
func readBlob(s *Store, d digest.Digest, want []byte) error {
	r, size, err := s.Open(context.Background(), d)
	if err != nil {
		return fmt.Errorf("Open(%s): %w", d, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("reading %s: %w", d, err)
	}
	if size != int64(len(want)) || !bytes.Equal(got, want) {
		return fmt.Errorf("blob %s: size %d, read %d bytes that differ from the %d committed", d, size, len(got), len(want))
	}
	return nil
}

func wantNoBlob(t *testing.T, s *Store, d digest.Digest) {
	t.Helper()
	if _, err := s.Stat(t.Context(), d); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("Stat(%s) error = %v; want ErrNotFound", d, err)
	}
}

// wantTrashEmpty checks that no blob was left aside.
func wantTrashEmpty(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(s.trash)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left in the trash: %s", e.Name())
	}
}

func wantNoUploads(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(s.uploads)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("upload left behind: %s", e.Name())
	}
}

func collect(t *testing.T, s *Store, d digest.Digest, cutoff time.Time) bool {
	t.Helper()
	size, removed, err := s.Collect(t.Context(), d, cutoff)
	if err != nil {
		t.Fatalf("Collect(%s): %v", d, err)
	}
	if !removed && size != 0 {
		t.Errorf("Collect(%s) kept the blob and says it removed %d bytes", d, size)
	}
	return removed
}

// walk returns what Walk reports, failing on a digest reported twice.
func walk(t *testing.T, s *Store) map[digest.Digest]bool {
	t.Helper()
	got := map[digest.Digest]bool{}
	err := s.Walk(t.Context(), func(d digest.Digest) error {
		if got[d] {
			t.Errorf("Walk reported %s twice", d)
		}
		got[d] = true
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

func TestWalk_ReportsCommittedBlobsOnly(t *testing.T) {
	s := newTestStore(t)
	want := map[digest.Digest]bool{}
	for i, b := range [][]byte{nil, []byte("one"), bytes.Repeat([]byte("two"), 1000)} {
		for _, d := range []digest.Digest{sha256Digest(b), sha512Digest(b)} {
			store(t, s, fmt.Sprintf("u%d-%s", i, d.Algorithm()), d, b)
			want[d] = true
		}
	}
	startWith(t, s, "in-progress", []byte("not a blob yet"))

	// Names a crash, an operator or a Collect might leave among the blobs.
	some := sha256Digest([]byte("one")).Encoded()
	other := sha256Digest([]byte("stray")).Encoded()
	long := sha512Digest([]byte("stray")).Encoded()
	junk := []string{
		"blobs/sha256/" + some[:2] + "/" + some + ".tmp",
		"blobs/sha256/" + some[:2] + "/." + some,
		"blobs/sha256/" + other[:2] + "/" + strings.ToUpper(other), // not lower-case hex
		"blobs/sha256/" + flipPrefix(other) + "/" + other,          // wrong prefix directory
		"blobs/sha512/" + other[:2] + "/" + other,                  // sha256 length under sha512
		"blobs/sha256/" + long[:2] + "/" + long,                    // sha512 length under sha256
		"blobs/sha384/" + long[:2] + "/" + long[:96],               // unsupported algorithm
		"blobs/sha256/stray",                                       // file among the prefixes
		"blobs/sha256/" + other[:2] + "x/" + other,                 // not a prefix directory
		"trash/sha256-" + other + "-X",                             // moved aside by a Collect
	}
	for _, j := range junk {
		p := filepath.Join(s.root, filepath.FromSlash(j))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A directory with a blob's name is not a blob.
	if err := os.MkdirAll(blobFile(t, s, sha256Digest([]byte("dir"))), 0o755); err != nil {
		t.Fatal(err)
	}

	if got := walk(t, s); !maps.Equal(got, want) {
		t.Errorf("Walk reported %v; want %v", got, want)
	}
}

// flipPrefix returns a two-character prefix directory that is not hex's.
func flipPrefix(hex string) string {
	if hex[:2] == "00" {
		return "01"
	}
	return "00"
}

func TestWalk_StopsAtFnErrorAndCancellation(t *testing.T) {
	s := newTestStore(t)
	for i := range 5 {
		b := fmt.Appendf(nil, "blob %d", i)
		store(t, s, fmt.Sprint("u", i), sha256Digest(b), b)
	}
	errStop := errors.New("stop")
	calls := 0
	err := s.Walk(t.Context(), func(digest.Digest) error { calls++; return errStop })
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("Walk with a failing fn: %d calls, error %v; want 1 call and fn's error", calls, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	calls = 0
	err = s.Walk(ctx, func(digest.Digest) error { calls++; cancel(); return nil })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("Walk cancelled from fn: %d calls, error %v; want 1 call and context.Canceled", calls, err)
	}
	calls = 0
	err = s.Walk(ctx, func(digest.Digest) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("Walk with a cancelled context: %d calls, error %v; want none and context.Canceled", calls, err)
	}
}

func TestWalk_CollectingEveryBlobAsVisited(t *testing.T) {
	// The way garbage collection uses them: Collect from inside Walk.
	s := newTestStore(t)
	for i := range 50 {
		b := fmt.Appendf(nil, "blob %d", i)
		store(t, s, fmt.Sprint("u", i), sha256Digest(b), b)
	}
	removed, bytes := 0, int64(0)
	err := s.Walk(t.Context(), func(d digest.Digest) error {
		size, ok, err := s.Collect(t.Context(), d, time.Now().Add(time.Hour))
		if ok {
			removed++
			bytes += size
		}
		return err
	})
	// "blob 0" … "blob 49": 10 of 6 bytes, 40 of 7.
	if err != nil || removed != 50 || bytes != 10*6+40*7 {
		t.Fatalf("Walk collecting: removed %d (%d bytes), error %v; want 50 (340 bytes), nil", removed, bytes, err)
	}
	if got := walk(t, s); len(got) != 0 {
		t.Errorf("Walk after collecting everything reported %v", got)
	}
	wantTrashEmpty(t, s)
}

func TestCollect_RemovesOnlyBlobsOlderThanCutoff(t *testing.T) {
	s := newTestStore(t)
	b := []byte("collect me")
	d := sha512Digest(b)
	store(t, s, "u", d, b)

	if collect(t, s, d, time.Now().Add(-time.Hour)) {
		t.Fatal("Collect removed a blob committed after the cutoff")
	}
	wantBlob(t, s, d, b)

	if !collect(t, s, d, time.Now().Add(time.Hour)) {
		t.Fatal("Collect kept a blob committed before the cutoff")
	}
	wantNoBlob(t, s, d)
	wantTrashEmpty(t, s)
	if got := walk(t, s); len(got) != 0 {
		t.Errorf("Walk after Collect reported %v", got)
	}
	if collect(t, s, d, time.Now().Add(time.Hour)) {
		t.Error("second Collect of the same blob reported removing it again")
	}
	// A collected blob can be pushed again.
	store(t, s, "again", d, b)
	wantBlob(t, s, d, b)
}

func TestCollect_CutoffEqualToMarkKeeps(t *testing.T) {
	s := newTestStore(t)
	b := []byte("at the cutoff")
	d := sha256Digest(b)
	store(t, s, "u", d, b)
	mark := time.Now().Add(-time.Hour).Truncate(time.Second)
	age(t, s, d, mark)
	if collect(t, s, d, mark) {
		t.Fatal("Collect removed a blob marked exactly at the cutoff")
	}
	if !collect(t, s, d, mark.Add(time.Second)) {
		t.Fatal("Collect kept a blob marked before the cutoff")
	}
}

func TestCollect_MissingAndInvalid(t *testing.T) {
	s := newTestStore(t)
	_, removed, err := s.Collect(t.Context(), sha256Digest([]byte("never stored")), time.Now().Add(time.Hour))
	if removed || err != nil {
		t.Errorf("Collect of a missing blob = %v, %v; want false, nil", removed, err)
	}
	for _, d := range []digest.Digest{"", "sha256:xyz", digest.Digest("sha384:" + strings.Repeat("ab", 48))} {
		_, removed, err := s.Collect(t.Context(), d, time.Now().Add(time.Hour))
		if removed || err == nil || errors.Is(err, blobstore.ErrNotFound) {
			t.Errorf("Collect(%q) = %v, %v; want an invalid-digest error", d, removed, err)
		}
	}
	b := []byte("kept")
	d := sha256Digest(b)
	store(t, s, "u", d, b)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, removed, err := s.Collect(ctx, d, time.Now().Add(time.Hour)); removed || !errors.Is(err, context.Canceled) {
		t.Errorf("Collect with a cancelled context = %v, %v; want false, context.Canceled", removed, err)
	}
	wantBlob(t, s, d, b)
}

func TestCollect_KeepsBlobReusedByCommit(t *testing.T) {
	s := newTestStore(t)
	b := []byte("layer pushed twice")
	d := sha256Digest(b)
	store(t, s, "first", d, b)
	cutoff := time.Now().Add(-time.Hour)
	age(t, s, d, cutoff.Add(-time.Hour))

	store(t, s, "second", d, b) // deduplicated: marks the blob reused
	if m := mtime(t, s, d); m.Before(cutoff) {
		t.Fatalf("a deduplicated commit left the blob's mtime at %v, before the cutoff", m)
	}
	if collect(t, s, d, cutoff) {
		t.Fatal("Collect removed a blob a commit had just reused")
	}
	wantBlob(t, s, d, b)
	wantNoUploads(t, s)

	// The same blob, not reused since, goes.
	age(t, s, d, cutoff.Add(-time.Hour))
	if !collect(t, s, d, cutoff) {
		t.Fatal("Collect kept a blob nobody reused since before the cutoff")
	}
}

func TestCommitUpload_MarksBlobWithCommitTimeNotLastWrite(t *testing.T) {
	s := newTestStore(t)
	b := []byte("slow client")
	d := sha256Digest(b)
	startWith(t, s, "slow", b)
	longAgo := time.Now().Add(-24 * time.Hour)
	up, _ := s.uploadPath("slow")
	if err := os.Chtimes(up, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := s.CommitUpload(t.Context(), "slow", nil, d, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if m := mtime(t, s, d); m.Before(before) {
		t.Errorf("blob committed at %v has mtime %v: its last write, not its commit", before, m)
	}
}

// The following tests stop Collect or CommitUpload at the point where a
// race matters and run the other side there.

func TestCollect_PutsBackBlobReusedJustBeforeTheMove(t *testing.T) {
	s := newTestStore(t)
	b := []byte("reused at the last moment")
	d := sha256Digest(b)
	store(t, s, "first", d, b)
	cutoff := time.Now().Add(-time.Hour)
	age(t, s, d, cutoff.Add(-time.Hour))
	startWith(t, s, "second", b)

	s.at = func(point string) {
		if point == "collect-trash" {
			// Collect has seen the blob unmarked; the reuse lands now.
			if err := s.CommitUpload(t.Context(), "second", nil, d, int64(len(b))); err != nil {
				t.Errorf("CommitUpload during Collect: %v", err)
			}
		}
	}
	if collect(t, s, d, cutoff) {
		t.Fatal("Collect removed a blob reused between its check and its move")
	}
	s.at = nil
	wantBlob(t, s, d, b)
	wantTrashEmpty(t, s)
	wantNoUploads(t, s)
}

func TestCollect_CommitAfterTheMoveStoresItsOwnBytes(t *testing.T) {
	s := newTestStore(t)
	b := []byte("reused too late to keep the old file")
	d := sha256Digest(b)
	store(t, s, "first", d, b)
	cutoff := time.Now().Add(-time.Hour)
	age(t, s, d, cutoff.Add(-time.Hour))
	startWith(t, s, "second", b)

	s.at = func(point string) {
		if point == "collect-trashed" {
			if err := s.CommitUpload(t.Context(), "second", nil, d, int64(len(b))); err != nil {
				t.Errorf("CommitUpload during Collect: %v", err)
			}
		}
	}
	// The old file goes, but the commit's own stays.
	if !collect(t, s, d, cutoff) {
		t.Fatal("Collect kept the unmarked file it had moved aside")
	}
	s.at = nil
	wantBlob(t, s, d, b)
	wantTrashEmpty(t, s)
	wantNoUploads(t, s)
}

func TestCommitUpload_TouchThatMissesTheBlobStoresItsOwnBytes(t *testing.T) {
	// A touch resolves the path before it changes the file: a Collect can
	// move the file in between, so the touch succeeds on a file that is
	// no longer the blob. Simulated by moving the blob right after it.
	for _, tc := range []struct {
		name    string
		replace bool // another, unmarked file took the blob's place
	}{{"PathEmpty", false}, {"PathHoldsOlderFile", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t)
			b := []byte("touched in the wrong place")
			d := sha256Digest(b)
			store(t, s, "first", d, b)
			startWith(t, s, "second", b)
			blob := blobFile(t, s, d)
			moved := filepath.Join(t.TempDir(), "moved")
			s.at = func(point string) {
				if point != "commit-touched" {
					return
				}
				if err := os.Rename(blob, moved); err != nil {
					t.Error(err)
				}
				if tc.replace {
					old := time.Now().Add(-time.Hour)
					if err := os.WriteFile(blob, b, 0o644); err != nil {
						t.Error(err)
					}
					if err := os.Chtimes(blob, old, old); err != nil {
						t.Error(err)
					}
				}
			}
			before := time.Now()
			if err := s.CommitUpload(t.Context(), "second", nil, d, int64(len(b))); err != nil {
				t.Fatal(err)
			}
			s.at = nil
			wantBlob(t, s, d, b)
			if m := mtime(t, s, d); m.Before(before) {
				t.Errorf("the commit left a blob marked %v, before the commit at %v", m, before)
			}
			wantNoUploads(t, s)
		})
	}
}

func TestNew_PutsBackBlobsLeftInTheTrash(t *testing.T) {
	s := newTestStore(t)
	b := []byte("collection killed half-way")
	d := sha256Digest(b)
	store(t, s, "u", d, b)
	if _, err := os.Stat(s.trash); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New made %s before any collection (stat: %v); the layout should not change for stores that never collect", s.trash, err)
	}
	// A Collect killed after moving the blob aside, as a commit reused it.
	if err := s.makeTrash(); err != nil {
		t.Fatal(err)
	}
	trash := filepath.Join(s.trash, trashName(d))
	if err := os.Rename(blobFile(t, s, d), trash); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(s.trash, "not-ours")
	if err := os.WriteFile(unknown, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantNoBlob(t, s, d)

	before := time.Now()
	s2, err := New(s.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantBlob(t, s2, d, b)
	// Marked, in case a collection with a cutoff before now is running.
	if m := mtime(t, s2, d); m.Before(before) {
		t.Errorf("put-back blob has mtime %v, before it was put back at %v", m, before)
	}
	if _, err := os.Stat(trash); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("trash file still there after New: %v", err)
	}
	if _, err := os.Stat(unknown); err != nil {
		t.Errorf("New removed a file it does not know from the trash: %v", err)
	}
}

func TestNew_PutBackRacingCollectKeepsTheBlob(t *testing.T) {
	// A store opened by another process (wharf serve starting while wharf
	// gc runs) puts back a blob that Collect has just moved aside.
	s := newTestStore(t)
	b := []byte("put back under Collect's feet")
	d := sha256Digest(b)
	store(t, s, "u", d, b)
	s.at = func(point string) {
		if point == "collect-trashed" {
			if _, err := New(s.root, nil); err != nil {
				t.Error(err)
			}
		}
	}
	if collect(t, s, d, time.Now().Add(time.Hour)) {
		t.Error("Collect reported removing a blob that was put back")
	}
	s.at = nil
	wantBlob(t, s, d, b)
	wantTrashEmpty(t, s)
}

// TestCollect_RacingCommitsKeepTheirBlob checks the guarantee itself: in
// each round an old blob is collected (cutoff in the past, so a reuse
// protects it) while several pushes of the same bytes commit; every commit
// returns nil, so the blob must be there at the end of every round.
func TestCollect_RacingCommitsKeepTheirBlob(t *testing.T) {
	rounds, committers, collectors := 300, 4, 2
	if testing.Short() {
		rounds = 30
	}
	s := newTestStore(t)
	b := bytes.Repeat([]byte("race"), 1024)
	d := sha256Digest(b)
	var removed, kept int
	for r := range rounds {
		store(t, s, fmt.Sprintf("seed-%d", r), d, b)
		cutoff := time.Now().Add(-time.Minute)
		age(t, s, d, cutoff.Add(-time.Hour))
		for i := range committers {
			startWith(t, s, fmt.Sprintf("r%d-c%d", r, i), b)
		}

		start := make(chan struct{})
		var wg sync.WaitGroup
		commitErrs := make([]error, committers)
		for i := range committers {
			wg.Go(func() {
				<-start
				commitErrs[i] = s.CommitUpload(t.Context(), fmt.Sprintf("r%d-c%d", r, i), nil, d, int64(len(b)))
			})
		}
		results := make([]bool, collectors)
		collectErrs := make([]error, collectors)
		for i := range collectors {
			wg.Go(func() {
				<-start
				_, results[i], collectErrs[i] = s.Collect(t.Context(), d, cutoff)
			})
		}
		close(start)
		wg.Wait()

		for _, err := range append(commitErrs, collectErrs...) {
			if err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
		for _, ok := range results {
			if ok {
				removed++
			} else {
				kept++
			}
		}
		// Every commit returned nil: the blob must have survived.
		if _, err := s.Stat(t.Context(), d); err != nil {
			t.Fatalf("round %d: after %d commits returned nil: %v", r, committers, err)
		}
		if err := readBlob(s, d, b); err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		wantTrashEmpty(t, s)
		wantNoUploads(t, s)
	}
	t.Logf("Collect removed the old file %d times and kept it %d times", removed, kept)
}

// TestCollect_StressWithCommitsReadersAndWalks runs commits of one digest
// against a Collect that always wants it gone (cutoff in the future), with
// readers and walks beside them. A blob may vanish at any moment, but no
// call may fail, no read may see other bytes, and nothing may stay in the
// trash.
func TestCollect_StressWithCommitsReadersAndWalks(t *testing.T) {
	committers, commits := 6, 60
	if testing.Short() {
		commits = 10
	}
	s := newTestStore(t)
	b := bytes.Repeat([]byte("stress"), 10000)
	d := sha256Digest(b)
	future := time.Now().Add(time.Hour)

	var (
		done                  = make(chan struct{})
		workers, others       sync.WaitGroup
		removed, reads, walks atomic.Int64
		errs                  = make(chan error, 100)
	)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for i := range committers {
		workers.Go(func() {
			for j := range commits {
				id := fmt.Sprintf("c%d-%d", i, j)
				if _, err := s.StartUpload(context.Background(), id); err != nil {
					fail(err)
					return
				}
				w, err := s.WriteUpload(context.Background(), id, 0, nil)
				if err != nil {
					fail(err)
					return
				}
				_, err = w.Write(b)
				if cerr := w.Close(); err == nil {
					err = cerr
				}
				if err == nil {
					err = s.CommitUpload(context.Background(), id, nil, d, int64(len(b)))
				}
				if err != nil {
					fail(fmt.Errorf("commit %s: %w", id, err))
					return
				}
			}
		})
	}
	others.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			_, ok, err := s.Collect(context.Background(), d, future)
			if err != nil {
				fail(fmt.Errorf("Collect: %w", err))
				return
			}
			if ok {
				removed.Add(1)
			}
		}
	})
	others.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			err := readBlob(s, d, b)
			if errors.Is(err, blobstore.ErrNotFound) {
				continue
			}
			if err != nil {
				fail(err)
				return
			}
			reads.Add(1)
		}
	})
	others.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			err := s.Walk(context.Background(), func(got digest.Digest) error {
				if got != d {
					return fmt.Errorf("Walk reported %s; only %s exists", got, d)
				}
				return nil
			})
			if err != nil {
				fail(err)
				return
			}
			walks.Add(1)
		}
	})
	workers.Wait()
	close(done)
	others.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d commits; Collect removed the blob %d times; %d reads, %d walks", committers*commits, removed.Load(), reads.Load(), walks.Load())
	if removed.Load() == 0 {
		t.Error("Collect never removed the blob: the race was not exercised")
	}
	wantTrashEmpty(t, s)
	wantNoUploads(t, s)
	// Whatever Collect did last, a new commit makes the blob whole again.
	store(t, s, "last", d, b)
	wantBlob(t, s, d, b)
}
