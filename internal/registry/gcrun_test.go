package registry_test

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// gcReplica opens another Service on dir's SQLite database and blob
// directory, as a second process on the same data would, with the clock
// and schedule given.
func gcReplica(t *testing.T, dir string, c *clocktest.Clock, sched registry.GCSchedule) *registry.Service {
	t.Helper()
	blobs, err := fs.New(filepath.Join(dir, "blobs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := sqldb.OpenSQLite(t.Context(), filepath.Join(dir, "metadata.db"), nil, sqldb.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = meta.Close() })
	svc := registry.New(meta, blobs, slog.New(slog.DiscardHandler), registry.Options{Now: c.Now, GC: sched})
	t.Cleanup(svc.GCRuns().Stop)
	return svc
}

func tick(t *testing.T, svc *registry.Service) (metadata.Run, bool) {
	t.Helper()
	run, ran, err := svc.GCRuns().Tick(t.Context())
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if ran && run.Outcome != metadata.RunOK {
		t.Fatalf("scheduled run ended %s: %s", run.Outcome, run.Error)
	}
	return run, ran
}

// The schedule is the job's last start in the database: a tick runs a
// collection only once the interval has passed since any replica started
// one, so replicas that tick more often than the interval run it once.
// An admin's run ignores the schedule; an interval of 0 schedules none.
func TestGCRuns_TickRunsOnceAnIntervalAmongReplicas(t *testing.T) {
	dir := t.TempDir()
	c := clocktest.New()
	sched := registry.GCSchedule{Interval: time.Hour, UntaggedAge: 24 * time.Hour}
	sched.Replica = "a"
	a := gcReplica(t, dir, c, sched)
	sched.Replica = "b"
	b := gcReplica(t, dir, c, sched)

	if _, ran := tick(t, a); !ran {
		t.Fatal("a's first tick ran nothing: a job never run is due")
	}
	if _, ran := tick(t, b); ran {
		t.Fatal("b ran a collection right after a's")
	}
	c.Advance(59 * time.Minute)
	for _, svc := range []*registry.Service{a, b} {
		if _, ran := tick(t, svc); ran {
			t.Fatal("a tick within the interval ran a collection")
		}
	}
	c.Advance(2 * time.Minute)
	if _, ran := tick(t, b); !ran {
		t.Fatal("b's tick once the interval passed ran nothing")
	}
	if _, ran := tick(t, a); ran {
		t.Fatal("a ran a collection right after b's")
	}
	if _, err := a.GCRuns().Run(t.Context(), "admin:alice"); err != nil {
		t.Fatalf("an admin's run within the interval: %v", err)
	}

	runs, total, err := a.GCRuns().List(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Trigger+"@"+r.Replica+":"+r.Outcome)
	}
	if want := []string{"admin:alice@a:ok", "schedule@b:ok", "schedule@a:ok"}; total != 3 || !slices.Equal(got, want) {
		t.Errorf("runs = %v (of %d), want %v", got, total, want)
	}

	off := gcReplica(t, dir, c, registry.GCSchedule{Replica: "off"})
	c.Advance(48 * time.Hour)
	if _, ran := tick(t, off); ran {
		t.Error("a replica with interval 0 ran a scheduled collection")
	}
}

// A scheduled run collects an untagged manifest (and the blobs only it
// held) once it is older than the untagged age, not at the grace period,
// and keeps tagged images whatever their age.
func TestGCRuns_UntaggedManifestsGoAfterTheirAge(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	c := clocktest.New()
	svc := gcReplica(t, dir, c, registry.GCSchedule{Interval: time.Hour, Grace: time.Hour, UntaggedAge: 24 * time.Hour, Replica: "a"})
	kept := newTestImage([]byte("config kept"), []byte("layer kept"))
	if err := kept.push(ctx, svc, "team/app", "v1"); err != nil {
		t.Fatal(err)
	}
	loose := newTestImage([]byte("config loose"), []byte("layer loose, only this image has it"))
	if err := loose.push(ctx, svc, "team/app", loose.digest().String()); err != nil {
		t.Fatal(err)
	}

	c.Advance(2 * time.Hour) // past the grace, within the untagged age
	if run, ran := tick(t, svc); !ran || run.Manifests != 0 || run.Blobs != 0 {
		t.Fatalf("run 2h after the push = %+v (ran %v); want nothing collected", run, ran)
	}
	if _, err := svc.GetManifest(ctx, "team/app", loose.digest().String()); err != nil {
		t.Fatalf("the untagged manifest went before its age: %v", err)
	}

	c.Advance(23 * time.Hour)
	run, ran := tick(t, svc)
	if !ran || run.Manifests != 1 || run.Blobs != 2 {
		t.Fatalf("run 25h after the push = %+v (ran %v); want the untagged manifest and its 2 blobs", run, ran)
	}
	if want := int64(len("config loose") + len("layer loose, only this image has it")); run.Bytes != want {
		t.Errorf("reclaimed %d bytes, want %d", run.Bytes, want)
	}
	if _, err := svc.GetManifest(ctx, "team/app", loose.digest().String()); !errors.Is(err, registry.ErrManifestUnknown) {
		t.Errorf("the untagged manifest after its age: %v, want it gone", err)
	}
	for d := range kept.blobs {
		if err := readBlob(ctx, svc, "team/app", d); err != nil {
			t.Errorf("tagged image's blob %s: %v", d, err)
		}
	}
}

// Two replicas on one PostgreSQL database ticking as fast as they can
// (an interval of a nanosecond) and starting admin runs never collect at
// the same time: the lease admits one run at a time, whichever replica
// asks. The runs' recorded times (each replica's clock, on one machine)
// must not overlap.
func TestGCRuns_TwoReplicasOnOnePostgresNeverRunAtOnce(t *testing.T) {
	w := newSharedStores(t)
	replicas := map[string]*registry.Service{}
	for _, name := range []string{"a", "b"} {
		meta, err := sqldb.Open(t.Context(), w.dbURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = meta.Close() })
		svc := registry.New(meta, w.blobStore(t), slog.New(slog.DiscardHandler), registry.Options{
			GC: registry.GCSchedule{Interval: time.Nanosecond, UntaggedAge: time.Nanosecond, Replica: name}})
		t.Cleanup(svc.GCRuns().Stop)
		replicas[name] = svc
	}
	// Something for each run to look at, so that runs take a while.
	for i := range 6 {
		img := newTestImage(fmt.Appendf(nil, "config %d", i), fmt.Appendf(nil, "layer %d", i))
		if err := img.push(t.Context(), replicas["a"], fmt.Sprintf("team/app%d", i), "v1"); err != nil {
			t.Fatal(err)
		}
	}
	const attempts = 20
	var wg sync.WaitGroup
	ran := map[string]int{}
	var mu sync.Mutex
	for name, svc := range replicas {
		wg.Go(func() {
			for i := range attempts {
				var err error
				if i%4 == 3 {
					_, err = svc.GCRuns().Run(t.Context(), "admin:"+name)
				} else {
					var did bool
					_, did, err = svc.GCRuns().Tick(t.Context())
					if !did && err == nil {
						err = registry.ErrGCBusy
					}
				}
				switch {
				case errors.Is(err, registry.ErrGCBusy):
				case err != nil:
					t.Errorf("replica %s: %v", name, err)
					return
				default:
					mu.Lock()
					ran[name]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	runs, total, err := replicas["a"].GCRuns().List(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d runs: %v", total, ran)
	if total != ran["a"]+ran["b"] || total == 0 {
		t.Fatalf("%d runs recorded, %v reported run", total, ran)
	}
	slices.Reverse(runs) // oldest first
	for i, r := range runs {
		if r.Outcome != metadata.RunOK {
			t.Errorf("run %d on %s: %s %s", r.ID, r.Replica, r.Outcome, r.Error)
		}
		if i > 0 && r.StartedAt.Before(runs[i-1].FinishedAt) {
			t.Errorf("run %d on %s started at %s, before run %d on %s ended at %s",
				r.ID, r.Replica, r.StartedAt.Format(time.StampMicro), runs[i-1].ID, runs[i-1].Replica, runs[i-1].FinishedAt.Format(time.StampMicro))
		}
	}
}
