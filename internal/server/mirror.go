package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/proxy"
	"github.com/wharf/wharf/internal/proxy/upstream"
	"github.com/wharf/wharf/internal/registry"
)

// mirrorHTTP puts the pull-through cache (internal/proxy) in front of
// the distribution API: route, outside the auth gate, maps containerd's
// ?ns= names to the local repository and refuses writes to mirrored
// names; fill, inside it, fetches what an authorised pull lacks before
// the API serves it from the stores as any other content.
type mirrorHTTP struct {
	m      *proxy.Mirror
	s      *Server
	limits map[string]*upstream.Client // by host, for the rate-limit gauges
}

// openMirror builds the cache of the configured upstreams, nil if none.
func (s *Server) openMirror() (*mirrorHTTP, error) {
	mc := s.cfg.Mirror
	if len(mc.Upstreams) == 0 {
		return nil, nil
	}
	h := &mirrorHTTP{s: s, limits: map[string]*upstream.Client{}}
	var sources []*proxy.Source
	for _, u := range mc.Upstreams {
		c, err := upstream.New(u.URL, u.Username, u.Password, nil)
		if err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
		h.limits[u.Host] = c
		sources = append(sources, &proxy.Source{Host: u.Host, Prefix: u.Prefix, Namespaces: u.Namespaces, Upstream: c})
	}
	var maxSize int64
	if mc.MaxSize != "" {
		n, _, err := registry.ParseSize(mc.MaxSize)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("mirror.max_size %q: want a positive size such as 50GiB", mc.MaxSize)
		}
		maxSize = n
	}
	h.m = proxy.New(s.registry, sources, proxy.Options{TagTTL: mc.TagTTL, ServeStale: mc.ServeStale, MaxSize: maxSize,
		SpoolDir: filepath.Join(s.cfg.DataDir, "mirror-spool"), IdleTimeout: mc.IdleTimeout, AfterFunc: s.opts.afterFunc,
		Now: s.opts.now, Log: s.log})
	return h, nil
}

// publicPull reports whether anyone may pull name: a mirrored name when
// the configuration lets anonymous callers use the mirror.
func (h *mirrorHTTP) publicPull(name string) bool {
	if !h.s.cfg.Mirror.AnonymousPull {
		return false
	}
	_, ok := h.m.Mirrored(name)
	return ok
}

