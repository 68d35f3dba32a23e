package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/semver"
)

// Tag is a tag as the decision sees it.
type Tag struct {
	Name     string
	Digest   digest.Digest
	PushedAt time.Time
	// LastPulled is zero for a tag never pulled (pulls are recorded per
	// tag, in batches a few seconds apart).
	LastPulled time.Time
}

// Manifest is a manifest of the repository as the decision sees it.
type Manifest struct {
	Digest    digest.Digest
	CreatedAt time.Time
	// Subject is the manifest it refers to, if any.
	Subject digest.Digest
	// Children are the manifests an index lists.
	Children []digest.Digest
}

// TagDecision says whether a tag stays, and why.
type TagDecision struct {
	Tag    string
	Digest digest.Digest
	Keep   bool
	Reason string
}

// ManifestDecision says whether an untagged manifest goes, and why.
type ManifestDecision struct {
	Digest digest.Digest
	Keep   bool
	Reason string
}

// Plan is the decision for one repository. Tags lists every tag, in name
// order. Manifests lists the untagged manifests the untagged= clause looks
// at (none without it); those deleted come in an order that deletes an
// index before its children and a subject before its referrers.
type Plan struct {
	Tags      []TagDecision
	Manifests []ManifestDecision
}

// DeletedTags lists the tags the plan deletes.
func (p Plan) DeletedTags() []TagDecision {
	return slices.DeleteFunc(slices.Clone(p.Tags), func(d TagDecision) bool { return d.Keep })
}

// DeletedManifests lists the manifests the plan deletes, in deletion order.
func (p Plan) DeletedManifests() []ManifestDecision {
	return slices.DeleteFunc(slices.Clone(p.Manifests), func(d ManifestDecision) bool { return d.Keep })
}

// Decide applies p at time now to a repository's tags and manifests.
// Deleting a tag only untags: a manifest that a kept tag also names stays
// (the reason says so), and one left without tags is garbage collection's
// or a later untagged= clause's to delete. Only manifests untagged before
// the decision are considered for untagged=.
func Decide(p Policy, now time.Time, tags []Tag, manifests []Manifest) Plan {
	tags = slices.Clone(tags)
	slices.SortFunc(tags, func(a, b Tag) int { return strings.Compare(a.Name, b.Name) })
	var plan Plan
	ranks := make([]ranking, len(p.Rules))
	for i, r := range p.Rules {
		ranks[i] = rank(r, tags)
	}
	keptDigest := map[digest.Digest]string{} // digest → a kept tag naming it
	for _, t := range tags {
		d := TagDecision{Tag: t.Name, Digest: t.Digest}
		if len(p.Rules) == 0 {
			d.Keep, d.Reason = true, "no keep rules: tags are not pruned"
		}
		var misses []string
		for i, r := range p.Rules {
			why, ok := ranks[i].keeps(r, t, now)
			if ok {
				d.Keep, d.Reason = true, fmt.Sprintf("rule %d (%s): %s", i+1, r.Text, why)
				break
			}
			misses = append(misses, fmt.Sprintf("rule %d: %s", i+1, why))
		}
		if !d.Keep {
			d.Reason = "kept by no rule: " + strings.Join(misses, "; ")
		} else if _, ok := keptDigest[t.Digest]; !ok {
			keptDigest[t.Digest] = t.Name
		}
		plan.Tags = append(plan.Tags, d)
	}
	for i, d := range plan.Tags {
		if d.Keep {
			continue
		}
		if by, ok := keptDigest[d.Digest]; ok {
			plan.Tags[i].Reason += "; its manifest stays, tagged " + by
		}
	}
	if p.Untagged > 0 {
		plan.Manifests = decideUntagged(p.Untagged, now, tags, manifests)
	}
	return plan
}

// ranking is a rule's view of the tags it selects: each one's place by
// push time, and the version lines its semver conditions keep.
type ranking struct {
	selected map[string]bool
	byPush   map[string]int // tag → 1 for the newest push
	majors   map[uint64]int // major → 1 for the highest
	minors   map[[2]uint64]int
	patches  map[string]int // version tag → 1 for the highest of its minor line
}

