package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves pprof on cfg.DebugAddr, apart from the registry's port
// so that profiles are never exposed to registry clients by accident.
func (s *Server) serveDebug(ctx context.Context) (stop func(), err error) {
	mux := http.NewServeMux()
	handlePprof(mux)
	return s.serveOps(ctx, s.cfg.DebugAddr, "pprof listening", mux)
}

// serveMetrics serves /metrics and pprof on cfg.MetricsAddr, the listener
// operators keep on an internal network for scrapers and profilers.
func (s *Server) serveMetrics(ctx context.Context) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.metrics)
	handlePprof(mux)
	return s.serveOps(ctx, s.cfg.MetricsAddr, "metrics listening", mux)
}

// handlePprof adds Go's profiles under /debug/pprof/ to mux.
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// serveOps serves h on addr until stop is called, logging msg with the
// address it got.
func (s *Server) serveOps(ctx context.Context, addr, msg string, h http.Handler) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", msg, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.log.InfoContext(ctx, msg, "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
