// Package server wires wharf together: it opens the stores, builds the
// http.Handler tree with its middleware, and runs it until shut down.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/forwarded"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/notify"
	"github.com/wharf/wharf/internal/proxy"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/replicate"
	"github.com/wharf/wharf/internal/secretkey"
)

// Server is a configured wharf registry.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	meta     metadata.Store
	registry *registry.Service
	// auth and tokens are nil when the registry runs open (--auth=none).
	auth    *auth.Service
	tokens  *auth.Tokens
	tls     *tls.Config // nil: plain HTTP
	proxies forwarded.Proxies
	handler http.Handler
	// mirror is the pull-through cache, nil without upstreams.
	mirror *mirrorHTTP
	// metrics serves /metrics: on the registry's listener, or on its own
	// when cfg.MetricsAddr is set.
	metrics http.Handler
	opts    options

	// hooks is nil when the metadata store keeps no webhooks.
	hooks *notify.Service
	// repl is nil when the metadata store keeps no replication rules.
	repl *replicate.Service
}

// New opens the stores cfg names and builds the handler tree.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	o := newOptions(opts)
	// One key signs upload ids and seals every stored credential (webhook
	// secrets, replication passwords); replicas sharing a database must be
	// given it, a lone SQLite registry makes its own. Without one, upload
	// sessions are recorded at their POST.
	key, keyErr := secretkey.LoadKey(cfg.SecretKey, cfg.DataDir, cfg.Database.Driver == "postgres")
	reg, meta, err := openRegistry(ctx, cfg, log, o, key)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, meta: meta, registry: reg, opts: o}
	if ws, ok := meta.(metadata.WebhookStore); ok {
		if s.hooks, err = openWebhooks(ctx, cfg, log, ws, o, key, keyErr); err != nil {
			_ = meta.Close()
			return nil, err
		}
	}
	if s.repl, err = s.openReplication(key, keyErr); err != nil {
		_ = meta.Close()
		return nil, err
	}
	if s.mirror, err = s.openMirror(); err != nil {
		_ = meta.Close()
		return nil, err
	}
	if cfg.Auth.Mode == config.AuthToken {
		if err := s.openAuth(ctx, meta); err != nil {
			_ = meta.Close()
			return nil, err
		}
	}
	tlsConf, err := tlsConfig(cfg, log)
	if err != nil {
		_ = meta.Close()
		return nil, err
	}
	s.tls = tlsConf
	if s.proxies, err = forwarded.Parse(cfg.TrustedProxies); err != nil {
		_ = meta.Close()
		return nil, err
	}
	s.handler = s.routes(prometheus.NewRegistry())
	return s, nil
}

// openRegistry opens the stores cfg names and the registry service over
// them; closing the metadata store releases them.
func openRegistry(ctx context.Context, cfg config.Config, log *slog.Logger, o options, uploadKey []byte) (*registry.Service, metadata.Store, error) {
	blobs, meta, err := openStores(ctx, cfg, log, o)
	if err != nil {
		return nil, nil, err
	}
	reg := registry.New(meta, blobs, log, registry.Options{
		SparseManifests: cfg.Validation.SparseManifests,
		MaxManifestSize: cfg.Validation.MaxManifestBytes,
		Now:             o.now,
		GC: registry.GCSchedule{Interval: cfg.GC.Interval, Grace: cfg.GC.Grace, UntaggedAge: cfg.GC.UntaggedAge,
			Replica: replicaName()},
		UploadKey:    uploadKey,
		UploadMaxAge: cfg.Uploads.PurgeAfter,
	})
	return reg, meta, nil
}

// openStores opens the blob and metadata stores cfg names.
func openStores(ctx context.Context, cfg config.Config, log *slog.Logger, o options) (blobstore.Store, metadata.Store, error) {
	var blobs blobstore.Store
	switch cfg.Storage.Driver {
	case "filesystem":
		s, err := fs.New(cfg.Storage.Filesystem.Root, log)
		if err != nil {
			return nil, nil, fmt.Errorf("open blob store: %w", err)
		}
		blobs = s
	case "s3":
		s3cfg, err := s3.ParseURL(cfg.Storage.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("open blob store: %w", err)
		}
		s3cfg.AccessKey, s3cfg.SecretKey = cfg.Storage.S3.AccessKey, cfg.Storage.S3.SecretKey
		if cfg.Storage.S3.Redirect {
			s3cfg.RedirectExpiry, s3cfg.PublicEndpoint = cfg.Storage.S3.RedirectExpiry, cfg.Storage.S3.PublicEndpoint
		}
		// New checks the bucket once and says in one line what to fix.
		s, err := s3.New(ctx, s3cfg, log)
		if err != nil {
			return nil, nil, fmt.Errorf("open blob store: %w", err)
		}
		blobs = s
	default:
		return nil, nil, fmt.Errorf("unknown storage driver %q", cfg.Storage.Driver)
	}
	switch cfg.Database.Driver {
	case "sqlite", "postgres":
		db, err := openMetadata(ctx, cfg, log, sqldb.WithClock(o.now))
		if err != nil {
			return nil, nil, err
		}
		return blobs, db, nil
	default:
		return nil, nil, fmt.Errorf("unknown database driver %q", cfg.Database.Driver)
	}
}