func rank(r Rule, tags []Tag) ranking {
	rk := ranking{selected: map[string]bool{}, byPush: map[string]int{}, majors: map[uint64]int{},
		minors: map[[2]uint64]int{}, patches: map[string]int{}}
	var sel []Tag
	var versions []semver.Version
	for _, t := range tags {
		if (r.Match != nil && !r.Match.MatchString(t.Name)) || (r.Exclude != nil && r.Exclude.MatchString(t.Name)) {
			continue
		}
		rk.selected[t.Name] = true
		sel = append(sel, t)
		if v, ok := semver.Parse(t.Name); ok {
			versions = append(versions, v)
		}
	}
	// Newest first; equal times by name, so that the order never depends
	// on how the store listed the tags.
	slices.SortStableFunc(sel, func(a, b Tag) int { return b.PushedAt.Compare(a.PushedAt) })
	for i, t := range sel {
		rk.byPush[t.Name] = i + 1
	}
	// Highest first; equal versions (1.2.3 and v1.2.3) share a place.
	slices.SortStableFunc(versions, func(a, b semver.Version) int { return semver.Compare(b, a) })
	var prev *semver.Version
	place := 0
	for i := range versions {
		v := &versions[i]
		maj, min, _ := v.Numbers()
		if prev == nil || firstNum(*prev) != maj {
			rk.majors[maj] = len(rk.majors) + 1
		}
		line := [2]uint64{maj, min}
		if prev == nil || lineOf(*prev) != line {
			rk.minors[line] = len(rk.minors) + 1
			place = 0
		}
		if place == 0 || semver.Compare(*prev, *v) != 0 {
			place++
		}
		rk.patches[v.Tag] = place
		prev = v
	}
	return rk
}

func firstNum(v semver.Version) uint64 { maj, _, _ := v.Numbers(); return maj }

func lineOf(v semver.Version) [2]uint64 {
	maj, min, _ := v.Numbers()
	return [2]uint64{maj, min}
}

// keeps reports whether rule r keeps tag t and, either way, why: the
// conditions that hold, or the first that does not.
func (rk ranking) keeps(r Rule, t Tag, now time.Time) (string, bool) {
	if !rk.selected[t.Name] {
		if r.Match != nil && !r.Match.MatchString(t.Name) {
			return "does not match " + condText(r, "match"), false
		}
		return "excluded by " + condText(r, "exclude"), false
	}
	var held []string
	if r.Match != nil {
		held = append(held, "matches "+condText(r, "match"))
	}
	if r.Last > 0 {
		n := rk.byPush[t.Name]
		if n > r.Last {
			return fmt.Sprintf("%s newest push, not among the last %d", ordinal(n), r.Last), false
		}
		held = append(held, fmt.Sprintf("%s newest push", ordinal(n)))
	}
	age := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return ageText(now.Sub(at)) + " ago"
	}
	within := func(at time.Time, d time.Duration) bool { return !at.IsZero() && now.Sub(at) <= d }
	if r.Pushed > 0 {
		if !within(t.PushedAt, r.Pushed) {
			return "pushed " + age(t.PushedAt) + ", not within " + ageText(r.Pushed), false
		}
		held = append(held, "pushed "+age(t.PushedAt))
	}
	if r.Pulled > 0 {
		if !within(t.LastPulled, r.Pulled) {
			return "last pulled " + age(t.LastPulled) + ", not within " + ageText(r.Pulled), false
		}
		held = append(held, "pulled "+age(t.LastPulled))
	}
	if r.Used > 0 {
		if !within(t.PushedAt, r.Used) && !within(t.LastPulled, r.Used) {
			return fmt.Sprintf("pushed %s and last pulled %s, neither within %s", age(t.PushedAt), age(t.LastPulled), ageText(r.Used)), false
		}
		held = append(held, fmt.Sprintf("pushed %s, pulled %s", age(t.PushedAt), age(t.LastPulled)))
	}
	if r.SemverMajors > 0 || r.SemverMinors > 0 || r.SemverPatches > 0 {
		v, ok := semver.Parse(t.Name)
		if !ok {
			return "not a version (MAJOR.MINOR.PATCH)", false
		}
		maj, min, _ := v.Numbers()
		if n := rk.majors[maj]; r.SemverMajors > 0 {
			if n > r.SemverMajors {
				return fmt.Sprintf("major %d is the %s highest, not among the %d highest", maj, ordinal(n), r.SemverMajors), false
			}
			held = append(held, fmt.Sprintf("major %d is the %s highest", maj, ordinal(n)))
		}
		if n := rk.minors[[2]uint64{maj, min}]; r.SemverMinors > 0 {
			if n > r.SemverMinors {
				return fmt.Sprintf("line %d.%d is the %s highest, not among the %d highest", maj, min, ordinal(n), r.SemverMinors), false
			}
			held = append(held, fmt.Sprintf("line %d.%d is the %s highest", maj, min, ordinal(n)))
		}
		if n := rk.patches[t.Name]; r.SemverPatches > 0 {
			if n > r.SemverPatches {
				return fmt.Sprintf("the %s highest of line %d.%d, not among its %d highest", ordinal(n), maj, min, r.SemverPatches), false
			}
			held = append(held, fmt.Sprintf("the %s highest of line %d.%d", ordinal(n), maj, min))
		}
	}
	if len(held) == 0 {
		held = append(held, "selected")
	}
	return strings.Join(held, ", "), true
}

