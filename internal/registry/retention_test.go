package registry_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// replicaOn is a registry sharing the database file path with others, on
// clock c.
func replicaOn(t *testing.T, path string, c *clocktest.Clock) *registry.Service {
	t.Helper()
	return replicaNamed(t, path, c, "")
}

// replicaNamed is replicaOn with a replica name for its job runs.
func replicaNamed(t *testing.T, path string, c *clocktest.Clock, name string) *registry.Service {
	t.Helper()
	db, err := sqldb.OpenSQLite(t.Context(), path, nil, sqldb.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return registry.New(db, blobs, slog.New(slog.DiscardHandler), registry.Options{SparseManifests: true, Now: c.Now,
		GC: registry.GCSchedule{Replica: name}})
}

func TestRetention_ScheduledRunsOnOneReplicaPerInterval(t *testing.T) {
	c := clocktest.New()
	path := filepath.Join(t.TempDir(), "metadata.db")
	a, b := replicaNamed(t, path, c, "host-a"), replicaNamed(t, path, c, "host-b")
	ctx := registry.WithActor(context.Background(), "alice")
	for i, tag := range []string{"v1", "v2", "v3"} {
		if _, err := a.PutManifest(ctx, "team/app", tag, ociManifest, imageManifest(tag), nil); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Duration(i+1) * time.Minute)
	}
	if err := a.Policies().Set(ctx, "team/*", map[string]string{registry.KeyRetention: "last=2"}); err != nil {
		t.Fatal(err)
	}
	run, err := a.ScheduledRetention(ctx, "a", time.Hour)
	if err != nil || run == nil || run.DeletedTags != 1 || run.Trigger != "schedule" || run.Scope != "*" {
		t.Fatalf("a's run = %+v, %v; want v1 deleted", run, err)
	}
	if run, err := b.ScheduledRetention(ctx, "b", time.Hour); err != nil || run != nil {
		t.Fatalf("b ran within a's interval: %+v, %v", run, err)
	}
	c.Advance(59 * time.Minute)
	if run, err := a.ScheduledRetention(ctx, "a", time.Hour); err != nil || run != nil {
		t.Fatalf("a ran again within its interval: %+v, %v", run, err)
	}
	c.Advance(time.Minute)
	if run, err := b.ScheduledRetention(ctx, "b", time.Hour); err != nil || run == nil || run.DeletedTags != 0 {
		t.Fatalf("b's run after the interval = %+v, %v; want a run deleting nothing", run, err)
	}
	runs, err := a.RetentionRuns(ctx, 0, 10)
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs = %+v, %v; want 2", runs, err)
	}
	// Each run names its replica, in the job runs as a collection does.
	jobs, _, err := a.JobRuns(ctx, registry.RetentionRunKind, 0, 10)
	if err != nil || len(jobs) != 2 || jobs[0].Replica != "host-b" || jobs[1].Replica != "host-a" {
		t.Errorf("job runs = %+v, %v; want b's run, then a's", jobs, err)
	}
	tags, err := b.Tags(ctx, "team/app", "", 0)
	if err != nil || len(tags) != 2 || tags[0] != "v2" {
		t.Errorf("tags = %q, %v; want v2 v3", tags, err)
	}
}

// Mirror eviction passes take turns the way scheduled retention does, on
// a lease of their own: a replica's eviction claim does not hold back
// another's retention run, and the claim passes on once its interval ends.
func TestClaimInterval_MirrorEvictionRunsOnOneReplicaPerInterval(t *testing.T) {
	c := clocktest.New()
	path := filepath.Join(t.TempDir(), "metadata.db")
	a, b := replicaNamed(t, path, c, "host-a"), replicaNamed(t, path, c, "host-b")
	ctx := context.Background()
	claim := func(s *registry.Service, lease, holder string) bool {
		t.Helper()
		won, err := s.ClaimInterval(ctx, lease, holder, 10*time.Minute)
		if err != nil {
			t.Fatalf("%s claims %s: %v", holder, lease, err)
		}
		return won
	}
	if !claim(a, registry.MirrorEvictLease, "a") {
		t.Fatal("a did not win the first eviction claim")
	}
	if claim(b, registry.MirrorEvictLease, "b") {
		t.Fatal("b won the eviction claim within a's interval")
	}
	if !claim(b, registry.RetentionLease, "b") {
		t.Fatal("a's eviction claim held back b's retention claim")
	}
	c.Advance(10 * time.Minute)
	if !claim(b, registry.MirrorEvictLease, "b") {
		t.Fatal("b did not win the eviction claim after a's interval")
	}
	if claim(a, registry.MirrorEvictLease, "a") {
		t.Fatal("a won the eviction claim within b's interval")
	}
}

