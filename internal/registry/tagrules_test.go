package registry_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// lifecycleService is a service over db with policies set on gallery/*.
func lifecycleService(t *testing.T, db *sqldb.DB, now func() time.Time, policies map[string]string) *registry.Service {
	t.Helper()
	blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := registry.New(db, blobs, slog.New(slog.DiscardHandler), registry.Options{SparseManifests: true, Now: now})
	if len(policies) > 0 {
		if err := svc.Policies().Set(registry.WithActor(context.Background(), "admin"), "gallery/*", policies); err != nil {
			t.Fatal(err)
		}
	}
	return svc
}

func push(t *testing.T, svc *registry.Service, ctx context.Context, repo, tag, seed string) (digest.Digest, error) {
	t.Helper()
	res, err := svc.PutManifest(ctx, repo, tag, ociManifest, imageManifest(seed), nil)
	if err != nil {
		return "", err
	}
	return res.Digest, nil
}

func mustPush(t *testing.T, svc *registry.Service, ctx context.Context, repo, tag, seed string) digest.Digest {
	t.Helper()
	d, err := push(t, svc, ctx, repo, tag, seed)
	if err != nil {
		t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
	return d
}

// wantImmutable checks that err is the DENIED of an immutable tag, naming
// the tag, the rule and where it is set.
func wantImmutable(t *testing.T, what string, err error, tag string) {
	t.Helper()
	var re *registry.Error
	if !errors.Is(err, registry.ErrDenied) || !errors.As(err, &re) {
		t.Fatalf("%s: err = %v, want DENIED", what, err)
	}
	want := `tag "` + tag + `" is immutable in gallery/ui (policy immutable-tags=1.*, set on gallery/*)`
	if !strings.HasPrefix(re.Message, want) {
		t.Errorf("%s: message %q, want it to start %q", what, re.Message, want)
	}
}

func TestImmutableTags_RepushAcceptedMoveAndDeleteRefused(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, db, _ *sqldb.DB) {
		svc := lifecycleService(t, db, nil, map[string]string{registry.KeyImmutableTags: "1.*, v?"})
		ctx := registry.WithActor(t.Context(), "alice")
		one := mustPush(t, svc, ctx, "gallery/ui", "1.0", "one")
		mustPush(t, svc, ctx, "gallery/ui", "1.0", "one") // a retried CI job
		_, err := push(t, svc, ctx, "gallery/ui", "1.0", "two")
		wantImmutable(t, "moving 1.0", err, "1.0")
		wantImmutable(t, "deleting tag 1.0", svc.DeleteManifest(ctx, "gallery/ui", "1.0"), "1.0")
		wantImmutable(t, "deleting the manifest 1.0 names", svc.DeleteManifest(ctx, "gallery/ui", one.String()), "1.0")
		if got, err := svc.TagTarget(ctx, "gallery/ui", "1.0"); err != nil || got != one {
			t.Errorf("1.0 → %s (%v), want it still on %s", got, err, one)
		}
		// Tags no glob matches move and go freely.
		mustPush(t, svc, ctx, "gallery/ui", "latest", "one")
		mustPush(t, svc, ctx, "gallery/ui", "latest", "two")
		if err := svc.DeleteManifest(ctx, "gallery/ui", "latest"); err != nil {
			t.Errorf("deleting latest: %v", err)
		}
		// Removing the policy (an owner's decision, audited) frees the tag.
		if err := svc.Policies().Remove(ctx, "gallery/*", registry.KeyImmutableTags); err != nil {
			t.Fatal(err)
		}
		if _, err := push(t, svc, ctx, "gallery/ui", "1.0", "two"); err != nil {
			t.Errorf("moving 1.0 without the policy: %v", err)
		}
	})
}

func TestImmutableTags_ConcurrentMovesOneWins(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, db, other *sqldb.DB) {
		svcs := []*registry.Service{
			lifecycleService(t, db, nil, map[string]string{registry.KeyImmutableTags: "1.*"}),
			lifecycleService(t, other, nil, nil),
		}
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = push(t, svcs[i%2], ctx, "gallery/ui", "1.0", string(rune('a'+i)))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, registry.ErrDenied) {
				t.Errorf("push: %v", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d of 8 concurrent pushes of different images to immutable 1.0 succeeded, want 1", ok)
		}
	})
}

func TestImmutableTags_PolicyValueIsChecked(t *testing.T) {
	svc := lifecycleService(t, openSQLite(t, nil), nil, nil)
	for _, v := range []string{"[1-", "1.*,[x"} {
		err := svc.Policies().Set(t.Context(), "gallery/*", map[string]string{registry.KeyImmutableTags: v})
		if !errors.Is(err, registry.ErrPolicyInvalid) {
			t.Errorf("immutable-tags=%q: err = %v, want POLICY_INVALID", v, err)
		}
	}
	for _, v := range []string{"0", "-1d", "soon"} {
		err := svc.Policies().Set(t.Context(), "gallery/*", map[string]string{registry.KeyTagHistory: v})
		if !errors.Is(err, registry.ErrPolicyInvalid) {
			t.Errorf("tag-history=%q: err = %v, want POLICY_INVALID", v, err)
		}
	}
}

