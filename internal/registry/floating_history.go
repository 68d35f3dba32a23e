package registry

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/semver"
)

// FloatingRelease is one release in the evolution of a repository's
// floating tags: a version pushed, and the version each floating tag
// pointed at once the push (and the moves it caused) was done.
type FloatingRelease struct {
	Version string
	At      time.Time
	Actor   string
	// Points maps a floating tag to the version it stood for, "" where
	// the tag did not exist or pointed at no known version.
	Points map[string]string
}

// FloatingEvolution is the table of the chapter's figure: releases (newest
// first) × floating tags (latest first, then wider lines first).
type FloatingEvolution struct {
	Tags     []string
	Releases []FloatingRelease
}

// evolutionLimit bounds the changes replayed for the table: the history
// window bounds them already, this bounds a busy repository's page.
const evolutionLimit = 5000

// FloatingEvolution replays repo's tag history to show where its floating
// tags pointed after each version was pushed. Only what the history still
// holds (its tag-history window) is shown.
func (s *Service) FloatingEvolution(ctx context.Context, repo string) (*FloatingEvolution, error) {
	changes, _, err := s.TagHistory(ctx, repo, "", 0, evolutionLimit)
	if err != nil {
		return nil, err
	}
	slices.Reverse(changes) // oldest first
	state := map[string]digest.Digest{}
	version := map[digest.Digest]string{} // the last version pushed with each digest
	floating := map[string]bool{}
	out := &FloatingEvolution{}
	var cur *FloatingRelease
	snapshot := func() {
		if cur == nil {
			return
		}
		cur.Points = map[string]string{}
		for f := range floating {
			if d, ok := state[f]; ok {
				cur.Points[f] = version[d]
			}
		}
		out.Releases = append(out.Releases, *cur)
		cur = nil
	}
	for _, c := range changes {
		if c.To == "" {
			delete(state, c.Tag)
		} else {
			state[c.Tag] = c.To
		}
		switch {
		case c.Via == metadata.ViaFloating:
			floating[c.Tag] = true
		case c.To != "" && isVersion(c.Tag):
			snapshot()
			version[c.To] = c.Tag
			cur = &FloatingRelease{Version: c.Tag, At: c.At, Actor: c.Actor}
		}
	}
	snapshot()
	if len(floating) == 0 {
		return out, nil
	}
	// A floating tag seen after its release's row was taken still shows
	// from the rows after it: the rows before it had none.
	for f := range floating {
		out.Tags = append(out.Tags, f)
	}
	slices.SortFunc(out.Tags, compareFloating)
	slices.Reverse(out.Releases)
	return out, nil
}

// compareFloating orders latest first, then by line, wider and higher
// first (2, 2.1, 1, 1.9).
func compareFloating(a, b string) int {
	if a == semver.Latest || b == semver.Latest {
		switch {
		case a == b:
			return 0
		case a == semver.Latest:
			return -1
		}
		return 1
	}
	pa, pb := strings.Split(strings.TrimPrefix(a, "v"), "."), strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil && na != nb {
			return nb - na
		}
		if c := strings.Compare(pa[i], pb[i]); (ea != nil || eb != nil) && c != 0 {
			return c
		}
	}
	return len(pa) - len(pb)
}
