package sqldb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/servicetest"
)

// Races SQLite never sees: its one writer runs transactions one after
// another. On PostgreSQL (READ COMMITTED) they overlap, and each replica
// below is a DB of its own on one database.

// replicas opens n DBs on one new database.
func replicas(t *testing.T, n int, opts ...Option) []*DB {
	t.Helper()
	url := servicetest.StartPostgres(t).Database(t)
	dbs := make([]*DB, n)
	for i := range dbs {
		db, err := Open(t.Context(), url, nil, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs
}

// race runs fns at once and waits for them.
func race(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Go(func() { <-start; fn() })
	}
	close(start)
	wg.Wait()
}

// A user and an organisation of one name created at once on two replicas:
// the namespace is one, so exactly one of them gets it.
func TestPostgres_UserAndOrgRaceForOneName(t *testing.T) {
	dbs := replicas(t, 2)
	ctx := t.Context()
	for i := range 40 {
		name := fmt.Sprint("name", i)
		var uerr, oerr error
		race(
			func() {
				uerr = dbs[0].CreateUser(ctx, &auth.User{Name: name, PasswordHash: "x", CreatedAt: time.Now()})
			},
			func() { oerr = dbs[1].CreateOrg(ctx, &auth.Org{Name: name, CreatedAt: time.Now()}) },
		)
		if (uerr == nil) == (oerr == nil) {
			t.Fatalf("round %d: CreateUser = %v, CreateOrg = %v; want exactly one to succeed", i, uerr, oerr)
		}
		if lost := errors.Join(uerr, oerr); !errors.Is(lost, auth.ErrExists) {
			t.Fatalf("round %d: the loser failed with %v; want auth.ErrExists", i, lost)
		}
	}
}

// Several replicas creating the first user at once make one administrator.
func TestPostgres_CreateFirstUserOnce(t *testing.T) {
	for round := range 5 {
		dbs := replicas(t, 4)
		created := make([]bool, len(dbs))
		errs := make([]error, len(dbs))
		var fns []func()
		for i, db := range dbs {
			fns = append(fns, func() {
				created[i], errs[i] = db.CreateFirstUser(t.Context(), &auth.User{Name: fmt.Sprint("admin", i), PasswordHash: "x", Admin: true})
			})
		}
		race(fns...)
		n := 0
		for i := range dbs {
			if errs[i] != nil {
				t.Fatalf("round %d: CreateFirstUser #%d: %v", round, i, errs[i])
			}
			if created[i] {
				n++
			}
		}
		if users, err := dbs[0].ListUsers(t.Context()); err != nil || n != 1 || len(users) != 1 {
			t.Fatalf("round %d: %d replicas created a first user, %d users exist (%v); want 1", round, n, len(users), err)
		}
	}
}

// A tag pushed while garbage collection deletes the untagged manifest
// either saves it or comes after it and stores it again: a push that
// succeeded always leaves its tag in place.
func TestPostgres_TagRacingGCIsNeverLost(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now.Add(-time.Hour) } // old enough to collect
	dbs := replicas(t, 2, WithClock(clock))
	ctx := t.Context()
	for i := range 40 {
		m := testManifest("repo", fmt.Sprint("m", i))
		for _, b := range m.Blobs {
			if err := dbs[0].LinkBlob(ctx, "repo", b, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := dbs[0].PutManifest(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprint("t", i)
		var perr, gerr error
		race(
			func() { perr = dbs[0].PutManifest(ctx, m, []string{tag}) },
			func() {
				_, gerr = dbs[1].DeleteUntaggedManifest(ctx, metadata.ManifestRef{Repo: "repo", Digest: m.Digest}, now)
			},
		)
		if gerr != nil {
			t.Fatalf("round %d: DeleteUntaggedManifest: %v", i, gerr)
		}
		if perr != nil {
			continue // a failed push promises nothing
		}
		if got, err := dbs[0].GetTaggedManifest(ctx, "repo", tag); err != nil || got.Digest != m.Digest {
			t.Fatalf("round %d: the push of tag %s succeeded, then GetTaggedManifest = %v, %v", i, tag, got, err)
		}
	}
}

// A manifest pushed while garbage collection prunes the links it relies
// on: a push that succeeded keeps every blob it references linked.
func TestPostgres_ManifestRacingPruneKeepsItsLinks(t *testing.T) {
	now := time.Now()
	dbs := replicas(t, 2, WithClock(func() time.Time { return now.Add(-time.Hour) }))
	ctx := t.Context()
	for i := range 40 {
		repo := fmt.Sprint("repo", i)
		m := testManifest(repo, fmt.Sprint("m", i))
		m.RequiredBlobs = m.Blobs
		for _, b := range m.Blobs {
			if err := dbs[0].LinkBlob(ctx, repo, b, 1); err != nil {
				t.Fatal(err)
			}
		}
		var perr, gerr error
		race(
			func() { perr = dbs[0].PutManifest(ctx, m, []string{"latest"}) },
			func() { _, gerr = dbs[1].PruneBlobLinks(ctx, now, false) },
		)
		if gerr != nil {
			t.Fatalf("round %d: PruneBlobLinks: %v", i, gerr)
		}
		if perr != nil {
			if !errors.Is(perr, metadata.ErrMissingReference) {
				t.Fatalf("round %d: PutManifest: %v", i, perr)
			}
			continue
		}
		for _, b := range m.Blobs {
			if _, err := dbs[0].BlobSize(ctx, repo, b); err != nil {
				t.Fatalf("round %d: the manifest was stored, but its blob %s: %v", i, b, err)
			}
		}
	}
}

// The kept totals stay equal to a recount under concurrent writes of
// every kind from several replicas: no lost update, no deadlock that
// escapes a retry.
func TestPostgres_StatsMatchRecountUnderConcurrentWrites(t *testing.T) {
	dbs := replicas(t, 4)
	ctx := t.Context()
	digests := make([]digest.Digest, 8)
	for i := range digests {
		digests[i] = digest.FromString(fmt.Sprint("blob ", i))
	}
	size := func(i int) int64 { return int64(i)*100 + 1 }
	repos := []string{"a", "b", "c"}
	var fns []func()
	errs := make(chan error, len(dbs))
	for w, db := range dbs {
		fns = append(fns, func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for step := range 60 {
				repo, i := repos[rng.IntN(len(repos))], rng.IntN(len(digests))
				var err error
				switch r := rng.IntN(100); {
				case r < 45:
					err = db.LinkBlob(ctx, repo, digests[i], size(i))
				case r < 70:
					err = db.UnlinkBlob(ctx, repo, digests[i])
				case r < 85:
					m := testManifest(repo, fmt.Sprint(w, "/", step))
					m.Blobs = []digest.Digest{digests[i]}
					err = db.PutManifest(ctx, m, []string{"v"})
				case r < 93:
					_, err = db.PruneBlobLinks(ctx, time.Now().Add(time.Hour), false)
				default:
					err = db.DeleteRepository(ctx, repo)
				}
				if err != nil && !errors.Is(err, metadata.ErrNotFound) {
					errs <- fmt.Errorf("replica %d step %d: %w", w, step, err)
					return
				}
			}
		})
	}
	race(fns...)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantStatsMatchRecount(t, dbs[0], "concurrent writes")
}

// Two replicas advancing one upload session from the same offset: one
// wins, the other gets ErrConflict (the registry answers it with 416).
func TestPostgres_AdvanceUploadRaceAcrossReplicas(t *testing.T) {
	dbs := replicas(t, 2)
	ctx := t.Context()
	for i := range 30 {
		u := &metadata.Upload{ID: fmt.Sprint("u", i), Repo: "repo", Algorithm: digest.SHA256,
			HashState: []byte{0}, StartedAt: time.Now(), UpdatedAt: time.Now()}
		if err := dbs[0].CreateUpload(ctx, u); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		race(
			func() { a := *u; a.Offset, a.HashState = 10, []byte{1}; errs[0] = dbs[0].AdvanceUpload(ctx, &a, 0) },
			func() { b := *u; b.Offset, b.HashState = 20, []byte{2}; errs[1] = dbs[1].AdvanceUpload(ctx, &b, 0) },
		)
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, metadata.ErrConflict):
				t.Fatalf("round %d: AdvanceUpload: %v; want nil or ErrConflict", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d replicas advanced the session from offset 0; want 1 (%v)", i, won, errs)
		}
		got, err := dbs[1].GetUpload(ctx, "repo", u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if (got.Offset == 10) != (errs[0] == nil) {
			t.Fatalf("round %d: session at offset %d after the race %v", i, got.Offset, errs)
		}
	}
}
