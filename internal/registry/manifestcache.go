package registry

import (
	"context"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// manifestResolver is an optional metadata.Store capability: answering
// "which digest does this tag name" and "does this repository hold this
// manifest" without reading the manifest. With it, a pull asks the store
// only that (one indexed lookup) and takes the bytes from manifestCache.
type manifestResolver interface {
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
	HasManifest(ctx context.Context, repo string, d digest.Digest) (bool, error)
}

const (
	// manifestCacheBytes bounds the cache's content. Manifests are mostly a
	// few KiB, so this holds thousands: every hot tag of a busy registry.
	manifestCacheBytes = 16 << 20
	// manifestCacheMaxEntry keeps a few huge indexes from pushing out
	// everything else; bigger manifests are read from the store each time.
	manifestCacheMaxEntry = 256 << 10
)

// manifestCache keeps manifests by (repository, digest). A digest names
// its bytes, so an entry can never be stale in what it serves; the only
// question is whether the repository still holds the manifest, and the
// caller asks the store that on every request (ResolveTag, HasManifest)
// before using an entry. That keeps it correct with several replicas
// sharing one database: nothing here is keyed by tag, and a tag moved or
// deleted elsewhere is seen by the next lookup. Deletes in this process
// drop the entry too, only to free the memory sooner.
//
// The zero value is ready. Entries are read-only: GetManifest hands them
// out as they are, to every caller.
type manifestCache struct {
	mu      sync.RWMutex
	entries map[manifestKey]*metadata.Manifest
	bytes   int
}

type manifestKey struct {
	repo   string
	digest digest.Digest
}

func (c *manifestCache) get(repo string, d digest.Digest) *metadata.Manifest {
	c.mu.RLock()
	m := c.entries[manifestKey{repo, d}]
	c.mu.RUnlock()
	return m
}

func (c *manifestCache) put(m *metadata.Manifest) {
	size := len(m.Content) + len(m.Repo) + len(m.Digest) + len(m.MediaType)
	if size > manifestCacheMaxEntry {
		return
	}
	k := manifestKey{m.Repo, m.Digest}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[manifestKey]*metadata.Manifest{}
	}
	if _, ok := c.entries[k]; ok {
		return
	}
	// Over budget: drop entries in map order, which Go randomises; random
	// eviction is close enough to LRU for a cache this size and needs no
	// bookkeeping on the read path.
	for key, old := range c.entries {
		if c.bytes+size <= manifestCacheBytes {
			break
		}
		c.bytes -= cachedSize(old)
		delete(c.entries, key)
	}
	c.entries[k] = m
	c.bytes += size
}

func (c *manifestCache) drop(repo string, d digest.Digest) {
	k := manifestKey{repo, d}
	c.mu.Lock()
	if old, ok := c.entries[k]; ok {
		c.bytes -= cachedSize(old)
		delete(c.entries, k)
	}
	c.mu.Unlock()
}

func cachedSize(m *metadata.Manifest) int {
	return len(m.Content) + len(m.Repo) + len(m.Digest) + len(m.MediaType)
}

// manifestByDigest returns manifest d of repo from the cache, else from
// the store, caching it. Callers must know that repo holds d now (the
// store just said so); a manifest deleted since is reported missing.
func (s *Service) manifestByDigest(ctx context.Context, repo string, d digest.Digest) (*metadata.Manifest, error) {
	m := s.manifests.get(repo, d)
	if m == nil {
		var err error
		if m, err = s.meta.GetManifest(ctx, repo, d); err != nil {
			return nil, err
		}
		s.manifests.put(m)
	}
	return m, nil
}

// pullByDigest is GetManifest by digest through the cache: one existence
// check in the store on a hit, the read on a miss.
func (s *Service) pullByDigest(ctx context.Context, res manifestResolver, repo string, d digest.Digest) (*metadata.Manifest, error) {
	if s.manifests.get(repo, d) != nil {
		ok, err := res.HasManifest(ctx, repo, d)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, metadata.ErrNotFound
		}
	}
	return s.manifestByDigest(ctx, repo, d)
}
