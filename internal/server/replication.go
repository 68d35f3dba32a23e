package server

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strconv"
	"sync"

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
		SourceTransport: selfTransport{h: distribution.New(s.registry, s.log)},
		Now:             s.opts.now,
		Log:             s.log,
	})
}

// Replication is the replication service, nil when the database keeps no
// rules.
func (s *Server) Replication() *replicate.Service { return s.repl }

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
