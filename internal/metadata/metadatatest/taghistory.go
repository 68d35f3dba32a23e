package metadatatest

import (
	"context"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// RunTagHistory runs the contract of metadata.TagHistory: every tag write
// is recorded in its transaction, and garbage collection holds what the
// kept records name. newStore must return a new, empty store that is a
// metadata.TagHistory, a metadata.TagPlanner and a metadata.Collector.
func RunTagHistory(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.TagHistory, metadata.Store)
	}{
		{"PutManifest_RecordsNewAndMovedTagsNotIdenticalRepush", testHistoryPush},
		{"ChangeInfo_NamesActorViaAndWindow", testHistoryChangeInfo},
		{"Deletes_RecordEveryTagTheyTake", testHistoryDeletes},
		{"PlannedMoves_RecordedAsFloating", testHistoryPlanned},
		{"TagChanges_NewestFirstPagedWithTotal", testHistoryPages},
		{"TagChanges_UnknownRepositoryIsNotFound", testHistoryUnknownRepo},
		{"UntaggedManifests_HoldWhatKeptHistoryNames", testHistoryHoldsFromGC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			h, ok := s.(metadata.TagHistory)
			if !ok {
				t.Fatalf("%T is not a metadata.TagHistory", s)
			}
			tc.test(t, h, s)
		})
	}
}

// step is the part of a TagChange a test compares.
type step struct {
	Tag, From, To, Actor, Via string
}

func changes(t *testing.T, h metadata.TagHistory, repo, tag string) []step {
	t.Helper()
	got, total, err := h.TagChanges(t.Context(), repo, tag, 0, 0)
	if err != nil {
		t.Fatalf("TagChanges(%s, %q): %v", repo, tag, err)
	}
	if total != len(got) {
		t.Errorf("TagChanges total = %d, listed %d", total, len(got))
	}
	out := make([]step, 0, len(got))
	for _, c := range got {
		out = append(out, step{c.Tag, c.From.String(), c.To.String(), c.Actor, c.Via})
	}
	return out
}