func readOnly(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// route rewrites pulls of ?ns= names and of short Docker Hub names
// (busybox) to the local repository, and refuses pushes and deletes on
// mirrored names.
func (h *mirrorHTTP) route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := distribution.ParseRoute(r.URL.Path)
		if rt.Name == "" {
			next.ServeHTTP(w, r)
			return
		}
		t, ok := h.m.Mirrored(rt.Name)
		if ns := r.URL.Query().Get("ns"); ns != "" && readOnly(r.Method) {
			if nt, nok := h.m.ForNamespace(ns, rt.Name); nok {
				t, ok = nt, true
			}
		}
		if ok && readOnly(r.Method) && t.Local != rt.Name {
			// The auth gate and the API see the repository that caches it.
			r = r.Clone(r.Context())
			r.URL.Path = "/v2/" + t.Local + r.URL.Path[len("/v2/")+len(rt.Name):]
			r.URL.RawPath = ""
		}
		if t, ok := h.m.Mirrored(distribution.ParseRoute(r.URL.Path).Name); ok && !readOnly(r.Method) {
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			distribution.WriteError(w, r, h.s.log, distribution.NewError(distribution.CodeDenied,
				fmt.Sprintf("%s is a read-only mirror of %s/%s; push to a name outside the mirrored namespaces", t.Local, t.Source.Host, t.Remote)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fill fetches a mirrored manifest or blob the cache lacks; a blob is
// streamed from its one fetch in flight, other requests reach next.
func (h *mirrorHTTP) fill(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := distribution.ParseRoute(r.URL.Path)
		t, ok := h.m.Mirrored(rt.Name)
		if !ok || !readOnly(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		switch rt.Kind {
		case distribution.KindManifest:
			if err := h.m.PrepareManifest(r.Context(), t, rt.Ref); err != nil {
				h.writeError(w, r, err)
				return
			}
		case distribution.KindBlob:
			d, err := digest.Parse(rt.Ref)
			if err != nil {
				break // the API answers a bad digest
			}
			br, cached, err := h.m.OpenBlob(r.Context(), t, d)
			if err != nil {
				h.writeError(w, r, err)
				return
			}
			if !cached {
				serveFetching(w, r, br, d)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveFetching streams a blob while it is fetched. A fetch that fails
// midway aborts the response, so the client sees a broken transfer, not
// a short blob.
func serveFetching(w http.ResponseWriter, r *http.Request, br *proxy.BlobReader, d digest.Digest) {
	defer br.Close()
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", strconv.FormatInt(br.Size(), 10))
	hd.Set("Docker-Content-Digest", d.String())
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, br); err != nil {
		panic(http.ErrAbortHandler)
	}
}

func (h *mirrorHTTP) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var re *registry.Error
	if errors.Is(err, proxy.ErrUpstream) && errors.As(err, &re) {
		err = &distribution.Error{Code: distribution.CodeUnknown, Status: http.StatusBadGateway, Message: re.Message}
	}
	distribution.WriteError(w, r, h.s.log, err)
}

// register adds the mirror's counters to the metrics.
func (h *mirrorHTTP) register(reg prometheus.Registerer) {
	for _, src := range h.m.Sources() {
		host := src.Host
		stat := func(f func(proxy.Stats) int64) func() float64 {
			return func() float64 {
				for _, s := range h.m.Stats() {
					if s.Host == host {
						return float64(f(s))
					}
				}
				return 0
			}
		}
		labels := prometheus.Labels{"upstream": host}
		counter := func(name, help string, f func(proxy.Stats) int64) {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, stat(f)))
		}
		counter("wharf_mirror_hits_total", "Mirrored manifests and blobs served from the cache.", func(s proxy.Stats) int64 { return s.Hits })
		counter("wharf_mirror_misses_total", "Mirrored manifests and blobs fetched from the upstream.", func(s proxy.Stats) int64 { return s.Misses })
		counter("wharf_mirror_stale_total", "Cached tags served because the upstream could not be asked.", func(s proxy.Stats) int64 { return s.Stale })
		counter("wharf_mirror_fetched_bytes_total", "Bytes read from the upstream.", func(s proxy.Stats) int64 { return s.BytesFetched })
		counter("wharf_mirror_saved_bytes_total", "Blob bytes served from the cache instead of the upstream.", func(s proxy.Stats) int64 { return s.BytesSaved })
		c := h.limits[host]
		gauge := func(name, help string, pick func(remaining, limit int64) int64) {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, func() float64 {
				rem, lim, ok := c.RateLimit()
				if !ok {
					return -1
				}
				return float64(pick(rem, lim))
			}))
		}
		gauge("wharf_mirror_ratelimit_remaining", "Pulls the upstream says are left (Docker Hub's ratelimit-remaining; -1 until reported).", func(r, _ int64) int64 { return r })
		gauge("wharf_mirror_ratelimit_limit", "The upstream's pull limit (ratelimit-limit; -1 until reported).", func(_, l int64) int64 { return l })
	}
}

// evict keeps the mirror under mirror.max_size until ctx ends.
func (h *mirrorHTTP) evict(ctx context.Context) {
	if h.s.cfg.Mirror.MaxSize == "" {
		return
	}
	every := h.s.cfg.Mirror.EvictInterval
	// Replicas sharing a database take turns: one pass per interval.
	holder := "serve-" + rand.Text()[:12]
	repeat(ctx, every, func() {
		won, err := h.s.registry.ClaimInterval(ctx, registry.MirrorEvictLease, holder, every)
		if err != nil && !errors.Is(err, registry.ErrUnsupported) {
			if ctx.Err() == nil {
				h.s.log.Warn("mirror eviction skipped: its lease could not be claimed", "err", err)
			}
			return
		}
		if err == nil && !won {
			return
		}
		rep, err := h.m.Evict(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			h.s.log.Warn("mirror eviction failed", "err", err)
		case len(rep.Evicted) > 0:
			h.s.log.Info("mirror over its size cap: evicted", "usage", rep.Usage, "images", len(rep.Evicted),
				"estimated_bytes", rep.Estimated, "collected_bytes", rep.Collected.Bytes)
		}
	})
}
