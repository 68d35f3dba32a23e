package semver

import "sort"

// Move points floating tag Tag at the manifest version tag To points at,
// or, when To is "", deletes Tag.
type Move struct {
	Tag string
	To  string
}

// OnPush returns the floating tags that a push of version tag pushed
// moves, given the repository's other tags: each floating tag of its
// lines of which it is now the highest stable version (an equal one,
// 2.1.106_b2 beside 2.1.106, counts as the newer). A pre-release or a tag
// that is no version moves nothing. tags may include pushed.
func OnPush(tags []string, pushed string) []Move {
	v, ok := Parse(pushed)
	if !ok || !v.Stable() {
		return nil
	}
	floating := v.Floating()
	highest := []bool{true, true, true}
	// One pass, each tag parsed once: a repository may hold thousands of
	// versions, and this runs inside the push's transaction.
	for _, t := range tags {
		if t == pushed || !mayBeVersion(t) {
			continue
		}
		w, ok := Parse(t)
		if !ok || !w.Stable() || Compare(w, v) <= 0 {
			continue
		}
		for i, f := range floating {
			if highest[i] && inLine(w, f) {
				highest[i] = false
			}
		}
		if !highest[len(highest)-1] && !highest[0] && !highest[1] {
			break
		}
	}
	var out []Move
	for i, f := range floating {
		if highest[i] {
			out = append(out, Move{Tag: f, To: pushed})
		}
	}
	return out
}

// mayBeVersion is a cheap first look: a version starts with a digit or v
// and a digit.
func mayBeVersion(t string) bool {
	if t != "" && t[0] == 'v' {
		t = t[1:]
	}
	return t != "" && t[0] >= '0' && t[0] <= '9'
}

// OnDelete returns how floating tags fall back when the version tags in
// gone are deleted: each floating tag of their lines that pointed at one
// of them (target maps a tag to what it points at, before the delete)
// moves to the highest stable version of its line among remaining, or is
// deleted if none remains. Among equal versions the greatest tag wins, so
// that the answer does not depend on order.
func OnDelete(target map[string]string, remaining []string, gone []string) []Move {
	goneTarget := map[string]bool{}
	floating := map[string]bool{}
	for _, g := range gone {
		if v, ok := Parse(g); ok {
			goneTarget[target[g]] = true
			for _, f := range v.Floating() {
				floating[f] = true
			}
		}
	}
	var names []string
	for f := range floating {
		if to, exists := target[f]; exists && goneTarget[to] {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	var out []Move
	for _, f := range names {
		best, found := Version{}, false
		for _, t := range remaining {
			w, ok := Parse(t)
			if !ok || !inLine(w, f) {
				continue
			}
			if c := Compare(w, best); !found || c > 0 || c == 0 && t > best.Tag {
				best, found = w, true
			}
		}
		if found {
			out = append(out, Move{Tag: f, To: best.Tag})
		} else {
			out = append(out, Move{Tag: f})
		}
	}
	return out
}

// Lines returns, for each floating tag among tags, the version it stands
// for by the rules (the highest stable version of its line), latest first
// and then by version, highest first: the repository's version lines
// (latest → 3.0.0, 3 → 3.0.0, 3.0 → 3.0.0, 2 → 2.1.107, …).
func Lines(tags []string) []Move {
	present := map[string]bool{}
	for _, t := range tags {
		present[t] = true
	}
	best := map[string]Version{}
	for _, t := range tags {
		w, ok := Parse(t)
		if !ok || !w.Stable() {
			continue
		}
		for _, f := range w.Floating() {
			if b, seen := best[f]; present[f] && (!seen || Compare(w, b) > 0 || Compare(w, b) == 0 && t > b.Tag) {
				best[f] = w
			}
		}
	}
	out := make([]Move, 0, len(best))
	for f, v := range best {
		out = append(out, Move{Tag: f, To: v.Tag})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Tag == Latest) != (b.Tag == Latest) {
			return a.Tag == Latest
		}
		va, _ := Parse(a.To)
		vb, _ := Parse(b.To)
		if c := Compare(va, vb); c != 0 {
			return c > 0
		}
		return len(a.Tag) < len(b.Tag) || len(a.Tag) == len(b.Tag) && a.Tag < b.Tag
	})
	return out
}