// Accounts is the account service, nil when the server runs open.
func (s *Server) Accounts() *auth.Service { return s.auth }

// Webhooks is the webhook service, nil when the database keeps none.
func (s *Server) Webhooks() *notify.Service { return s.hooks }

// Mirror is the pull-through cache, nil when no upstream is configured.
func (s *Server) Mirror() *proxy.Mirror {
	if s.mirror == nil {
		return nil
	}
	return s.mirror.m
}

// Handler is the whole HTTP surface, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Close saves what is kept in memory and releases the stores.
func (s *Server) Close() error {
	// Pull counts are batched in memory; write the last batch first.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.registry.FlushPulls(ctx); err != nil {
		s.log.Warn("the last pull counts were not saved", "err", err)
	}
	if gc := s.registry.GCRuns(); gc != nil {
		gc.Stop()
	}
	return s.meta.Close()
}

// routes builds the handler tree: OCI API under /v2/, operations beside it.
func (s *Server) routes(promReg *prometheus.Registry) http.Handler {
	m := newMetrics(promReg, s.registry)
	if s.hooks != nil {
		promReg.MustRegister(webhookMetrics(s.hooks.Counts()))
	}
	if s.repl != nil {
		promReg.MustRegister(replicationCollector{repl: s.repl})
	}
	promReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	api := distribution.New(s.registry, s.log)
	var v2 http.Handler = api
	if s.mirror != nil {
		v2 = s.mirror.fill(v2)
		s.mirror.register(promReg)
	}
	var g *gate
	if s.auth != nil {
		g = &gate{auth: s.auth, tokens: s.tokens, service: s.cfg.Auth.Service, realm: s.cfg.Auth.Realm, log: s.log,
			loginRefreshTokens: s.cfg.Auth.LoginRefreshTokens}
		v2 = g.wrap(v2)
	}
	if s.mirror != nil {
		v2 = s.mirror.route(v2)
	}
	// Two pools of max_concurrent_requests slots: one for what registry
	// clients call (the distribution API and /token), one for what people
	// and scripts call (web UI, Hub JSON API, /metrics). A flood of page
	// loads, searches or scrapes then cannot take the slots that pushes and
	// pulls need, nor the other way round. Health checks take no slot: a
	// busy registry is not a dead one.
	limit := s.cfg.Limits.MaxConcurrentRequests
	registrySlots := newSlots(limit)
	webSlots := newSlots(limit)
	v2 = limitConcurrency(v2, registrySlots, s.log)

	mux := http.NewServeMux()
	// Method-less patterns with getOnly: with the web UI on "/", a POST to
	// "GET /healthz" would fall through to the UI instead of a 405.
	mux.Handle("/healthz", getOnly(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}))
	mux.Handle("/readyz", getOnly(s.ready))
	s.metrics = getOnly(promhttp.HandlerFor(promReg, promhttp.HandlerOpts{}).ServeHTTP)
	if s.cfg.MetricsAddr == "" {
		// On the registry's port, scrapes share the web pool; a separate
		// metrics listener is the operator's own and has no limit.
		mux.Handle("/metrics", limitConcurrency(s.metrics, webSlots, s.log))
	}
	if g != nil {
		mux.Handle("/token", limitConcurrency(http.HandlerFunc(g.token), registrySlots, s.log))
	}
	ui := s.webHandler()
	if ui != nil {
		ui = limitConcurrency(ui, webSlots, s.log)
		mux.Handle("/", ui)
	}

	// The API takes /v2 paths before ServeMux can "clean" them: a redirect
	// from /v2/a/../b/... keeps the method, so a DELETE would land on
	// another repository. Unclean paths must reach the name check instead.
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
			// Docker Hub's JSON API shares the /v2/ prefix; a path the
			// distribution API knows always goes to it.
			if ui != nil && isHubAPIPath(r.URL.Path) && distribution.ParseRoute(r.URL.Path).Kind == distribution.KindNotFound {
				ui.ServeHTTP(w, r)
				return
			}
			v2.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	h = observe(h, s.log, m)
	// Outside the access log, whose body counter then counts through it.
	h = cutIdleBodies(h, s.cfg.Limits.IdleTimeout)
	h = recoverPanics(h, s.log)
	h = requestID(h)
	// Outermost, so that the access log and the login limits see the client.
	return s.proxies.Handler(h)
}

