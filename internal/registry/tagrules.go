package registry

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// Immutable tags (immutable-tags=GLOB,…) and the tag history window
// (tag-history=DURATION). Immutability is checked inside the transaction
// of the tag write, by the plan that also moves semver floating tags
// (floating.go), so that a concurrent push cannot slip a move past it.
// An identical re-push is no move: retried CI jobs keep working.

// The keys of tag lifecycle.
const (
	KeyImmutableTags = "immutable-tags"
	KeyTagHistory    = "tag-history"
)

// checkTagGlobs accepts a comma-separated list of path.Match globs ("" for
// none).
func checkTagGlobs(v string) error {
	for _, g := range splitGlobs(v) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%q is not a glob (want 1.*, v*, release-?, [0-9]*)", g)
		}
	}
	return nil
}

func splitGlobs(v string) []string {
	var out []string
	for _, g := range strings.Split(v, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// ParseKeep parses a tag-history window: a Go duration (36h) or a number
// of days (14d), above zero.
func ParseKeep(v string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("want a duration such as 14d or 36h")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("want a duration such as 14d or 36h")
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("want a duration above zero")
	}
	return d, nil
}

func checkKeep(v string) error {
	_, err := ParseKeep(v)
	return err
}

// tagRules are the policies a tag write of one repository obeys.
type tagRules struct {
	repo      string
	float     Setting
	immutable Setting
	globs     []string
}

func (r *tagRules) floats() bool { return r.float.Value == "semver" }

// protects returns the immutable-tags glob that tag matches.
func (r *tagRules) protects(tag string) (string, bool) {
	for _, g := range r.globs {
		if ok, _ := path.Match(g, tag); ok {
			return g, true
		}
	}
	return "", false
}

// refuseMove refuses to move or delete tag (pointing at old) if an
// immutable-tags glob protects it; to is "" for a delete.
func (r *tagRules) refuseMove(tag string, old, to digest.Digest) error {
	glob, ok := r.protects(tag)
	if !ok || old == to {
		return nil
	}
	why := "it points to " + old.String() + " and cannot be moved; push under a new tag instead"
	if to == "" {
		why = "it points to " + old.String() + " and cannot be deleted"
	}
	return Errorf(ErrDenied, "tag %q is immutable in %s (policy %s=%s, set on %s): %s",
		tag, r.repo, KeyImmutableTags, glob, r.immutable.Pattern, why).
		withDetail(map[string]any{"tag": tag, "digest": old.String(), "policy": r.immutable.Pattern + " " + KeyImmutableTags + "=" + r.immutable.Value})
}

// tagWrite prepares a tag write in repo, reading its policies once: the
// store's planner and the rules the write obeys (the planner is nil when
// no rule applies, or the store cannot plan, and the plain write does),
// and ctx recording the changes as made by the request's actor and kept
// for repo's tag-history window.
func (s *Service) tagWrite(ctx context.Context, repo string) (metadata.TagPlanner, *tagRules, context.Context, error) {
	info := metadata.ChangeInfoOf(ctx)
	if info.Actor == "" {
		info.Actor = Actor(ctx)
	}
	if s.policies == nil {
		return nil, nil, metadata.WithChangeInfo(ctx, info), nil
	}
	set, err := s.policies.Settings(ctx, repo, KeyFloatingTags, KeyImmutableTags, KeyTagHistory)
	if err != nil {
		return nil, nil, nil, err
	}
	if info.Keep == 0 {
		if info.Keep, err = ParseKeep(set[2].Value); err != nil {
			// A value stored before the check existed: the default holds.
			info.Keep = metadata.DefaultTagHistory
		}
	}
	ctx = metadata.WithChangeInfo(ctx, info)
	r := &tagRules{repo: repo, float: set[0], immutable: set[1], globs: splitGlobs(set[1].Value)}
	planner, ok := s.meta.(metadata.TagPlanner)
	if !ok || (!r.floats() && len(r.globs) == 0) {
		return nil, nil, ctx, nil
	}
	return planner, r, ctx, nil
}

// WithTagVia returns ctx whose tag moves and deletes the history records
// as made via how (metadata.ViaUI, metadata.ViaRetention, …) instead of
// the plain push or delete.
func WithTagVia(ctx context.Context, how string) context.Context {
	info := metadata.ChangeInfoOf(ctx)
	info.Via = how
	return metadata.WithChangeInfo(ctx, info)
}