// A tag pushed again between the plan and the deletion is the push's: the
// run leaves it.
func TestRetention_RunLeavesATagMovedSinceThePlan(t *testing.T) {
	c := clocktest.New()
	svc := replicaOn(t, filepath.Join(t.TempDir(), "metadata.db"), c)
	ctx := context.Background()
	old, err := svc.PutManifest(ctx, "team/app", "main", ociManifest, imageManifest("old"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutManifest(ctx, "team/app", "main", ociManifest, imageManifest("new"), nil); err != nil {
		t.Fatal(err)
	}
	if err := svc.RetentionDeleteTag(ctx, "team/app", "main", old.Digest); !errors.Is(err, registry.ErrTagMoved) {
		t.Fatalf("deleting main as of %s: %v, want ErrTagMoved", old.Digest, err)
	}
	if tags, err := svc.Tags(ctx, "team/app", "", 0); err != nil || len(tags) != 1 {
		t.Fatalf("tags = %q, %v; want main kept", tags, err)
	}
	cur, err := svc.GetManifest(ctx, "team/app", "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RetentionDeleteTag(ctx, "team/app", "main", cur.Digest); err != nil {
		t.Fatalf("deleting main where it points: %v", err)
	}
	if tags, _ := svc.Tags(ctx, "team/app", "", 0); len(tags) != 0 {
		t.Errorf("tags = %q; want main deleted", tags)
	}
}

// Under floating-tags=semver, a version tag that retention deletes moves
// its floating tags back as a manual delete does, guarded or not.
func TestRetention_DeletingAVersionMovesItsFloatingTags(t *testing.T) {
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "metadata.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	svc := floatingService(t, db)
	ctx := registry.WithActor(context.Background(), "alice")
	older, err := svc.PutManifest(ctx, "team/app", "1.0.0", ociManifest, imageManifest("1.0.0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutManifest(ctx, "team/app", "1.0.1", ociManifest, imageManifest("1.0.1"), nil); err != nil {
		t.Fatal(err)
	}
	if err := svc.Policies().Set(ctx, "team/app", map[string]string{registry.KeyRetention: "match=1.0.0|1.0|1|latest"}); err != nil {
		t.Fatal(err)
	}
	run, err := svc.RunRetention(ctx, "team/app", "manual")
	if err != nil || run.DeletedTags != 1 || run.Failures != 0 {
		t.Fatalf("run = %+v, %v; want 1.0.1 deleted", run, err)
	}
	for _, tag := range []string{"1.0", "1", "latest"} {
		m, err := svc.GetManifest(ctx, "team/app", tag)
		if err != nil || m.Digest != older.Digest {
			t.Errorf("%s after the run: %v, %v; want 1.0.0's %s", tag, m, err, older.Digest)
		}
	}
}

// A run reports to the webhooks subscribed to retention: the totals, and
// per repository what went.
func TestRetention_RunIsSentToWebhooks(t *testing.T) {
	c := clocktest.New()
	path := filepath.Join(t.TempDir(), "metadata.db")
	svc := replicaOn(t, path, c)
	db, err := sqldb.OpenSQLite(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := registry.WithActor(context.Background(), "alice")
	if _, err := db.CreateWebhook(ctx, &metadata.Webhook{Namespace: "team", Pattern: "team/*", URL: "http://127.0.0.1:1/hook",
		Events: []string{metadata.EventRetention}, Format: "cloudevents", Secrets: []string{"whsec_test"}}); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"keep", "drop"} {
		if _, err := svc.PutManifest(ctx, "team/app", tag, ociManifest, imageManifest(tag), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.Policies().Set(ctx, "team/*", map[string]string{registry.KeyRetention: "match=keep"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RunRetention(ctx, "team/*", "manual"); err != nil {
		t.Fatal(err)
	}
	ds, err := db.ClaimDeliveries(ctx, "test", c.Now(), c.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Action+" "+d.Repo+" "+d.Detail)
	}
	if len(ds) != 2 || ds[0].Repo != "" || !strings.Contains(ds[0].Detail, `"deleted_tags":1`) ||
		ds[1].Repo != "team/app" || !strings.Contains(ds[1].Detail, `"tag":"drop"`) || !strings.Contains(ds[1].Detail, "kept by no rule") {
		t.Errorf("deliveries:\n%s", strings.Join(got, "\n"))
	}
}