func wantSteps(t *testing.T, got []step, want ...step) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("history = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("history[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func testHistoryPush(t *testing.T, h metadata.TagHistory, s metadata.Store) {
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	a.PushedBy, b.PushedBy = "alice", "bob"
	putManifest(t, s, a, "latest", "1.0")
	putManifest(t, s, a, "latest") // identical re-push: no move
	putManifest(t, s, b, "latest")
	A, B := a.Digest.String(), b.Digest.String()
	wantSteps(t, changes(t, h, "team/app", "latest"),
		step{"latest", A, B, "bob", metadata.ViaPush},
		step{"latest", "", A, "alice", metadata.ViaPush})
	wantSteps(t, changes(t, h, "team/app", ""),
		step{"latest", A, B, "bob", metadata.ViaPush},
		step{"1.0", "", A, "alice", metadata.ViaPush},
		step{"latest", "", A, "alice", metadata.ViaPush})
}

func testHistoryChangeInfo(t *testing.T, h metadata.TagHistory, s metadata.Store) {
	a := newManifest("team/app", "a")
	ctx := metadata.WithChangeInfo(t.Context(), metadata.ChangeInfo{Actor: "carol", Via: metadata.ViaRollback, Keep: time.Hour})
	if err := s.PutManifest(ctx, a, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := h.TagChanges(t.Context(), "team/app", "v1", 0, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("TagChanges = %+v, %v", got, err)
	}
	c := got[0]
	if c.Actor != "carol" || c.Via != metadata.ViaRollback || c.To != a.Digest || c.Repo != "team/app" {
		t.Errorf("change = %+v, want carol's rollback to %s", c, a.Digest)
	}
	if d := c.KeepUntil.Sub(c.At); d != time.Hour {
		t.Errorf("kept for %v, want the 1h the write asked", d)
	}
	if c.At.IsZero() || time.Since(c.At) > time.Hour || c.ID == 0 {
		t.Errorf("change at %v id %d: want now and an id", c.At, c.ID)
	}
}

func testHistoryDeletes(t *testing.T, h metadata.TagHistory, s metadata.Store) {
	ctx := t.Context()
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	putManifest(t, s, a, "x", "y")
	putManifest(t, s, b, "z")
	del := metadata.WithChangeInfo(ctx, metadata.ChangeInfo{Actor: "dave", Via: metadata.ViaUI})
	if err := s.DeleteManifest(del, "team/app", a.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTag(metadata.WithChangeInfo(ctx, metadata.ChangeInfo{Actor: "erin"}), "team/app", "z"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteTag(missing)", s.DeleteTag(ctx, "team/app", "z"), metadata.ErrNotFound)
	A, B := a.Digest.String(), b.Digest.String()
	got := changes(t, h, "team/app", "")
	wantSteps(t, got[:3],
		step{"z", B, "", "erin", metadata.ViaDelete},
		step{"y", A, "", "dave", metadata.ViaUI},
		step{"x", A, "", "dave", metadata.ViaUI})
}

func testHistoryPlanned(t *testing.T, h metadata.TagHistory, s metadata.Store) {
	p, ok := s.(metadata.TagPlanner)
	if !ok {
		t.Skipf("%T is not a TagPlanner", s)
	}
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	putManifest(t, s, a, "1.0.0", "latest")
	b.PushedBy = "bob"
	err := p.PutManifestPlanned(t.Context(), b, []string{"1.1.0"}, func([]metadata.TagTarget) ([]metadata.TagMove, error) {
		return []metadata.TagMove{{Name: "latest", Digest: b.Digest, PushedBy: "wharf (for bob)"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.DeleteTagPlanned(t.Context(), "team/app", "1.1.0", func([]metadata.TagTarget) ([]metadata.TagMove, error) {
		return []metadata.TagMove{{Name: "latest", Digest: a.Digest, PushedBy: "wharf (for bob)"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	A, B := a.Digest.String(), b.Digest.String()
	wantSteps(t, changes(t, h, "team/app", "latest"),
		step{"latest", B, A, "wharf (for bob)", metadata.ViaFloating},
		step{"latest", A, B, "wharf (for bob)", metadata.ViaFloating},
		step{"latest", "", A, "", metadata.ViaPush})
}

func testHistoryPages(t *testing.T, h metadata.TagHistory, s metadata.Store) {
	var ds []digest.Digest
	for _, seed := range []string{"a", "b", "c", "d", "e"} {
		m := newManifest("team/app", seed)
		putManifest(t, s, m, "latest")
		putManifest(t, s, m, "other")
		ds = append(ds, m.Digest)
	}
	got, total, err := h.TagChanges(t.Context(), "team/app", "latest", 1, 2)
	if err != nil || total != 5 || len(got) != 2 {
		t.Fatalf("TagChanges(offset 1, 2) = %d of %d, %v; want 2 of 5", len(got), total, err)
	}
	if got[0].To != ds[3] || got[1].To != ds[2] || got[0].ID <= got[1].ID {
		t.Errorf("page = %+v, want the moves to d then c, newest first", got)
	}
}

func testHistoryUnknownRepo(t *testing.T, h metadata.TagHistory, _ metadata.Store) {
	_, _, err := h.TagChanges(t.Context(), "no/such", "latest", 0, 0)
	wantErr(t, "TagChanges(unknown repository)", err, metadata.ErrNotFound)
}

func testHistoryHoldsFromGC(t *testing.T, h metadata.TagHistory, s metadata.Store) {
	c, ok := s.(metadata.Collector)
	if !ok {
		t.Skipf("%T is not a Collector", s)
	}
	ctx := t.Context()
	a, b, loose := newManifest("team/app", "a"), newManifest("team/app", "b"), newManifest("team/app", "loose")
	putManifest(t, s, loose)
	putManifest(t, s, a, "latest")
	putManifest(t, s, b, "latest") // a is untagged now, but the move is kept
	wantUntagged(t, c, loose.Digest)
	if ok, err := c.DeleteUntaggedManifest(ctx, metadata.ManifestRef{Repo: "team/app", Digest: a.Digest}, later()); err != nil || ok {
		t.Errorf("DeleteUntaggedManifest(held by history) = %v, %v; want false", ok, err)
	}
	// Once the record has gone, so does the hold.
	if n, err := h.PruneTagHistory(ctx, time.Now().Add(metadata.DefaultTagHistory+time.Hour)); err != nil || n != 2 {
		t.Fatalf("PruneTagHistory = %d, %v; want the 2 moves", n, err)
	}
	wantUntagged(t, c, a.Digest, loose.Digest)
	if _, total, _ := h.TagChanges(ctx, "team/app", "", 0, 0); total != 0 {
		t.Errorf("%d changes left after the prune", total)
	}
}

func wantUntagged(t *testing.T, c metadata.Collector, want ...digest.Digest) {
	t.Helper()
	refs, err := c.UntaggedManifests(context.WithoutCancel(t.Context()), later(), 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[digest.Digest]bool{}
	for _, r := range refs {
		got[r.Digest] = true
	}
	if len(got) != len(want) {
		t.Errorf("UntaggedManifests = %v, want %v", refs, want)
	}
	for _, d := range want {
		if !got[d] {
			t.Errorf("UntaggedManifests = %v, want %s among them", refs, d)
		}
	}
}
