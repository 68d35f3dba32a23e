package metadatatest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// RunRetention runs the contract of metadata.RetentionStore and
// metadata.Leaser.
func RunRetention(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.Store)
	}{
		{"TagUses_ListsPushAndPullTimes", testTagUses},
		{"ManifestNodes_ListsSubjectsAndChildrenOfOneRepository", testManifestNodes},
		{"RetentionRuns_RoundTripNewestFirstAndPage", testRetentionRuns},
		{"ClaimLease_OneHolderUntilItLapses", testClaimLease},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if _, ok := s.(metadata.RetentionStore); !ok {
				t.Fatalf("%T is not a metadata.RetentionStore", s)
			}
			if _, ok := s.(metadata.Leaser); !ok {
				t.Fatalf("%T is not a metadata.Leaser", s)
			}
			tc.test(t, s)
		})
	}
}

func testTagUses(t *testing.T, s metadata.Store) {
	rs := s.(metadata.RetentionStore)
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	putManifest(t, s, a, "v2", "latest")
	putManifest(t, s, b, "v1")
	putManifest(t, s, newManifest("team/other", "a"), "elsewhere")
	pulled := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := s.AddPulls(t.Context(), []metadata.Pull{{Repo: "team/app", Tag: "v1", Count: 3, At: pulled}}); err != nil {
		t.Fatal(err)
	}
	got, err := rs.TagUses(t.Context(), "team/app")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range got {
		names = append(names, u.Name)
		if u.PushedAt.IsZero() {
			t.Errorf("%s has no push time", u.Name)
		}
		want := map[string]digest.Digest{"latest": a.Digest, "v2": a.Digest, "v1": b.Digest}[u.Name]
		if u.Digest != want {
			t.Errorf("%s points at %s, want %s", u.Name, u.Digest, want)
		}
		if wantPulled := map[string]time.Time{"v1": pulled}[u.Name]; !u.LastPulled.Equal(wantPulled) {
			t.Errorf("%s last pulled %v, want %v", u.Name, u.LastPulled, wantPulled)
		}
	}
	if want := []string{"latest", "v1", "v2"}; !slices.Equal(names, want) {
		t.Errorf("TagUses lists %q, want %q", names, want)
	}
	_, err = rs.TagUses(t.Context(), "team/none")
	wantErr(t, "TagUses(unknown)", err, metadata.ErrNotFound)
}

func testManifestNodes(t *testing.T, s metadata.Store) {
	rs := s.(metadata.RetentionStore)
	amd, arm := newManifest("team/app", "amd64"), newManifest("team/app", "arm64")
	putManifest(t, s, amd)
	putManifest(t, s, arm)
	idx := &metadata.Manifest{Repo: "team/app", MediaType: mediaTypeIndex, Children: []digest.Digest{amd.Digest, arm.Digest}}
	idx.Content = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"digest":%q},{"digest":%q}]}`, mediaTypeIndex, amd.Digest, arm.Digest)
	idx.Digest = digest.FromBytes(idx.Content)
	putManifest(t, s, idx, "v1")
	sig := newReferrer("team/app", "sig", idx.Digest, "application/vnd.dev.cosign", nil)
	putManifest(t, s, sig)
	putManifest(t, s, newManifest("team/other", "x"))
	got, err := rs.ManifestNodes(t.Context(), "team/app")
	if err != nil {
		t.Fatal(err)
	}
	byDigest := map[digest.Digest]metadata.ManifestNode{}
	var order []digest.Digest
	for _, n := range got {
		if n.CreatedAt.IsZero() {
			t.Errorf("%s has no creation time", n.Digest)
		}
		byDigest[n.Digest] = n
		order = append(order, n.Digest)
	}
	if len(got) != 4 || !slices.IsSorted(order) {
		t.Fatalf("ManifestNodes lists %v, want the 4 manifests of team/app in digest order", order)
	}
	children := byDigest[idx.Digest].Children
	slices.Sort(children)
	want := []digest.Digest{amd.Digest, arm.Digest}
	slices.Sort(want)
	if !slices.Equal(children, want) {
		t.Errorf("index children %v, want %v", children, want)
	}
	if byDigest[sig.Digest].Subject != idx.Digest || byDigest[amd.Digest].Subject != "" || len(byDigest[amd.Digest].Children) != 0 {
		t.Errorf("subjects or children wrong: %+v", got)
	}
	if none, err := rs.ManifestNodes(t.Context(), "team/none"); err != nil || len(none) != 0 {
		t.Errorf("ManifestNodes(unknown) = %v, %v; want none", none, err)
	}
}

func testRetentionRuns(t *testing.T, s metadata.Store) {
	rs := s.(metadata.RetentionStore)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var added []metadata.RetentionRun
	for i := range 3 {
		run := metadata.RetentionRun{StartedAt: at.Add(time.Duration(i) * time.Hour), FinishedAt: at.Add(time.Duration(i)*time.Hour + time.Second),
			Trigger: "schedule", Scope: "*", Repositories: int64(i), DeletedTags: int64(10 + i), DeletedManifests: 2, Failures: int64(i % 2),
			Report: fmt.Appendf(nil, `{"run":%d}`, i), Replica: fmt.Sprintf("host-%d", i)}
		if i == 2 {
			run.Trigger, run.Actor, run.Scope = "manual", "alice", "team/*"
		}
		if err := rs.AddRetentionRun(t.Context(), &run); err != nil {
			t.Fatal(err)
		}
		if run.ID == 0 || (i > 0 && run.ID <= added[i-1].ID) {
			t.Fatalf("run %d got ID %d after %v", i, run.ID, added)
		}
		added = append(added, run)
	}
	got, err := rs.ListRetentionRuns(t.Context(), 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []metadata.RetentionRun{added[2], added[1]}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListRetentionRuns(0, 2) =\n%+v\nwant\n%+v", got, want)
	}
	rest, err := rs.ListRetentionRuns(t.Context(), got[1].ID, 0)
	if err != nil || len(rest) != 1 || rest[0].ID != added[0].ID {
		t.Errorf("ListRetentionRuns(before %d) = %+v, %v; want run %d", got[1].ID, rest, err, added[0].ID)
	}
	// The job runs, which the admin page and API list, name the replica
	// as they do for a collection.
	jobs, _, err := s.(metadata.RunStore).ListRuns(t.Context(), "retention", 0, 1)
	if err != nil || len(jobs) != 1 || jobs[0].ID != added[2].ID || jobs[0].Replica != "host-2" {
		t.Errorf("ListRuns(retention) = %+v, %v; want run %d by host-2", jobs, err, added[2].ID)
	}
}

func testClaimLease(t *testing.T, s metadata.Store) {
	l := s.(metadata.Leaser)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	claim := func(name, holder string, now time.Time, want bool) {
		t.Helper()
		ok, err := l.ClaimLease(t.Context(), name, holder, now, now.Add(time.Minute))
		if err != nil || ok != want {
			t.Fatalf("ClaimLease(%s, %s, %v) = %v, %v; want %v", name, holder, now.Sub(t0), ok, err, want)
		}
	}
	claim("retention", "a", t0, true)
	claim("retention", "b", t0.Add(30*time.Second), false)
	claim("retention", "a", t0.Add(30*time.Second), false) // its own live lease too
	claim("gc", "b", t0.Add(30*time.Second), true)         // another job's lease
	claim("retention", "b", t0.Add(time.Minute), true)     // lapsed: until 2m
	claim("retention", "a", t0.Add(90*time.Second), false)
	claim("gc", "a", t0.Add(90*time.Second), true)
}
