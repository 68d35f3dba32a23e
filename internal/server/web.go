package server

import "net/http"

// webHandler returns the web UI and Hub-style JSON API, or nil while the
// server has none.
func (s *Server) webHandler() http.Handler { return nil }

// isHubAPIPath reports whether a /v2/ path belongs to the Hub-style JSON
// API rather than the distribution API.
func isHubAPIPath(string) bool { return false }
