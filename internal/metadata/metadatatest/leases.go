package metadatatest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// leaseTTL is the lease length the tests claim with; its value only
// matters relative to the times the tests pass.
const leaseTTL = 30 * time.Second

// leaser returns s as an UploadLeaser, skipping the test for a store that
// does not lease its sessions.
func leaser(t *testing.T, s metadata.Store) metadata.UploadLeaser {
	t.Helper()
	l, ok := s.(metadata.UploadLeaser)
	if !ok {
		t.Skip("the store does not lease upload sessions")
	}
	return l
}

// claimed returns a fresh session of repo at offset 0 that writer holds
// from now for leaseTTL, as GetUpload should then report it.
func claimed(t *testing.T, s metadata.Store, writer string, now time.Time) *metadata.Upload {
	t.Helper()
	u := newUpload(t, "lease/repo")
	createUpload(t, s, u)
	if err := leaser(t, s).ClaimUpload(t.Context(), u.Repo, u.ID, 0, writer, now, now.Add(leaseTTL)); err != nil {
		t.Fatalf("ClaimUpload(%s) of a fresh session: %v", writer, err)
	}
	u.Writer, u.LeaseUntil = writer, now.Add(leaseTTL)
	return u
}

func testClaimUploadAdvance(t *testing.T, s metadata.Store) {
	now := timeAt(0)
	u := claimed(t, s, "writer-a", now)
	wantUpload(t, s, u)

	// The advance carries the writer's token and ends the lease with it.
	v := advance(t, u, 100, now.Add(time.Second))
	if err := s.AdvanceUpload(t.Context(), v, 0); err != nil {
		t.Fatalf("AdvanceUpload by the lease holder: %v", err)
	}
	v.Writer, v.LeaseUntil = "", time.Time{}
	wantUpload(t, s, v)

	// With the lease ended, the next writer claims at once.
	l := leaser(t, s)
	if err := l.ClaimUpload(t.Context(), u.Repo, u.ID, 100, "writer-b", now.Add(time.Second), now.Add(time.Second+leaseTTL)); err != nil {
		t.Fatalf("ClaimUpload after the advance: %v", err)
	}
	v.Writer, v.LeaseUntil = "writer-b", now.Add(time.Second+leaseTTL)
	wantUpload(t, s, v)
}

func testClaimUploadLiveLease(t *testing.T, s metadata.Store) {
	now := timeAt(0)
	u := claimed(t, s, "writer-a", now)
	l := leaser(t, s)
	for _, at := range []time.Duration{0, time.Second, leaseTTL - time.Microsecond} {
		err := l.ClaimUpload(t.Context(), u.Repo, u.ID, 0, "writer-b", now.Add(at), now.Add(at+leaseTTL))
		wantErr(t, fmt.Sprintf("ClaimUpload %v into another writer's lease", at), err, metadata.ErrConflict)
	}
	// A writer without the lease cannot advance the session either.
	sneak := advance(t, u, 10, now)
	sneak.Writer = ""
	wantErr(t, "AdvanceUpload without the lease", s.AdvanceUpload(t.Context(), sneak, 0), metadata.ErrConflict)
	sneak.Writer = "writer-b"
	wantErr(t, "AdvanceUpload with another token", s.AdvanceUpload(t.Context(), sneak, 0), metadata.ErrConflict)
	wantUpload(t, s, u)
}

func testClaimUploadLapsed(t *testing.T, s metadata.Store) {
	now := timeAt(0)
	u := claimed(t, s, "writer-a", now)
	l := leaser(t, s)
	// writer-a died: its lease lapses, and writer-b takes the session at
	// the offset it had recorded.
	later := now.Add(leaseTTL)
	if err := l.ClaimUpload(t.Context(), u.Repo, u.ID, 0, "writer-b", later, later.Add(leaseTTL)); err != nil {
		t.Fatalf("ClaimUpload of a lapsed lease: %v", err)
	}
	want := *u
	want.Writer, want.LeaseUntil = "writer-b", later.Add(leaseTTL)
	wantUpload(t, s, &want)

	// writer-a was only stalled: it can neither renew nor advance now.
	err := l.RenewUpload(t.Context(), u.Repo, u.ID, "writer-a", later.Add(leaseTTL))
	wantErr(t, "RenewUpload by the writer whose lease was taken", err, metadata.ErrConflict)
	stale := advance(t, u, 10, later)
	wantErr(t, "AdvanceUpload by the writer whose lease was taken", s.AdvanceUpload(t.Context(), stale, 0), metadata.ErrConflict)
	wantUpload(t, s, &want)

	v := advance(t, &want, 20, later)
	if err := s.AdvanceUpload(t.Context(), v, 0); err != nil {
		t.Fatalf("AdvanceUpload by the new writer: %v", err)
	}
	v.Writer, v.LeaseUntil = "", time.Time{}
	wantUpload(t, s, v)
}

