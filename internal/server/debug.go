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
	ln, err := net.Listen("tcp", s.cfg.DebugAddr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.log.InfoContext(ctx, "pprof listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
