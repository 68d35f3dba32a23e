// Package proxy is wharf's pull-through cache: names that configured
// upstream registries serve are fetched from them on first pull and kept
// in the ordinary blob store and metadata, so that garbage collection,
// S3 and replicas treat them as any other content. Blobs and manifests
// by digest are kept for good; a tag is revalidated with a HEAD once its
// TTL has passed. It never speaks HTTP itself: an Upstream does.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registry"
)

// MaxManifestSize bounds a manifest read from an upstream, as a push is.
const MaxManifestSize = registry.DefaultMaxManifestSize

var (
	// ErrNotFound means the upstream does not have what was asked.
	ErrNotFound = errors.New("not found upstream")
	// ErrUnreachable means the upstream could not answer.
	ErrUnreachable = errors.New("upstream unreachable")
)

// Manifest is a manifest as an upstream served it.
type Manifest struct {
	Digest    digest.Digest
	MediaType string
	Body      []byte
}

// Upstream is what the cache needs of a mirrored registry.
type Upstream interface {
	// Manifest fetches ref (a tag or a digest) of repo.
	Manifest(ctx context.Context, repo, ref string) (*Manifest, error)
	// ManifestDigest asks which digest ref has now, without a pull.
	ManifestDigest(ctx context.Context, repo, ref string) (digest.Digest, error)
	// Blob opens blob d of repo and says its length.
	Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error)
}

// Source is one configured upstream and the names it serves.
type Source struct {
	// Host is the registry's name as clients write it (?ns=).
	Host string
	// Prefix is the local namespace its names live under ("" for none).
	Prefix string
	// Namespaces are served under their own names (library/busybox).
	Namespaces []string
	Upstream   Upstream

	stats sourceStats
}

type sourceStats struct {
	hits, misses, stale, bytesFetched, bytesSaved atomic.Int64
}

// Stats are a source's counters since the server started.
type Stats struct {
	Host, Prefix string
	Namespaces   []string
	// Hits were answered from the cache (Stale of them because the
	// upstream could not be asked); Misses were fetched upstream.
	Hits, Misses, Stale int64
	// BytesFetched came from the upstream; BytesSaved were blob bytes
	// served from the cache instead.
	BytesFetched, BytesSaved int64
}

