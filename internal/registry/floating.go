package registry

import (
	"context"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/semver"
)

// Semver floating tags (floating-tags=semver): a pushed version tag moves
// the floating tags of its lines (2.1, 2, latest) of which it is the
// highest stable version, a deleted one lets them fall back, and version
// tags are immutable. The rules are internal/semver's, which the client's
// `wharf image push --semver` follows too; here they run inside the
// transaction of the write (metadata.TagPlanner), so that two versions
// pushed at once cannot leave a floating tag on the lower one.

// FloatingPusher is who a floating tag moved by the registry is recorded
// as pushed by: the registry, on behalf of the pusher of the version. The
// space keeps it from ever being an account's name.
func FloatingPusher(actor string) string {
	if actor == "" {
		actor = "anonymous"
	}
	return floatingPrefix + actor + ")"
}

const floatingPrefix = "wharf (for "

// MovedFor is the account on whose behalf the registry moved the tag (a
// floating tag), "" when an account pushed it itself.
func (t TagDetail) MovedFor() string {
	if rest, ok := strings.CutPrefix(t.PushedBy, floatingPrefix); ok {
		return strings.TrimSuffix(rest, ")")
	}
	return ""
}

func isVersion(tag string) bool {
	_, ok := semver.Parse(tag)
	return ok
}

// pushPlan refuses to move an immutable tag or (under semver floating
// tags) a version tag to another manifest, and moves the floating tags a
// push of manifest d under tags calls for.
func pushPlan(r *tagRules, d digest.Digest, tags []string, actor string) metadata.TagPlan {
	return func(current []metadata.TagTarget) ([]metadata.TagMove, error) {
		target := make(map[string]digest.Digest, len(current)+len(tags))
		names := make([]string, 0, len(current)+len(tags))
		for _, t := range current {
			target[t.Name] = t.Digest
			names = append(names, t.Name)
		}
		for _, t := range tags {
			if old, ok := target[t]; ok {
				if err := r.refuseMove(t, old, d); err != nil {
					return nil, err
				}
				if old != d && r.floats() && isVersion(t) {
					return nil, Errorf(ErrDenied, "tag %s of %s is a version and points to %s: versions are immutable under the floating-tags=semver policy on %s; push a new version instead",
						t, r.repo, old, r.float.Pattern).withDetail(map[string]any{"tag": t, "digest": old.String(), "policy": r.float.Pattern + " " + KeyFloatingTags + "=semver"})
				}
			}
			if _, ok := target[t]; !ok {
				names = append(names, t)
			}
			target[t] = d
		}
		if !r.floats() {
			return nil, nil
		}
		var moves []metadata.TagMove
		for _, t := range tags {
			for _, m := range semver.OnPush(names, t) {
				// A tag the client pushed itself is its own to set, and one
				// already there stays as it was recorded.
				if slices.Contains(tags, m.Tag) || target[m.Tag] == d {
					continue
				}
				if old, ok := target[m.Tag]; ok {
					if err := r.refuseMove(m.Tag, old, d); err != nil {
						return nil, err
					}
				}
				moves = append(moves, metadata.TagMove{Name: m.Tag, Digest: d, PushedBy: FloatingPusher(actor)})
				target[m.Tag] = d
			}
		}
		return moves, nil
	}
}

// deletePlan refuses to delete an immutable tag and lets the floating
// tags that pointed at the deleted version tags fall back. gone picks the
// tags the delete removes.
func deletePlan(r *tagRules, gone func(t metadata.TagTarget) bool, actor string) metadata.TagPlan {
	return func(current []metadata.TagTarget) ([]metadata.TagMove, error) {
		target := make(map[string]string, len(current))
		digests := make(map[string]digest.Digest, len(current))
		var removed, remaining []string
		for _, t := range current {
			target[t.Name], digests[t.Name] = t.Digest.String(), t.Digest
			if gone(t) {
				if err := r.refuseMove(t.Name, t.Digest, ""); err != nil {
					return nil, err
				}
				removed = append(removed, t.Name)
			} else {
				remaining = append(remaining, t.Name)
			}
		}
		if !r.floats() {
			return nil, nil
		}
		var moves []metadata.TagMove
		for _, m := range semver.OnDelete(target, remaining, removed) {
			old := digests[m.Tag]
			if err := r.refuseMove(m.Tag, old, digests[m.To]); err != nil {
				return nil, err
			}
			if m.To == "" {
				moves = append(moves, metadata.TagMove{Name: m.Tag})
				continue
			}
			moves = append(moves, metadata.TagMove{Name: m.Tag, Digest: digests[m.To], PushedBy: FloatingPusher(actor)})
		}
		return moves, nil
	}
}

// VersionLine is a floating tag and the version it stands for.
type VersionLine struct {
	Tag     string
	Version string
}

// VersionLines lists repo's floating tags with the version each stands
// for (the highest stable version of its line), latest first.
func (s *Service) VersionLines(ctx context.Context, repo string) ([]VersionLine, error) {
	tags, err := s.Tags(ctx, repo, "", 0)
	if err != nil {
		return nil, err
	}
	var out []VersionLine
	for _, m := range semver.Lines(tags) {
		out = append(out, VersionLine{Tag: m.Tag, Version: m.To})
	}
	return out, nil
}