// condText is a condition of r as written.
func condText(r Rule, key string) string {
	for _, c := range strings.Fields(r.Text) {
		if strings.HasPrefix(c, key+"=") {
			return c
		}
	}
	return key
}

func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return fmt.Sprintf("%d%s", n, suffix)
}

// ageText writes an age in the units rules are written in.
func ageText(d time.Duration) string {
	day := 24 * time.Hour
	switch {
	case d >= day && d%day == 0 || d >= 2*day:
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	default:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
}

// decideUntagged decides the manifests no tag names. One pushed more than
// maxAge ago goes unless a manifest that stays holds it: an index that
// stays keeps its children, and a manifest that stays keeps its
// referrers (signatures, SBOMs), whichever way it stays.
func decideUntagged(maxAge time.Duration, now time.Time, tags []Tag, manifests []Manifest) []ManifestDecision {
	tagged := map[digest.Digest]bool{}
	for _, t := range tags {
		tagged[t.Digest] = true
	}
	byDigest := map[digest.Digest]*Manifest{}
	referrers := map[digest.Digest][]digest.Digest{}
	parents := map[digest.Digest][]digest.Digest{}
	for i := range manifests {
		m := &manifests[i]
		byDigest[m.Digest] = m
		if m.Subject != "" {
			referrers[m.Subject] = append(referrers[m.Subject], m.Digest)
		}
		for _, c := range m.Children {
			parents[c] = append(parents[c], m.Digest)
		}
	}
	cutoff := now.Add(-maxAge)
	reason := map[digest.Digest]string{} // manifests that stay
	var queue []digest.Digest
	var old []digest.Digest
	for _, m := range manifests {
		switch {
		case tagged[m.Digest]:
			reason[m.Digest] = "tagged"
		case !m.CreatedAt.Before(cutoff):
			reason[m.Digest] = fmt.Sprintf("untagged, pushed %s ago, within untagged=%s", ageText(now.Sub(m.CreatedAt)), ageText(maxAge))
		default:
			old = append(old, m.Digest)
			continue
		}
		queue = append(queue, m.Digest)
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		held := func(h digest.Digest, why string) {
			if _, ok := reason[h]; !ok && byDigest[h] != nil {
				reason[h] = why
				queue = append(queue, h)
			}
		}
		for _, c := range byDigest[d].Children {
			held(c, "child of index "+d.String()+", which stays")
		}
		for _, r := range referrers[d] {
			held(r, "referrer of "+d.String()+", which stays")
		}
	}
	var out []ManifestDecision
	slices.SortFunc(old, func(a, b digest.Digest) int { return cmp.Compare(a, b) })
	var gone []digest.Digest
	for _, d := range old {
		if why, ok := reason[d]; ok {
			out = append(out, ManifestDecision{Digest: d, Keep: true, Reason: why})
		} else {
			gone = append(gone, d)
		}
	}
	// Parents and subjects first: the store refuses to delete a child an
	// index still lists, and a referrer's subject is checked gone.
	done := map[digest.Digest]bool{}
	var visit func(d digest.Digest)
	visit = func(d digest.Digest) {
		if done[d] {
			return
		}
		done[d] = true
		for _, p := range parents[d] {
			if _, stays := reason[p]; !stays {
				visit(p)
			}
		}
		if s := byDigest[d].Subject; s != "" && byDigest[s] != nil {
			if _, stays := reason[s]; !stays {
				visit(s)
			}
		}
		m := byDigest[d]
		out = append(out, ManifestDecision{Digest: d, Reason: fmt.Sprintf("untagged, pushed %s ago, older than untagged=%s", ageText(now.Sub(m.CreatedAt)), ageText(maxAge))})
	}
	for _, d := range gone {
		visit(d)
	}
	return out
}