func openSQLite(t *testing.T, now func() time.Time) *sqldb.DB {
	t.Helper()
	var opts []sqldb.Option
	if now != nil {
		opts = append(opts, sqldb.WithClock(now))
	}
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "wharf.db"), nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestTagHistory_RecordsAndRestores(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, db, _ *sqldb.DB) {
		svc := lifecycleService(t, db, nil, nil)
		ctx := registry.WithActor(t.Context(), "alice")
		a := mustPush(t, svc, ctx, "gallery/app", "latest", "a")
		b := mustPush(t, svc, ctx, "gallery/app", "latest", "b")
		if err := svc.DeleteManifest(registry.WithTagVia(ctx, metadata.ViaUI), "gallery/app", "latest"); err != nil {
			t.Fatal(err)
		}
		// A deleted tag comes back, then goes back one more step.
		if _, err := svc.RestoreTag(registry.WithActor(t.Context(), "bob"), "gallery/app", "latest", b); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RestoreTag(registry.WithActor(t.Context(), "bob"), "gallery/app", "latest", a); err != nil {
			t.Fatal(err)
		}
		if got, err := svc.TagTarget(ctx, "gallery/app", "latest"); err != nil || got != a {
			t.Errorf("latest → %s (%v), want a %s", got, err, a)
		}
		hist, total, err := svc.TagHistory(ctx, "gallery/app", "latest", 0, 0)
		if err != nil || total != 5 {
			t.Fatalf("history = %d changes, %v; want 5", total, err)
		}
		type step struct {
			from, to digest.Digest
			actor    string
			via      string
		}
		want := []step{{b, a, "bob", "rollback"}, {"", b, "bob", "rollback"}, {b, "", "alice", "ui"}, {a, b, "alice", "push"}, {"", a, "alice", "push"}}
		for i, c := range hist {
			if got := (step{c.From, c.To, c.Actor, c.Via}); got != want[i] {
				t.Errorf("history[%d] = %+v, want %+v", i, got, want[i])
			}
		}
		// A manifest no longer stored cannot be restored.
		_, err = svc.RestoreTag(ctx, "gallery/app", "latest", digest.FromString("gone"))
		if !errors.Is(err, registry.ErrManifestUnknown) {
			t.Errorf("restore to a missing manifest: err = %v, want MANIFEST_UNKNOWN", err)
		}
		if _, _, err := svc.TagHistory(ctx, "gallery/none", "latest", 0, 0); !errors.Is(err, registry.ErrNameUnknown) {
			t.Errorf("history of a missing repository: err = %v, want NAME_UNKNOWN", err)
		}
	})
}

func TestTagHistory_ImmutableTagRefusesRestoreThatMovesIt(t *testing.T) {
	svc := lifecycleService(t, openSQLite(t, nil), nil, nil)
	ctx := t.Context()
	a := mustPush(t, svc, ctx, "gallery/ui", "1.0", "a")
	mustPush(t, svc, ctx, "gallery/ui", "1.0", "b")
	if err := svc.Policies().Set(ctx, "gallery/*", map[string]string{registry.KeyImmutableTags: "1.*"}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.RestoreTag(ctx, "gallery/ui", "1.0", a)
	wantImmutable(t, "restoring immutable 1.0", err, "1.0")
}

// TestTagHistory_GCHoldsMovedManifestForTheWindow: a manifest a tag moved
// away from is untagged, but garbage collection keeps it while the
// history of the move is kept (tag-history), so that it can be restored;
// after the window it goes.
func TestTagHistory_GCHoldsMovedManifestForTheWindow(t *testing.T) {
	clock := clocktest.At(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	db := openSQLite(t, clock.Now)
	svc := lifecycleService(t, db, clock.Now, map[string]string{registry.KeyTagHistory: "2d"})
	ctx := t.Context()
	a := mustPush(t, svc, ctx, "gallery/app", "latest", "a")
	mustPush(t, svc, ctx, "gallery/app", "latest", "b")
	gc := func() []digest.Digest {
		t.Helper()
		rep, err := svc.CollectGarbage(ctx, registry.GCOptions{Untagged: true, Grace: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var out []digest.Digest
		for _, m := range rep.Manifests {
			out = append(out, m.Digest)
		}
		return out
	}
	clock.Advance(47 * time.Hour)
	if got := gc(); len(got) != 0 {
		t.Errorf("GC inside the window collected %v, want nothing", got)
	}
	if _, err := svc.RestoreTag(ctx, "gallery/app", "latest", a); err != nil {
		t.Fatalf("restore inside the window: %v", err)
	}
	mustPush(t, svc, ctx, "gallery/app", "latest", "b")
	clock.Advance(49 * time.Hour) // past the window of every move
	if got := gc(); len(got) != 1 || got[0] != a {
		t.Errorf("GC after the window collected %v, want only a %s", got, a)
	}
	if n, err := svc.PruneTagHistory(ctx); err != nil || n != 4 {
		t.Errorf("PruneTagHistory = %d, %v; want the 4 changes", n, err)
	}
}
