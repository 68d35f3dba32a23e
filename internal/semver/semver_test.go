package semver

import (
	"cmp"
	"maps"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for tag, want := range map[string]struct {
		ok       bool
		floating []string
	}{
		"2.1.106":        {true, []string{"2.1", "2", "latest"}},
		"v2.1.106":       {true, []string{"v2.1", "v2", "latest"}},
		"0.0.1":          {true, []string{"0.0", "0", "latest"}},
		"3.0.0-rc.1":     {true, nil},
		"v3.0.0-alpha":   {true, nil},
		"2.1.106_b7":     {true, []string{"2.1", "2", "latest"}},
		"2.1.106+b7":     {true, []string{"2.1", "2", "latest"}},
		"2.1.106-rc.1_x": {true, nil},
		"2.1":            {false, nil},
		"2":              {false, nil},
		"latest":         {false, nil},
		"v2":             {false, nil},
		"02.1.106":       {false, nil},
		"2.1.106.1":      {false, nil},
		"2.1.x":          {false, nil},
		"2.1.106-":       {false, nil},
		"2.1.106_":       {false, nil},
		"2.1.106-rc..1":  {false, nil},
		"V2.1.106":       {false, nil},
		"main":           {false, nil},
	} {
		v, ok := Parse(tag)
		if ok != want.ok || !slices.Equal(v.Floating(), want.floating) {
			t.Errorf("Parse(%q) = %v, floating %v; want %v, %v", tag, ok, v.Floating(), want.ok, want.floating)
		}
	}
}

func TestCompare_PrecedenceIgnoresBuildMetadata(t *testing.T) {
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"}
	for i := range order {
		for j := range order {
			a, _ := Parse(order[i])
			b, _ := Parse(order[j])
			if got, want := Compare(a, b), cmp.Compare(i, j); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := Parse("2.1.106_b1")
	b, _ := Parse("v2.1.106+b2")
	if Compare(a, b) != 0 {
		t.Errorf("build metadata and the v prefix change the precedence")
	}
}

// repo is a repository's tags (tag → manifest) that pushes and deletes
// change by the rules, as the registry applies them.
type repo map[string]string

func (r repo) push(tag, manifest string) {
	r[tag] = manifest
	for _, m := range OnPush(slices.Collect(maps.Keys(r)), tag) {
		r[m.Tag] = r[m.To]
	}
}

func (r repo) deleteTag(tag string) {
	before := maps.Clone(r)
	delete(r, tag)
	for _, m := range OnDelete(before, slices.Collect(maps.Keys(r)), []string{tag}) {
		if m.To == "" {
			delete(r, m.Tag)
		} else {
			r[m.Tag] = r[m.To]
		}
	}
}

func (r repo) want(t *testing.T, step string, want map[string]string) {
	t.Helper()
	for tag, m := range want {
		if got, ok := r[tag]; m == "" && ok {
			t.Errorf("%s: %s points to %s, want no such tag", step, tag, got)
		} else if m != "" && got != m {
			t.Errorf("%s: %s points to %q, want %s", step, tag, got, m)
		}
	}
}

// TestRules_TheChaptersTagStory is the book's figure: the tags move over
// releases, and only the highest stable version of a line moves it.
func TestRules_TheChaptersTagStory(t *testing.T) {
	r := repo{}
	r.push("2.1.106", "A")
	r.want(t, "2.1.106", map[string]string{"2.1": "A", "2": "A", "latest": "A"})
	r.push("2.1.107", "B")
	r.want(t, "2.1.107", map[string]string{"2.1": "B", "2": "B", "latest": "B"})
	r.push("3.0.0-rc.1", "RC")
	r.want(t, "3.0.0-rc.1 moves nothing", map[string]string{"2.1": "B", "2": "B", "latest": "B", "3": "", "3.0": ""})
	r.push("3.0.0", "C")
	r.want(t, "3.0.0", map[string]string{"latest": "C", "3": "C", "3.0": "C", "2": "B", "2.1": "B"})
	r.push("2.1.105", "OLD")
	r.want(t, "a late 2.1.105 moves nothing", map[string]string{"latest": "C", "2": "B", "2.1": "B", "2.1.105": "OLD"})
	r.push("2.0.9", "HOTFIX")
	r.want(t, "a late 2.0.9 moves only 2.0", map[string]string{"2.0": "HOTFIX", "2": "B", "latest": "C"})
	r.deleteTag("3.0.0")
	r.want(t, "deleting 3.0.0", map[string]string{"latest": "B", "3": "", "3.0": "", "2": "B", "3.0.0-rc.1": "RC"})
	r.deleteTag("2.0.9")
	r.want(t, "deleting the only 2.0", map[string]string{"2.0": "", "2": "B"})
}

func TestRules_VStyleKeepsItsOwnLines(t *testing.T) {
	r := repo{}
	r.push("v1.2.3", "A")
	r.want(t, "v1.2.3", map[string]string{"v1.2": "A", "v1": "A", "latest": "A", "1.2": "", "1": ""})
	r.push("1.2.4", "B")
	r.want(t, "1.2.4", map[string]string{"1.2": "B", "1": "B", "latest": "B", "v1.2": "A", "v1": "A"})
	r.push("v1.2.2", "OLD")
	r.want(t, "v1.2.2", map[string]string{"v1.2": "A", "latest": "B"})
}

func TestRules_BuildMetadataIsIgnored(t *testing.T) {
	r := repo{}
	r.push("1.0.0_b1", "A")
	r.want(t, "1.0.0_b1", map[string]string{"1.0": "A", "latest": "A"})
	// An equal version pushed later is the newer build.
	r.push("1.0.0_b2", "B")
	r.want(t, "1.0.0_b2", map[string]string{"1.0": "B", "latest": "B"})
	r.deleteTag("1.0.0_b2")
	r.want(t, "delete 1.0.0_b2", map[string]string{"1.0": "A", "latest": "A"})
}

func TestRules_NoVersionNoMove(t *testing.T) {
	if m := OnPush([]string{"2.1.106", "latest"}, "main"); m != nil {
		t.Errorf("pushing main moves %v", m)
	}
	if m := OnDelete(map[string]string{"main": "X", "latest": "X"}, []string{"latest"}, []string{"main"}); m != nil {
		t.Errorf("deleting main moves %v", m)
	}
	// A floating tag pointing elsewhere (moved by hand) is left alone.
	if m := OnDelete(map[string]string{"1.0.0": "A", "latest": "Z", "1.0": "A", "1": "A"}, []string{"latest"}, []string{"1.0.0"}); !slices.Equal(m, []Move{{Tag: "1"}, {Tag: "1.0"}}) {
		t.Errorf("OnDelete = %v, want 1 and 1.0 deleted, latest kept", m)
	}
}

func TestLines(t *testing.T) {
	got := Lines([]string{"2.1.106", "2.1.107", "3.0.0-rc.1", "3.0.0", "2.1.105", "latest", "2", "2.1", "3", "3.0", "main"})
	want := []Move{{"latest", "3.0.0"}, {"3", "3.0.0"}, {"3.0", "3.0.0"}, {"2", "2.1.107"}, {"2.1", "2.1.107"}}
	if !slices.Equal(got, want) {
		t.Errorf("Lines = %v, want %v", got, want)
	}
	if got := Lines([]string{"1.0.0", "main"}); len(got) != 0 {
		t.Errorf("Lines without floating tags = %v", got)
	}
}
