package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry"
)

// The size cap (Options.MaxSize) bounds what the mirrored namespaces
// hold: the usage the quota counts (each blob a namespace links once).
// Over it, Evict deletes cached images least recently pulled first, each
// tagged manifest with its tags and the platforms of an index, until its
// estimate says the rest fits; the garbage collection that follows
// prunes the links no manifest uses and reclaims the bytes nothing else
// references. Eviction deletes only in mirrored repositories: a blob that
// a local namespace links as well stays stored, and only the mirror's
// link to it goes.
//
// The estimate of what an image frees is its compressed size (every
// platform), never more than its repository holds. It over-counts what
// is shared between images or was never fetched (the other platforms of
// an index), so a pass may leave the mirror over its cap; the next pass,
// after the collection, measures again and evicts more. Over-counting
// errs on the side of keeping: a pass never evicts an image the cap did
// not need gone. What it cannot see is an evicted image whose links the
// collection kept (fetched within gc.grace): the next pass still counts
// those bytes and may evict more than the cap needs.

// evictPage is how many repositories or tags are listed at a time.
const evictPage = 200

// EvictReport is what one eviction pass did.
type EvictReport struct {
	// Usage is what the mirrored namespaces held before the pass.
	Usage int64
	// Evicted are the images deleted, as repo@digest, least recently
	// pulled first; Estimated the bytes they were expected to free.
	Evicted   []string
	Estimated int64
	// Collected reports the garbage collection that followed (zero when
	// nothing was evicted, or when a run elsewhere was under way).
	Collected metadata.Run
}

// cachedImage is a tagged manifest of a mirrored repository.
type cachedImage struct {
	repo      string
	digest    digest.Digest
	used      time.Time // last pulled, or cached if never pulled
	size      int64
	platforms []digest.Digest
}

// Namespaces are the local namespaces the mirror caches into.
func (m *Mirror) Namespaces() []string {
	var out []string
	for _, s := range m.sources {
		for _, ns := range append([]string{s.Prefix}, s.Namespaces...) {
			if ns != "" && !slices.Contains(out, ns) {
				out = append(out, ns)
			}
		}
	}
	return out
}

// MaxSize is the size cap, 0 if none.
func (m *Mirror) MaxSize() int64 { return m.opts.MaxSize }

// Usage is the storage the mirrored namespaces hold, as the quota counts it.
func (m *Mirror) Usage(ctx context.Context) (int64, error) {
	var total int64
	for _, ns := range m.Namespaces() {
		u, err := m.reg.NamespaceUsage(ctx, ns)
		if err != nil {
			return 0, fmt.Errorf("usage of %s: %w", ns, err)
		}
		total += u.Bytes
	}
	return total, nil
}

// Evict brings the mirror under Options.MaxSize, if it is over: it
// deletes the least recently pulled cached images and then runs the
// garbage collection, so that the next pass measures what is left.
func (m *Mirror) Evict(ctx context.Context) (EvictReport, error) {
	var rep EvictReport
	if m.opts.MaxSize <= 0 {
		return rep, nil
	}
	// Pull times wait in memory for a few seconds; LRU needs them now.
	if err := m.reg.FlushPulls(ctx); err != nil {
		return rep, err
	}
	usage, err := m.Usage(ctx)
	if err != nil {
		return rep, err
	}
	rep.Usage = usage
	if usage <= m.opts.MaxSize {
		return rep, nil
	}
	images, held, err := m.cachedImages(ctx)
	if err != nil {
		return rep, err
	}
	slices.SortStableFunc(images, func(a, b cachedImage) int { return a.used.Compare(b.used) })
	dctx := registry.WithActor(ctx, "mirror:evict")
	for _, img := range images {
		if usage-rep.Estimated <= m.opts.MaxSize || ctx.Err() != nil {
			break
		}
		if err := m.reg.DeleteManifest(dctx, img.repo, img.digest.String()); err != nil {
			if errors.Is(err, registry.ErrManifestUnknown) || errors.Is(err, registry.ErrNameUnknown) {
				continue // pulled away or deleted meanwhile
			}
			return rep, fmt.Errorf("evict %s@%s: %w", img.repo, img.digest, err)
		}
		for _, p := range img.platforms {
			if _, err := m.reg.DeleteUntaggedManifest(dctx, img.repo, p); err != nil {
				m.opts.Log.WarnContext(ctx, "evicted index's platform left in place", "repo", img.repo, "digest", p, "err", err)
			}
		}
		freed := min(img.size, held[img.repo])
		held[img.repo] -= freed
		rep.Estimated += freed
		rep.Evicted = append(rep.Evicted, img.repo+"@"+img.digest.String())
		m.opts.Log.InfoContext(ctx, "mirror evicted image", "repo", img.repo, "digest", img.digest, "last_used", img.used, "bytes", freed)
	}
	if len(rep.Evicted) == 0 {
		return rep, nil
	}
	gc := m.reg.GCRuns()
	if gc == nil {
		return rep, nil
	}
	run, err := gc.Run(ctx, "mirror")
	if errors.Is(err, registry.ErrGCBusy) {
		// The run under way, or the next, reclaims what was evicted.
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("garbage collection after eviction: %w", err)
	}
	rep.Collected = run
	return rep, nil
}

// cachedImages lists the tagged manifests of the mirrored repositories
// and what each repository holds.
func (m *Mirror) cachedImages(ctx context.Context) ([]cachedImage, map[string]int64, error) {
	var images []cachedImage
	held := map[string]int64{}
	for _, ns := range m.Namespaces() {
		for off := 0; ; off += evictPage {
			repos, _, err := m.reg.ListRepositoryInfo(ctx, metadata.RepositoryQuery{Namespace: ns, Sort: metadata.SortByName, Offset: off, Limit: evictPage})
			if err != nil {
				return nil, nil, err
			}
			for _, r := range repos {
				held[r.Name] = r.StorageSize
				imgs, err := m.repoImages(ctx, r.Name)
				if err != nil {
					return nil, nil, err
				}
				images = append(images, imgs...)
			}
			if len(repos) < evictPage {
				break
			}
		}
	}
	return images, held, nil
}

// repoImages lists repo's tagged manifests, once each however many tags
// point at one, used when the most recently pulled of them was.
func (m *Mirror) repoImages(ctx context.Context, repo string) ([]cachedImage, error) {
	byDigest := map[digest.Digest]int{}
	var out []cachedImage
	for off := 0; ; off += evictPage {
		tags, _, err := m.reg.ListTagDetails(ctx, repo, metadata.TagQuery{Sort: metadata.SortByName, Offset: off, Limit: evictPage})
		if errors.Is(err, registry.ErrNameUnknown) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", repo, err)
		}
		for _, t := range tags {
			used := t.PushedAt
			if t.LastPulled.After(used) {
				used = t.LastPulled
			}
			if i, ok := byDigest[t.Digest]; ok {
				if used.After(out[i].used) {
					out[i].used = used
				}
				continue
			}
			img := cachedImage{repo: repo, digest: t.Digest, used: used, size: t.Size}
			for _, p := range t.Platforms {
				if p.Digest != "" && p.Digest != t.Digest {
					img.platforms = append(img.platforms, p.Digest)
				}
			}
			byDigest[t.Digest] = len(out)
			out = append(out, img)
		}
		if len(tags) < evictPage {
			return out, nil
		}
	}
}