func testClaimUploadWrongOffset(t *testing.T, s metadata.Store) {
	u := newUpload(t, "lease/repo")
	createUpload(t, s, u)
	v := advance(t, u, 100, timeAt(0))
	if err := s.AdvanceUpload(t.Context(), v, 0); err != nil {
		t.Fatal(err)
	}
	l := leaser(t, s)
	now := timeAt(0)
	for _, off := range []int64{0, 99, 101} {
		err := l.ClaimUpload(t.Context(), u.Repo, u.ID, off, "writer-a", now, now.Add(leaseTTL))
		wantErr(t, fmt.Sprintf("ClaimUpload at %d of a session at 100", off), err, metadata.ErrConflict)
	}
	wantUpload(t, s, v)
}

func testClaimUploadMissing(t *testing.T, s metadata.Store) {
	l := leaser(t, s)
	now := timeAt(0)
	u := newUpload(t, "lease/repo")
	wantErr(t, "ClaimUpload of an unknown session", l.ClaimUpload(t.Context(), u.Repo, u.ID, 0, "w", now, now.Add(leaseTTL)), metadata.ErrNotFound)
	wantErr(t, "RenewUpload of an unknown session", l.RenewUpload(t.Context(), u.Repo, u.ID, "w", now.Add(leaseTTL)), metadata.ErrNotFound)
	createUpload(t, s, u)
	wantErr(t, "ClaimUpload in another repository", l.ClaimUpload(t.Context(), "other", u.ID, 0, "w", now, now.Add(leaseTTL)), metadata.ErrNotFound)
	if err := l.ReleaseUpload(t.Context(), "other", u.ID, "w"); err != nil {
		t.Errorf("ReleaseUpload of an unknown session: %v", err)
	}
	if err := l.ClaimUpload(t.Context(), u.Repo, u.ID, 0, "", now, now.Add(leaseTTL)); err == nil {
		t.Error("ClaimUpload with an empty token succeeded")
	}
	wantUpload(t, s, u)
}

func testRenewUpload(t *testing.T, s metadata.Store) {
	now := timeAt(0)
	u := claimed(t, s, "writer-a", now)
	l := leaser(t, s)
	// Renewed a third of the way in, the lease lasts a third longer.
	until := now.Add(leaseTTL/3 + leaseTTL)
	if err := l.RenewUpload(t.Context(), u.Repo, u.ID, "writer-a", until); err != nil {
		t.Fatalf("RenewUpload: %v", err)
	}
	u.LeaseUntil = until
	wantUpload(t, s, u)
	err := l.ClaimUpload(t.Context(), u.Repo, u.ID, 0, "writer-b", now.Add(leaseTTL), now.Add(2*leaseTTL))
	wantErr(t, "ClaimUpload after the first lease's end but within the renewal", err, metadata.ErrConflict)
	wantErr(t, "RenewUpload by a writer that holds no lease", l.RenewUpload(t.Context(), u.Repo, u.ID, "writer-b", until), metadata.ErrConflict)
	// Renewing a lapsed lease nobody took keeps it: nobody else wrote.
	later := until.Add(time.Minute)
	if err := l.RenewUpload(t.Context(), u.Repo, u.ID, "writer-a", later); err != nil {
		t.Fatalf("RenewUpload of a lapsed lease nobody took: %v", err)
	}
	u.LeaseUntil = later
	wantUpload(t, s, u)
}

func testReleaseUpload(t *testing.T, s metadata.Store) {
	now := timeAt(0)
	u := claimed(t, s, "writer-a", now)
	l := leaser(t, s)
	if err := l.ReleaseUpload(t.Context(), u.Repo, u.ID, "writer-b"); err != nil {
		t.Fatalf("ReleaseUpload by a writer that holds no lease: %v", err)
	}
	wantUpload(t, s, u)
	if err := l.ReleaseUpload(t.Context(), u.Repo, u.ID, "writer-a"); err != nil {
		t.Fatalf("ReleaseUpload: %v", err)
	}
	u.Writer, u.LeaseUntil = "", time.Time{}
	wantUpload(t, s, u)
	if err := l.ClaimUpload(t.Context(), u.Repo, u.ID, 0, "writer-b", now, now.Add(leaseTTL)); err != nil {
		t.Fatalf("ClaimUpload after the release: %v", err)
	}
}

func testConcurrentClaimUpload(t *testing.T, s metadata.Store) {
	const n = 8
	u := newUpload(t, "race/repo")
	createUpload(t, s, u)
	l := leaser(t, s)
	now := timeAt(0)
	errs := race(n, func(i int) error {
		return l.ClaimUpload(t.Context(), u.Repo, u.ID, 0, fmt.Sprintf("writer-%d", i), now, now.Add(leaseTTL))
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both claimed the session", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, metadata.ErrConflict):
			t.Errorf("ClaimUpload in goroutine %d error = %v; want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer claimed the session; errors: %v", errs)
	}
	u.Writer, u.LeaseUntil = fmt.Sprintf("writer-%d", winner), now.Add(leaseTTL)
	wantUpload(t, s, u)
}