// HitRate is Hits over all requests, 0 before any.
func (s Stats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Target is where a mirrored name leads.
type Target struct {
	Source *Source
	// Local is the repository in this registry that caches it.
	Local string
	// Remote is its name upstream.
	Remote string
}

// Options tune a Mirror.
type Options struct {
	// TagTTL is how long a cached tag is served before a HEAD upstream.
	TagTTL time.Duration
	// ServeStale serves a cached tag when the upstream cannot be asked.
	ServeStale bool
	// SpoolDir holds blobs while they are fetched.
	SpoolDir string
	// IdleTimeout ends a blob fetch whose upstream sends nothing for this
	// long, and a manifest request not answered whole within it (0:
	// never), so that a stalled upstream does not hold its clients, and
	// the blob or tag, forever.
	IdleTimeout time.Duration
	// MaxSize caps what the mirrored namespaces hold (0: no cap); Evict
	// deletes what was least recently pulled to get under it.
	MaxSize int64
	// AfterFunc starts the idle timer (time.AfterFunc when nil); tests
	// fire it by hand instead of waiting.
	AfterFunc func(d time.Duration, f func()) Timer
	Now       func() time.Time
	Log       *slog.Logger
}

// Timer is what the idle watchdog needs of a *time.Timer.
type Timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// Mirror is the pull-through cache over a registry service.
type Mirror struct {
	reg     *registry.Service
	sources []*Source
	opts    Options

	mu       sync.Mutex
	checked  map[string]time.Time // local:tag → last validated upstream
	inflight map[digest.Digest]*fetch
	fetches  sync.WaitGroup // blob fetches, until committed or failed
}

// Wait returns once every blob fetch started so far has been committed
// to the cache or has failed. Clients see a blob's last byte before its
// commit, so whoever counts what the cache holds right after a pull
// (eviction's tests) waits first.
func (m *Mirror) Wait() { m.fetches.Wait() }

// New returns a mirror of sources caching into reg.
func New(reg *registry.Service, sources []*Source, opts Options) *Mirror {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.AfterFunc == nil {
		opts.AfterFunc = func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
	}
	return &Mirror{reg: reg, sources: sources, opts: opts, checked: map[string]time.Time{}, inflight: map[digest.Digest]*fetch{}}
}

// Stats returns every source's counters.
func (m *Mirror) Stats() []Stats {
	out := make([]Stats, 0, len(m.sources))
	for _, s := range m.sources {
		out = append(out, Stats{Host: s.Host, Prefix: s.Prefix, Namespaces: s.Namespaces,
			Hits: s.stats.hits.Load(), Misses: s.stats.misses.Load(), Stale: s.stats.stale.Load(),
			BytesFetched: s.stats.bytesFetched.Load(), BytesSaved: s.stats.bytesSaved.Load()})
	}
	return out
}

// Sources are the configured upstreams.
func (m *Mirror) Sources() []*Source { return m.sources }

// Mirrored returns where a local repository name leads, if an upstream
// serves it: under a source's prefix, or in one of its namespaces. A
// single-component name (busybox) is library/busybox of the source
// serving library, as on Docker Hub, and cached there once for both.
func (m *Mirror) Mirrored(name string) (Target, bool) {
	if name == "" {
		return Target{}, false
	}
	first, rest, nested := strings.Cut(name, "/")
	for _, s := range m.sources {
		switch {
		case nested && s.Prefix != "" && first == s.Prefix && rest != "":
			return Target{Source: s, Local: name, Remote: rest}, true
		case nested && slices.Contains(s.Namespaces, first):
			return Target{Source: s, Local: name, Remote: name}, true
		case !nested && slices.Contains(s.Namespaces, "library"):
			return Target{Source: s, Local: "library/" + name, Remote: "library/" + name}, true
		}
	}
	return Target{}, false
}

// ForNamespace returns where name leads when a client names its registry
// host (containerd's ?ns=): under the source's prefix if it has one, else
// under the name itself when a namespace of the source holds it. ok is
// false for a host no source mirrors (this registry itself, say).
func (m *Mirror) ForNamespace(host, name string) (Target, bool) {
	for _, s := range m.sources {
		if s.Host != host {
			continue
		}
		if s.Prefix != "" {
			return Target{Source: s, Local: s.Prefix + "/" + name, Remote: name}, true
		}
		if t, ok := m.Mirrored(name); ok && t.Source == s {
			return t, true
		}
	}
	return Target{}, false
}

// asMirror is ctx for the cache's own writes: manifests before their
// blobs, recorded as pushed by the mirror.
func asMirror(ctx context.Context, s *Source) context.Context {
	return registry.WithActor(registry.WithMirrorWrite(ctx), "mirror:"+s.Host)
}

// PrepareManifest makes sure that ref of t is in the cache and, for a
// tag, fresh: a digest is fetched once; a tag is asked about upstream
// (HEAD) once its TTL has passed and fetched again only if it moved.
// When the upstream cannot answer, a cached tag is served stale if the
// options allow.
func (m *Mirror) PrepareManifest(ctx context.Context, t Target, ref string) error {
	s := t.Source
	if registry.IsDigestReference(ref) {
		if _, err := m.reg.GetManifest(ctx, t.Local, ref); err == nil {
			s.stats.hits.Add(1)
			return nil
		}
		return m.fetchManifest(ctx, t, ref, "")
	}
	cached, err := m.reg.TagTarget(ctx, t.Local, ref)
	have := err == nil
	key := t.Local + ":" + ref
	m.mu.Lock()
	last, seen := m.checked[key]
	m.mu.Unlock()
	now := m.opts.Now()
	if have && seen && now.Sub(last) < m.opts.TagTTL {
		s.stats.hits.Add(1)
		return nil
	}
	var current digest.Digest
	err = m.askUpstream(ctx, func(ctx context.Context) (err error) {
		current, err = s.Upstream.ManifestDigest(ctx, t.Remote, ref)
		return err
	})
	switch {
	case err != nil && have && m.opts.ServeStale && errors.Is(err, ErrUnreachable):
		m.opts.Log.WarnContext(ctx, "upstream unreachable; serving the cached tag", "upstream", s.Host, "repo", t.Local, "tag", ref, "err", err)
		s.stats.hits.Add(1)
		s.stats.stale.Add(1)
		return nil
	case err != nil:
		return m.upstreamError(t, ref, err)
	case have && current == cached:
		m.markChecked(key, now)
		s.stats.hits.Add(1)
		return nil
	}
	if err := m.fetchManifest(ctx, t, current.String(), ref); err != nil {
		return err
	}
	m.markChecked(key, now)
	return nil
}

func (m *Mirror) markChecked(key string, at time.Time) {
	m.mu.Lock()
	m.checked[key] = at
	m.mu.Unlock()
}

// fetchManifest fetches ref upstream and stores it under tag (if set).
func (m *Mirror) fetchManifest(ctx context.Context, t Target, ref, tag string) error {
	s := t.Source
	var man *Manifest
	err := m.askUpstream(ctx, func(ctx context.Context) (err error) {
		man, err = s.Upstream.Manifest(ctx, t.Remote, ref)
		return err
	})
	if err != nil {
		return m.upstreamError(t, ref, err)
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	if _, err := m.reg.PutManifest(asMirror(ctx, s), t.Local, man.Digest.String(), man.MediaType, man.Body, tags); err != nil {
		return err
	}
	s.stats.misses.Add(1)
	s.stats.bytesFetched.Add(int64(len(man.Body)))
	m.opts.Log.InfoContext(ctx, "manifest fetched from upstream", "upstream", s.Host, "repo", t.Local, "ref", ref, "digest", man.Digest)
	return nil
}

// askUpstream runs one manifest exchange with the upstream under the
// idle timeout. A manifest is one small answer (at most MaxManifestSize),
// so the watchdog bounds the whole exchange rather than the gaps between
// its bytes: a stalled upstream otherwise holds the pull, and every pull
// of that tag after it, for as long as the connection lives. A timeout is
// ErrUnreachable, so a cached tag is then served stale if allowed.
func (m *Mirror) askUpstream(ctx context.Context, call func(context.Context) error) error {
	wctx, idle := m.watchIdle(ctx)
	defer idle.stop()
	err := call(wctx)
	if err != nil {
		if cause := context.Cause(wctx); errors.Is(cause, errIdle) && ctx.Err() == nil {
			return fmt.Errorf("%w: %w", ErrUnreachable, cause)
		}
	}
	return err
}

// upstreamError is what a client is told when the upstream failed it.
func (m *Mirror) upstreamError(t Target, ref string, err error) error {
	if errors.Is(err, ErrNotFound) {
		return registry.Errorf(registry.ErrManifestUnknown, "%s is not in %s (upstream %s)", ref, t.Local, t.Source.Host)
	}
	return registry.Errorf(ErrUpstream, "upstream %s could not be asked for %s:%s, and it is not cached: %v", t.Source.Host, t.Remote, ref, err)
}

// ErrUpstream means a mirrored name could not be served: the upstream
// failed and the cache has no copy.
var ErrUpstream = errors.New("upstream unavailable")
