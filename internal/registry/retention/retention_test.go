package retention_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/registry/retention"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func days(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }

func dg(s string) digest.Digest { return digest.FromString(s) }

// tag is a tag pushed `pushed` days ago pointing at the manifest named by
// its own name unless at says otherwise.
func tag(name string, pushed int, at ...string) retention.Tag {
	target := name
	if len(at) > 0 {
		target = at[0]
	}
	return retention.Tag{Name: name, Digest: dg(target), PushedAt: days(pushed)}
}

func deleted(p retention.Plan) []string {
	var out []string
	for _, d := range p.DeletedTags() {
		out = append(out, d.Tag)
	}
	return out
}

func TestDecide_Tags(t *testing.T) {
	pulled := func(tg retention.Tag, daysAgo int) retention.Tag { tg.LastPulled = days(daysAgo); return tg }
	versions := []retention.Tag{
		tag("1.0.0", 90), tag("1.0.1", 80), tag("1.1.0", 70), tag("1.1.1", 60), tag("1.1.2", 50),
		tag("1.2.0", 40), tag("1.2.1", 30), tag("2.0.0-rc.1", 25), tag("2.0.0", 20), tag("2.0.1", 10),
		tag("latest", 10, "2.0.1"), tag("main", 1), tag("v2.0.1", 9, "2.0.1"),
	}
	cases := []struct {
		name, policy string
		tags         []retention.Tag
		wantDeleted  []string
	}{
		{"no rules keeps everything", "untagged=7d", versions, nil},
		{"last keeps the newest pushes", "last=3", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.1.2", "1.2.0", "1.2.1", "2.0.0", "2.0.0-rc.1", "latest"}},
		{"equal push times rank by name", "last=1", []retention.Tag{tag("b", 5), tag("a", 5)}, []string{"b"}},
		{"pushed within", "pushed=20d", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.1.2", "1.2.0", "1.2.1", "2.0.0-rc.1"}},
		{"pulled within, never pulled fails", "pulled=7d",
			[]retention.Tag{pulled(tag("old", 100), 3), pulled(tag("stale", 100), 30), tag("new", 1)},
			[]string{"new", "stale"}},
		{"used is pushed or pulled", "used=7d",
			[]retention.Tag{pulled(tag("old", 100), 3), pulled(tag("stale", 100), 30), tag("new", 1)},
			[]string{"stale"}},
		{"match is anchored", "match=v1", []retention.Tag{tag("v1", 1), tag("v10", 1), tag("dev-v1", 1)},
			[]string{"dev-v1", "v10"}},
		{"match and exclude: v* but not rc", "match=v.* exclude=.*rc.*",
			[]retention.Tag{tag("v1", 1), tag("v2-rc1", 1), tag("x", 1)}, []string{"v2-rc1", "x"}},
		{"last ranks among the selected tags", "match=[0-9.]+ last=2", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.1.2", "1.2.0", "1.2.1", "2.0.0-rc.1", "latest", "main", "v2.0.1"}},
		{"highest patch of every minor", "semver-patches=1", versions,
			[]string{"1.0.0", "1.1.0", "1.1.1", "1.2.0", "2.0.0", "2.0.0-rc.1", "latest", "main"}},
		{"the highest 2 minor lines, whole", "semver-minors=2", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.1.2", "latest", "main"}},
		{"highest patch of the 3 highest minor lines, stable only", "semver-minors=3 semver-patches=1 exclude=.*-.*", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.2.0", "2.0.0", "2.0.0-rc.1", "latest", "main"}},
		{"highest major", "semver-majors=1", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.1.2", "1.2.0", "1.2.1", "latest", "main"}},
		{"rules OR: versions by semver, other tags by age", "semver-minors=1 semver-patches=1; exclude=[0-9.]+.* pushed=5d; match=latest", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.1.2", "1.2.0", "1.2.1", "2.0.0", "2.0.0-rc.1"}},
		{"conditions AND: matching and recent", "match=1\\..* pushed=45d", versions,
			[]string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.1.2", "2.0.0", "2.0.0-rc.1", "2.0.1", "latest", "main", "v2.0.1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := retention.Parse(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			got := deleted(retention.Decide(p, now, c.tags, nil))
			if !slices.Equal(got, c.wantDeleted) {
				t.Errorf("deleted %q, want %q", got, c.wantDeleted)
			}
		})
	}
}

// A tag that shares its manifest with a kept tag is still deleted (a tag
// is a name), and the reason says that the manifest stays.
func TestDecide_SharedDigestStaysWithTheKeptTag(t *testing.T) {
	p, _ := retention.Parse("match=latest")
	plan := retention.Decide(p, now, []retention.Tag{tag("latest", 1, "x"), tag("1.0.0", 1, "x"), tag("0.9.0", 9)}, nil)
	var reasons []string
	for _, d := range plan.DeletedTags() {
		reasons = append(reasons, d.Tag+": "+d.Reason)
	}
	if len(reasons) != 2 || !strings.Contains(reasons[1], "its manifest stays, tagged latest") || strings.Contains(reasons[0], "stays") {
		t.Errorf("reasons:\n%s", strings.Join(reasons, "\n"))
	}
}

func TestDecide_ReasonsNameTheRule(t *testing.T) {
	p, _ := retention.Parse("last=1; semver-patches=1")
	plan := retention.Decide(p, now, []retention.Tag{tag("1.0.0", 5), tag("1.0.1", 4), tag("main", 1)}, nil)
	want := map[string]string{
		"1.0.0": "kept by no rule: rule 1: 3rd newest push, not among the last 1; rule 2: the 2nd highest of line 1.0, not among its 1 highest",
		"1.0.1": "rule 2 (semver-patches=1): the 1st highest of line 1.0",
		"main":  "rule 1 (last=1): 1st newest push",
	}
	for _, d := range plan.Tags {
		if d.Reason != want[d.Tag] {
			t.Errorf("%s: reason %q, want %q", d.Tag, d.Reason, want[d.Tag])
		}
	}
}

func TestDecide_Untagged(t *testing.T) {
	m := func(name string, age int, subject string, children ...string) retention.Manifest {
		var cs []digest.Digest
		for _, c := range children {
			cs = append(cs, dg(c))
		}
		var s digest.Digest
		if subject != "" {
			s = dg(subject)
		}
		return retention.Manifest{Digest: dg(name), CreatedAt: days(age), Subject: s, Children: cs}
	}
	manifests := []retention.Manifest{
		m("tagged-index", 100, "", "amd64", "arm64"), m("amd64", 100, ""), m("arm64", 100, ""),
		m("sig-of-tagged", 100, "tagged-index"),
		m("old-index", 100, "", "old-child"), m("old-child", 100, ""),
		m("sbom-of-old", 100, "old-index"),
		m("young", 1, ""), m("sig-of-young", 100, "young"),
		m("young-index", 1, "", "old-child-of-young"), m("old-child-of-young", 100, ""),
		m("orphan-ref", 100, "gone"),
	}
	p, err := retention.Parse("untagged=30d")
	if err != nil {
		t.Fatal(err)
	}
	plan := retention.Decide(p, now, []retention.Tag{tag("v1", 100, "tagged-index")}, manifests)
	name := map[digest.Digest]string{}
	for _, x := range manifests {
		name[x.Digest] = string(x.Digest)
		for _, n := range []string{"tagged-index", "amd64", "arm64", "sig-of-tagged", "old-index", "old-child", "sbom-of-old", "young", "sig-of-young", "young-index", "old-child-of-young", "orphan-ref"} {
			if dg(n) == x.Digest {
				name[x.Digest] = n
			}
		}
	}
	var gone, kept []string
	for _, d := range plan.Manifests {
		if d.Keep {
			kept = append(kept, name[d.Digest])
		} else {
			gone = append(gone, name[d.Digest])
		}
	}
	slices.Sort(kept)
	if want := []string{"amd64", "arm64", "old-child-of-young", "sig-of-tagged", "sig-of-young"}; !slices.Equal(kept, want) {
		t.Errorf("kept %q, want %q", kept, want)
	}
	// Deletion order: the index before its child, the subject before its
	// referrer.
	pos := func(n string) int { return slices.Index(gone, n) }
	if len(gone) != 4 || pos("old-index") > pos("old-child") || pos("old-index") > pos("sbom-of-old") || pos("orphan-ref") < 0 {
		t.Errorf("deleted in order %q", gone)
	}
}

func TestParse_RefusesWithClearErrors(t *testing.T) {
	cases := map[string]string{
		"last=0":                   "rule 1 (last=0): last=0: want a whole number from 1",
		"last=3 last=4":            "last= is given twice",
		"keep=3":                   "unknown condition",
		"match=v[":                 "not a regular expression",
		"pushed=3x":                "want an age such as 30d",
		"last=3 untagged=7d":       "untagged= is a clause of its own",
		"untagged=7d; untagged=1d": "untagged= is given twice",
		"last=3;;last=4":           "rule 2 is empty",
		"last":                     "want KEY=VALUE",
	}
	for in, want := range cases {
		_, err := retention.Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
	}
	for _, ok := range []string{"", "last=10", " last=10 ; untagged=2w ;", "match=v.* exclude=.*-rc.* semver-minors=3 semver-patches=1; used=30d; untagged=36h"} {
		if _, err := retention.Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
		}
	}
}
