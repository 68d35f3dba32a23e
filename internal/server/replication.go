package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/replicate"
)

// selfURL is this registry as the replication copier names it; its
// requests never leave the process (selfTransport).
const selfURL = "http://wharf.self"

// openReplication returns the replication service over the metadata
// store, nil when the store keeps no rules. Its copier reads this
// registry through the distribution API in-process: the same handlers a
// client meets, with no socket, no TLS and no account to hold, since a
// rule is a namespace admin's and covers only that namespace.
func (s *Server) openReplication(key []byte, keyErr error) (*replicate.Service, error) {
	rs, ok := s.meta.(metadata.ReplicationStore)
	if !ok {
		return nil, nil
	}
	return replicate.NewService(rs, key, keyErr, replicate.Endpoint{URL: selfURL}, replicate.Options{
		MaxAttempts:     s.cfg.Replication.MaxAttempts,
		Backoff:         s.cfg.Replication.Backoff,
		Lease:           s.cfg.Replication.Lease,
		AllowInternal:   s.cfg.AllowInternalDestinations,
		SourceTransport: selfTransport{h: distribution.New(s.registry, s.log)},
		Now:             s.opts.now,
		Log:             s.log,
	})
}

// Replication is the replication service, nil when the database keeps no
// rules.
func (s *Server) Replication() *replicate.Service { return s.repl }

// replicationCollector exports replication: what this process's worker
// did per rule, and each rule's backlog as the database has it at scrape
// time (so every replica reports the same lag).
type replicationCollector struct{ repl *replicate.Service }

var (
	replLabels    = []string{"rule", "namespace"}
	replTasksDesc = prometheus.NewDesc("wharf_replication_tasks_total",
		"Replication task attempts of this process by rule and outcome: done, failed (retried, or given up to the reconcile).",
		[]string{"rule", "namespace", "outcome"}, nil)
	replBytesDesc = prometheus.NewDesc("wharf_replication_sent_bytes_total",
		"Bytes this process sent to a rule's destination (blobs and manifests; a mounted blob or one it had costs none).", replLabels, nil)
	replPendingDesc = prometheus.NewDesc("wharf_replication_pending", "Events of a rule not yet replicated.", replLabels, nil)
	replLagDesc     = prometheus.NewDesc("wharf_replication_lag_seconds",
		"Age of a rule's oldest event not yet replicated (0: none pending).", replLabels, nil)
)

func (c replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- replTasksDesc
	ch <- replBytesDesc
	ch <- replPendingDesc
	ch <- replLagDesc
}

func (c replicationCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rules, err := c.repl.Rules(ctx, "")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(replLagDesc, err)
		return
	}
	stats := c.repl.Stats()
	for _, r := range rules {
		id, st := strconv.FormatInt(r.ID, 10), stats[r.ID]
		ch <- prometheus.MustNewConstMetric(replTasksDesc, prometheus.CounterValue, float64(st.Done), id, r.Namespace, "done")
		ch <- prometheus.MustNewConstMetric(replTasksDesc, prometheus.CounterValue, float64(st.Failed), id, r.Namespace, "failed")
		ch <- prometheus.MustNewConstMetric(replBytesDesc, prometheus.CounterValue, float64(st.Bytes), id, r.Namespace)
		ch <- prometheus.MustNewConstMetric(replPendingDesc, prometheus.GaugeValue, float64(r.Pending), id, r.Namespace)
		ch <- prometheus.MustNewConstMetric(replLagDesc, prometheus.GaugeValue, r.Lag.Seconds(), id, r.Namespace)
	}
}

// reconcileReplication reconciles every rule each
// cfg.Replication.ReconcileInterval, on one replica per interval (a lease
// in the database), until ctx ends.
func (s *Server) reconcileReplication(ctx context.Context) {
	every := s.cfg.Replication.ReconcileInterval
	l, ok := s.meta.(metadata.Leaser)
	if every <= 0 || !ok {
		return
	}
	holder := "serve-" + rand.Text()[:12]
	run := func() {
		ran, err := s.repl.ScheduledReconcile(ctx, l, holder, every)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("replication reconcile had failures", "err", err)
		case ran:
			s.log.Info("replication reconciled")
		}
	}
	run()
	repeat(ctx, every, run)
}

// selfTransport answers requests with h in-process. The response body
// streams through a pipe as h writes it: a blob is never held whole.
type selfTransport struct{ h http.Handler }

func (t selfTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if req.Body == nil {
		req.Body = http.NoBody
	}
	req.RequestURI = req.URL.RequestURI()
	req.RemoteAddr = "127.0.0.1:0"
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, body: pw, started: make(chan struct{})}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				w.start(http.StatusInternalServerError)
				_ = pw.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
			w.start(http.StatusOK)
			_ = pw.Close()
		}()
		t.h.ServeHTTP(w, req)
	}()
	<-w.started
	resp := &http.Response{Status: strconv.Itoa(w.code) + " " + http.StatusText(w.code), StatusCode: w.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: w.sent, Body: pr, ContentLength: -1, Request: req}
	if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil {
		resp.ContentLength = n
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		_ = pr.Close()
	}
	return resp, nil
}

// pipeResponse is the http.ResponseWriter of selfTransport: the status
// and headers go out at the first write (or the handler's return), the
// body through the pipe.
type pipeResponse struct {
	header  http.Header
	sent    http.Header
	code    int
	body    *io.PipeWriter
	once    sync.Once
	started chan struct{}
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(code int) { w.start(code) }

func (w *pipeResponse) start(code int) {
	w.once.Do(func() {
		w.code, w.sent = code, w.header.Clone()
		close(w.started)
	})
}

func (w *pipeResponse) Write(p []byte) (int, error) {
	w.start(http.StatusOK)
	return w.body.Write(p)
}

// ReplicationRules is offline access to a database's replication rules
// and their status, for `wharf replication` beside a running or a
// stopped server.
type ReplicationRules struct {
	svc   *replicate.Service
	close func() error
}

// OpenReplicationRules opens the replication rules of the database cfg
// names. It reads, so it needs no secret key.
func OpenReplicationRules(ctx context.Context, cfg config.Config, log *slog.Logger) (*ReplicationRules, error) {
	db, err := openOfflineMetadata(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	svc, err := replicate.NewService(db, nil, nil, replicate.Endpoint{URL: selfURL}, replicate.Options{Log: log})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &ReplicationRules{svc: svc, close: db.Close}, nil
}

// Close releases the database.
func (r *ReplicationRules) Close() error { return r.close() }

// List lists namespace ns's rules ("": every rule) with their status.
func (r *ReplicationRules) List(ctx context.Context, ns string) ([]replicate.Rule, error) {
	return r.svc.Rules(ctx, ns)
}

// Get returns rule id with its status, or an error that says there is
// no such rule.
func (r *ReplicationRules) Get(ctx context.Context, id int64) (*replicate.Rule, error) {
	all, err := r.svc.Rules(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, rule := range all {
		if rule.ID == id {
			return &rule, nil
		}
	}
	return nil, fmt.Errorf("replication rule %d: %w", id, replicate.ErrNotFound)
}
