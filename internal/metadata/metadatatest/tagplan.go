package metadatatest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// RunTagPlanner runs the contract of metadata.TagPlanner.
func RunTagPlanner(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.TagPlanner, metadata.Store)
	}{
		{"PutManifestPlanned_SeesTagsBeforeAndAppliesMoves", testPlannedPut},
		{"PutManifestPlanned_PlanErrorStoresNothing", testPlannedPutRefused},
		{"PutManifestPlanned_SeesEveryTagOfAManyTagged", testPlannedSeesEveryTag},
		{"DeleteManifestPlanned_AppliesMovesAfterTheDelete", testPlannedDeleteManifest},
		{"DeleteTagPlanned_AppliesMovesMissingIsNotFound", testPlannedDeleteTag},
		{"PutManifestPlanned_ConcurrentPlansSeeEachOthersMoves", testPlannedConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			p, ok := s.(metadata.TagPlanner)
			if !ok {
				t.Fatalf("%T is not a metadata.TagPlanner", s)
			}
			tc.test(t, p, s)
		})
	}
}

// tagMap reads repo's tags and what they point at.
func tagMap(t *testing.T, s metadata.Store, repo string) map[string]digest.Digest {
	t.Helper()
	names, err := s.ListTags(t.Context(), repo, "", 0)
	if err != nil {
		t.Fatalf("ListTags(%s): %v", repo, err)
	}
	out := map[string]digest.Digest{}
	for _, n := range names {
		info, err := s.GetTagInfo(t.Context(), repo, n)
		if err != nil {
			t.Fatalf("GetTagInfo(%s:%s): %v", repo, n, err)
		}
		out[n] = info.Digest
	}
	return out
}

