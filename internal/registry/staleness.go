package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/humantime"
	"github.com/wharf/wharf/internal/metadata"
)

// BaseInfo is the base of an image as the UI and the API show it.
type BaseInfo struct {
	// Name is the base's repository; Tag the tag it was built from, as
	// well as can be told ("" if the base had none); Tags every tag that
	// named it when it was found.
	Name   string
	Digest digest.Digest
	Tag    string
	Tags   []string
	// Version is the most precise version tag among Tags (1.0 rather
	// than 1), what a list of the images built on a base shows.
	Version string
	Source  string
	// Outdated says the base moved on: Reason says how in words, and
	// Newer is what the tag points at now (or the newer version).
	Outdated bool
	Newer    *NewerBase
	Reason   string
	// Note is what was doubted when the base was found (an annotation
	// that did not hold).
	Note string
}

// NewerBase is the image a base's tag has moved to.
type NewerBase struct {
	Tag      string
	Digest   digest.Digest
	PushedAt time.Time
}

// DerivedImage is a tag built on a base, with its base's state.
type DerivedImage struct {
	Repo     string
	Tag      string
	Digest   digest.Digest
	PushedAt time.Time
	Base     BaseInfo
}

// ImageBase returns the base of repo:ref (a tag or a digest); for an
// index, the base of its first platform that has one. ErrManifestUnknown
// when there is no such manifest; a zero Name when no base is known.
func (s *Service) ImageBase(ctx context.Context, repo, ref string) (*BaseInfo, error) {
	if s.lineage == nil {
		return &BaseInfo{}, nil
	}
	if err := s.syncGolden(ctx); err != nil {
		return nil, err
	}
	m, err := s.viewManifest(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	ds := []digest.Digest{m.Digest}
	if parsed, err := parseManifest(m.MediaType, m.Content); err == nil && parsed.isIndex() {
		ds = parsed.childDigests()
	}
	var note string
	for _, d := range ds {
		f, err := s.recordedBase(ctx, repo, d)
		if errors.Is(err, metadata.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f == nil {
			continue
		}
		if f.lineage.Base.Repo == "" {
			note = cmpOr(note, f.lineage.Note)
			continue
		}
		tags, err := s.baseTags(ctx, f.lineage.Base.Repo)
		if err != nil {
			return nil, err
		}
		info := s.staleness(f.lineage.Base, tags)
		info.Note = f.lineage.Note
		return &info, nil
	}
	return &BaseInfo{Note: note}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// baseTags lists a base repository's tags; none if it is gone.
func (s *Service) baseTags(ctx context.Context, repo string) ([]metadata.Tag, error) {
	tags, err := s.lineage.TagTargets(ctx, repo)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nil
	}
	return tags, err
}

// DerivedQuery selects a page of the images built on a repository.
type DerivedQuery struct {
	// Tag, if set, keeps images built on what the base's tag points at
	// now.
	Tag           string
	Visible       *VisibleTo
	Offset, Limit int
}

// DerivedImages returns one page of the tags built on repo ("used by"),
// each with its base's state, and how many there are.
func (s *Service) DerivedImages(ctx context.Context, repo string, q DerivedQuery) ([]DerivedImage, int, error) {
	if err := ValidateName(repo); err != nil {
		return nil, 0, err
	}
	if s.lineage == nil {
		return []DerivedImage{}, 0, nil
	}
	if err := s.syncGolden(ctx); err != nil {
		return nil, 0, err
	}
	tags, err := s.lineage.TagTargets(ctx, repo)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, 0, nameUnknown(repo)
	}
	if err != nil {
		return nil, 0, err
	}
	mq := metadata.DerivedQuery{BaseRepo: repo, Visible: q.Visible, Offset: q.Offset, Limit: q.Limit}
	if q.Tag != "" {
		m, err := s.viewManifest(ctx, repo, q.Tag)
		if err != nil {
			return nil, 0, err
		}
		mq.BaseDigests = []digest.Digest{m.Digest}
		if parsed, err := parseManifest(m.MediaType, m.Content); err == nil && parsed.isIndex() {
			mq.BaseDigests = append(mq.BaseDigests, parsed.childDigests()...)
		}
	}
	rows, total, err := s.lineage.DerivedImages(ctx, mq)
	if err != nil {
		return nil, 0, err
	}
	out := make([]DerivedImage, 0, len(rows))
	// Rows mostly share a few bases: their state is worked out once each.
	memo := map[string]BaseInfo{}
	for _, r := range rows {
		key := r.Base.Digest.String() + " " + strings.Join(r.Base.Tags, " ")
		info, ok := memo[key]
		if !ok {
			info = s.staleness(r.Base, tags)
			memo[key] = info
		}
		out = append(out, DerivedImage{Repo: r.Repo, Tag: r.Tag, Digest: r.Digest, PushedAt: r.PushedAt, Base: info})
	}
	return out, total, nil
}

// staleness works out, from the base repository's tags now, whether base
// has moved on. The tag a base was built from is not in the image (docker
// records none), so each tag that named it when it was found is a
// candidate: the image is outdated when one of them now points elsewhere
// (latest counts only when it is the only one: every release moves it),
// or when a higher version of the same line exists (built on 1.0, 1.1 is
// out; on 2.1.106, 2.1.107 is).
func (s *Service) staleness(base metadata.BaseRef, tags []metadata.Tag) BaseInfo {
	info := BaseInfo{Name: base.Repo, Digest: base.Digest, Tags: base.Tags, Source: base.Source}
	now := map[string]metadata.Tag{}
	for _, t := range tags {
		now[t.Name] = t
	}
	info.Tag = describingTag(base.Tags)
	info.Version = info.Tag
	for _, name := range base.Tags {
		if name == "latest" && len(base.Tags) > 1 {
			continue
		}
		t, ok := now[name]
		if !ok || t.Digest == base.Digest {
			continue
		}
		info.Tag = name
		info.Outdated = true
		info.Newer = &NewerBase{Tag: versionTagAt(tags, t.Digest, name), Digest: t.Digest, PushedAt: t.PushedAt}
		info.Reason = fmt.Sprintf("built on %s:%s (%s); %s now points to %s, pushed %s",
			base.Repo, name, base.Digest, name, info.Newer.Tag, s.ago(t.PushedAt))
		return info
	}
	for _, name := range base.Tags {
		v, ok := parseVersion(name)
		if !ok {
			continue
		}
		var best *metadata.Tag
		var bestV []int
		for i := range tags {
			w, ok := parseVersion(tags[i].Name)
			if ok && sameLine(v, w) && w[len(w)-1] > v[len(v)-1] && (best == nil || w[len(w)-1] > bestV[len(bestV)-1]) {
				best, bestV = &tags[i], w
			}
		}
		if best != nil {
			info.Tag = name
			info.Outdated = true
			info.Newer = &NewerBase{Tag: best.Name, Digest: best.Digest, PushedAt: best.PushedAt}
			info.Reason = fmt.Sprintf("built on %s:%s (%s); %s is newer in the same line, pushed %s",
				base.Repo, name, base.Digest, best.Name, s.ago(best.PushedAt))
			return info
		}
	}
	return info
}

// describingTag picks the tag to name a current base by: the most
// precise version, else the first.
func describingTag(tags []string) string {
	best, bestLen := "", -1
	for _, t := range tags {
		if v, ok := parseVersion(t); ok && len(v) > bestLen {
			best, bestLen = t, len(v)
		}
	}
	if best == "" && len(tags) > 0 {
		best = tags[0]
	}
	return best
}

// versionTagAt names digest d by its most precise version tag, else by
// moved (the tag that moved to it).
func versionTagAt(tags []metadata.Tag, d digest.Digest, moved string) string {
	var names []string
	for _, t := range tags {
		if t.Digest == d {
			names = append(names, t.Name)
		}
	}
	if best := describingTag(names); best != "" {
		if _, ok := parseVersion(best); ok {
			return best
		}
	}
	return moved
}

// parseVersion reads a stable version tag (1, 1.0, v2.1.106); a
// pre-release or build suffix is not one.
func parseVersion(tag string) ([]int, bool) {
	tag = strings.TrimPrefix(tag, "v")
	if tag == "" {
		return nil, false
	}
	parts := strings.Split(tag, ".")
	if len(parts) > 3 {
		return nil, false
	}
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// sameLine reports whether v and w are versions of one line: as many
// components, all but the last equal. A major version alone (1) has no
// line: its tag moving says all.
func sameLine(v, w []int) bool {
	return len(v) > 1 && len(v) == len(w) && slices.Equal(v[:len(v)-1], w[:len(w)-1])
}

// ago says how long before now t was, in the largest whole unit.
func (s *Service) ago(t time.Time) string {
	return humantime.Ago(s.opts.Now(), t, "just now")
}

// OutdatedImages returns one page of the tags, of repositories visible
// allows, whose golden base has moved on, and how many there are. It
// reads the images built on each golden repository, so it costs what
// the "used by" lists of all golden repositories cost together: fine for
// a page people open, not for a push.
func (s *Service) OutdatedImages(ctx context.Context, visible *VisibleTo, offset, limit int) ([]DerivedImage, int, error) {
	if s.lineage == nil {
		return []DerivedImage{}, 0, nil
	}
	if err := s.syncGolden(ctx); err != nil {
		return nil, 0, err
	}
	golden, err := s.lineage.GoldenRepositories(ctx)
	if err != nil {
		return nil, 0, err
	}
	var all []DerivedImage
	for _, repo := range golden {
		rows, _, err := s.DerivedImages(ctx, repo, DerivedQuery{Visible: visible})
		if err != nil {
			return nil, 0, err
		}
		for _, r := range rows {
			if r.Base.Outdated {
				all = append(all, r)
			}
		}
	}
	slices.SortFunc(all, func(a, b DerivedImage) int {
		return strings.Compare(a.Repo+":"+a.Tag, b.Repo+":"+b.Tag)
	})
	total := len(all)
	lo := min(max(offset, 0), total)
	hi := total
	if limit > 0 {
		hi = min(lo+limit, total)
	}
	return all[lo:hi], total, nil
}
