package server

import (
	"net/http"

	"github.com/wharf/wharf/internal/web"
)

// webHandler returns the web UI and Hub-style JSON API. routes calls it
// once; without accounts (auth and tokens nil) the UI runs open.
func (s *Server) webHandler() http.Handler {
	opts := web.Options{Registry: s.registry, Auth: s.auth, Tokens: s.tokens, Webhooks: s.hooks, Log: s.log,
		Replication: s.repl}
	if s.mirror != nil {
		opts.Mirror = s.mirror.m
	}
	return web.New(opts)
}

// isHubAPIPath reports whether a /v2/ path belongs to the Hub-style JSON
// API rather than the distribution API.
func isHubAPIPath(path string) bool { return web.IsHubAPIPath(path) }