func testPlannedPut(t *testing.T, p metadata.TagPlanner, s metadata.Store) {
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	putManifest(t, s, a, "1.0.0")
	var seen []metadata.TagTarget
	err := p.PutManifestPlanned(t.Context(), b, []string{"1.1.0"}, func(tags []metadata.TagTarget) ([]metadata.TagMove, error) {
		seen = tags
		return []metadata.TagMove{{Name: "latest", Digest: b.Digest, PushedBy: "wharf (for bob)"}, {Name: "1.0", Digest: a.Digest}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != (metadata.TagTarget{Name: "1.0.0", Digest: a.Digest}) {
		t.Errorf("the plan saw %v, want only 1.0.0 → a (the tags before the write)", seen)
	}
	want := map[string]digest.Digest{"1.0.0": a.Digest, "1.1.0": b.Digest, "latest": b.Digest, "1.0": a.Digest}
	if got := tagMap(t, s, "team/app"); !mapsEqual(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	info, err := s.GetTagInfo(t.Context(), "team/app", "latest")
	if err != nil || info.PushedBy != "wharf (for bob)" {
		t.Errorf("latest pushed by %q (%v), want the move's PushedBy", info.PushedBy, err)
	}
	// A move of a tag that exists records where it was.
	c := newManifest("team/app", "c")
	err = p.PutManifestPlanned(t.Context(), c, []string{"1.2.0"}, func([]metadata.TagTarget) ([]metadata.TagMove, error) {
		return []metadata.TagMove{{Name: "latest", Digest: c.Digest, PushedBy: "wharf (for bob)"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := s.(metadata.TagHistory); ok {
		got, _, err := h.TagChanges(t.Context(), "team/app", "latest", 0, 0)
		if err != nil || len(got) != 2 || got[0].From != b.Digest || got[0].To != c.Digest || got[1].From != "" || got[1].To != b.Digest {
			t.Errorf("history of latest = %+v, %v; want b → c, then new → b", got, err)
		}
	}
}

// A repository under semver floating tags holds hundreds of versions; a
// plan must see each of them with its digest, and none in a repository
// that has no tags yet.
func testPlannedSeesEveryTag(t *testing.T, p metadata.TagPlanner, s metadata.Store) {
	a, b, c := newManifest("team/app", "a"), newManifest("team/app", "b"), newManifest("team/app", "c")
	var seen []metadata.TagTarget
	plan := func(tags []metadata.TagTarget) ([]metadata.TagMove, error) {
		seen = tags
		return nil, nil
	}
	if err := p.PutManifestPlanned(t.Context(), a, []string{"1.0.0"}, plan); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 0 {
		t.Errorf("in a repository without tags the plan saw %v", seen)
	}
	want := map[string]digest.Digest{"1.0.0": a.Digest}
	var tags []string
	for i := range 300 {
		tag := fmt.Sprintf("v1.%d.%d_b-%d", i/20, i%20, i)
		tags = append(tags, tag)
		want[tag] = b.Digest
	}
	putManifest(t, s, b, tags...)
	if err := p.PutManifestPlanned(t.Context(), c, []string{"latest"}, plan); err != nil {
		t.Fatal(err)
	}
	got := map[string]digest.Digest{}
	for _, tg := range seen {
		got[tg.Name] = tg.Digest
	}
	if len(seen) != len(want) || !mapsEqual(got, want) {
		t.Errorf("the plan saw %d tags (%d distinct), want the %d before the write, each with its digest", len(seen), len(got), len(want))
	}
}

func mapsEqual(a, b map[string]digest.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

var errRefused = errors.New("refused by the plan")

func testPlannedPutRefused(t *testing.T, p metadata.TagPlanner, s metadata.Store) {
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	putManifest(t, s, a, "1.0.0")
	err := p.PutManifestPlanned(t.Context(), b, []string{"1.0.0"}, func([]metadata.TagTarget) ([]metadata.TagMove, error) {
		return nil, errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("PutManifestPlanned = %v, want the plan's error", err)
	}
	if _, err := s.GetManifest(t.Context(), "team/app", b.Digest); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("refused manifest stored: %v", err)
	}
	if got := tagMap(t, s, "team/app"); got["1.0.0"] != a.Digest {
		t.Errorf("refused write moved 1.0.0: %v", got)
	}
}

func testPlannedDeleteManifest(t *testing.T, p metadata.TagPlanner, s metadata.Store) {
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	putManifest(t, s, a, "1.0.0", "1")
	putManifest(t, s, b, "2.0.0", "latest", "2")
	var seen int
	err := p.DeleteManifestPlanned(t.Context(), "team/app", b.Digest, func(tags []metadata.TagTarget) ([]metadata.TagMove, error) {
		seen = len(tags)
		return []metadata.TagMove{{Name: "latest", Digest: a.Digest}, {Name: "2"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != 5 {
		t.Errorf("the plan saw %d tags, want all 5 before the delete", seen)
	}
	want := map[string]digest.Digest{"1.0.0": a.Digest, "1": a.Digest, "latest": a.Digest}
	if got := tagMap(t, s, "team/app"); !mapsEqual(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	err = p.DeleteManifestPlanned(t.Context(), "team/app", b.Digest, func([]metadata.TagTarget) ([]metadata.TagMove, error) { return nil, nil })
	wantErr(t, "DeleteManifestPlanned of a deleted manifest", err, metadata.ErrNotFound)
	err = p.DeleteManifestPlanned(t.Context(), "no/repo", b.Digest, func([]metadata.TagTarget) ([]metadata.TagMove, error) { return nil, nil })
	wantErr(t, "DeleteManifestPlanned in a missing repository", err, metadata.ErrNotFound)
}

func testPlannedDeleteTag(t *testing.T, p metadata.TagPlanner, s metadata.Store) {
	a, b := newManifest("team/app", "a"), newManifest("team/app", "b")
	putManifest(t, s, a, "1.0.0")
	putManifest(t, s, b, "1.0.1", "latest")
	err := p.DeleteTagPlanned(t.Context(), "team/app", "1.0.1", func([]metadata.TagTarget) ([]metadata.TagMove, error) {
		return []metadata.TagMove{{Name: "latest", Digest: a.Digest}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]digest.Digest{"1.0.0": a.Digest, "latest": a.Digest}
	if got := tagMap(t, s, "team/app"); !mapsEqual(got, want) {
		t.Errorf("tags = %v, want %v", got, want)
	}
	err = p.DeleteTagPlanned(t.Context(), "team/app", "1.0.1", func([]metadata.TagTarget) ([]metadata.TagMove, error) { return nil, nil })
	wantErr(t, "DeleteTagPlanned of a deleted tag", err, metadata.ErrNotFound)
	if got := tagMap(t, s, "team/app"); !mapsEqual(got, want) {
		t.Errorf("a refused delete changed the tags: %v", got)
	}
}

// Writers push v1…vN at once, each moving "latest" to itself only if no
// higher vK is there: unless each plan sees the moves of the ones before
// it, a lower push can win the race and leave latest behind.
func testPlannedConcurrent(t *testing.T, p metadata.TagPlanner, s metadata.Store) {
	const n = 8
	ms := make([]*metadata.Manifest, n)
	for i := range ms {
		ms[i] = newManifest("team/app", "v"+strconv.Itoa(i))
	}
	errs := race(n, func(i int) error {
		return p.PutManifestPlanned(t.Context(), ms[i], []string{"v" + strconv.Itoa(i)}, func(tags []metadata.TagTarget) ([]metadata.TagMove, error) {
			for _, tg := range tags {
				if k, err := strconv.Atoi(strings.TrimPrefix(tg.Name, "v")); err == nil && strings.HasPrefix(tg.Name, "v") && k > i {
					return nil, nil
				}
			}
			return []metadata.TagMove{{Name: "latest", Digest: ms[i].Digest}}, nil
		})
	})
	wantNoErrors(t, "PutManifestPlanned", errs)
	if got := tagMap(t, s, "team/app")["latest"]; got != ms[n-1].Digest {
		t.Errorf("latest = %s, want v%d's %s", got, n-1, ms[n-1].Digest)
	}
}