// getOnly answers 405 to anything but GET and HEAD, as a "GET " pattern
// would.
func getOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.registry.Ready(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Run listens on cfg.Addr and serves until ctx is cancelled, then lets
// in-flight requests finish for up to cfg.ShutdownTimeout.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// The debug and metrics listeners come first: if one cannot start, the
	// registry listener is closed here, before any goroutine could be
	// serving it.
	if s.cfg.DebugAddr != "" {
		stopDebug, err := s.serveDebug(ctx)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopDebug()
	}
	if s.cfg.MetricsAddr != "" {
		stopMetrics, err := s.serveMetrics(ctx)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopMetrics()
	}
	errc := make(chan error, 1)
	if s.tls != nil {
		srv.TLSConfig = s.tls
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	// The janitor has its own context so that a failing listener, which
	// returns before ctx ends, does not leave Serve waiting on it.
	jctx, stopJanitor := context.WithCancel(ctx)
	var background sync.WaitGroup
	background.Go(func() { s.purgeUploads(jctx) })
	background.Go(func() { s.reloadKeys(jctx) })
	background.Go(func() { s.pruneLoginFailures(jctx) })
	if s.hooks != nil {
		background.Go(func() { s.hooks.Run(jctx, s.cfg.Webhooks.Poll) })
		background.Go(func() { s.pruneDeliveries(jctx) })
	}
	if s.repl != nil {
		background.Go(func() { s.repl.Run(jctx, s.cfg.Replication.Poll) })
		background.Go(func() { s.reconcileReplication(jctx) })
	}
	background.Go(func() { s.collectGarbage(jctx) })
	background.Go(func() { s.pruneTagHistory(jctx) })
	background.Go(func() { repeat(jctx, usageRecountEvery, func() { s.recountUsage(jctx) }) })
	background.Go(func() { s.applyRetention(jctx) })
	if s.mirror != nil {
		background.Go(func() { s.mirror.evict(jctx) })
	}
	defer func() { stopJanitor(); background.Wait() }()
	s.log.Info("wharf listening", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir,
		"auth", s.cfg.Auth.Mode, "tls", s.tls != nil)
	s.warnIfOpen(ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("in-flight requests cut off at shutdown", "err", err)
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("stopped")
	return nil
}

// purgeUploads removes abandoned upload sessions until ctx ends.
func (s *Server) purgeUploads(ctx context.Context) {
	maxAge := s.cfg.Uploads.PurgeAfter
	if maxAge <= 0 {
		return
	}
	purge := func() {
		n, err := s.registry.PurgeStaleUploads(ctx, maxAge)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("purging stale uploads failed", "err", err)
		case n > 0:
			s.log.Info("stale uploads purged", "count", n, "older_than", maxAge)
		}
	}
	purge()
	repeat(ctx, min(maxAge/4, time.Hour), purge)
}

// deliveryRecord is how long delivered webhooks stay listed.
const deliveryRecord = 7 * 24 * time.Hour

// pruneDeliveries forgets delivered webhooks after deliveryRecord; the
// pending and dead stay until delivered or their hook goes.
func (s *Server) pruneDeliveries(ctx context.Context) {
	prune := func() {
		n, err := s.hooks.Prune(ctx, s.opts.now().Add(-deliveryRecord))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("pruning webhook deliveries failed", "err", err)
		case n > 0:
			s.log.Info("webhook deliveries pruned", "count", n)
		}
	}
	prune()
	repeat(ctx, time.Hour, prune)
}

// tagHistoryPruneEvery is how often the janitor deletes tag history past
// its window; garbage collection already ignores such records, so this
// only bounds the table.
const tagHistoryPruneEvery = time.Hour

// pruneTagHistory deletes tag history past its window until ctx ends.
// Every replica runs it; deleting what another already deleted is
// harmless.
func (s *Server) pruneTagHistory(ctx context.Context) {
	prune := func() {
		n, err := s.registry.PruneTagHistory(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("pruning tag history failed", "err", err)
		case n > 0:
			s.log.Info("tag history pruned", "count", n)
		}
	}
	prune()
	repeat(ctx, tagHistoryPruneEvery, prune)
}

// usageRecountEvery is how often serve recounts the storage usage from
// the blob links. The usage is kept by every write, so a recount only
// repairs drift (a bug, or a database edited by hand); it holds link
// writes for the time of one pass over the links.
const usageRecountEvery = 24 * time.Hour

// recountUsage repairs any drift of the per-repository and per-namespace
// usage that quotas and the usage bars read.
func (s *Server) recountUsage(ctx context.Context) {
	if _, err := s.registry.RecountUsage(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("recounting storage usage failed", "err", err)
	}
}

// repeat calls fn every interval until ctx ends; the background jobs of
// serve share it.
func repeat(ctx context.Context, interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}
