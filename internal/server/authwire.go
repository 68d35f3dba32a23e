package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/metadata"
)

// openAuth builds the account service and the token keys over the
// metadata database, and creates the first admin on an empty one.
func (s *Server) openAuth(ctx context.Context, meta metadata.Store) error {
	store, ok := meta.(auth.Store)
	if !ok {
		return fmt.Errorf("database driver %q keeps no accounts; run with --auth=none", s.cfg.Database.Driver)
	}
	var publicPull func(string) bool
	if s.mirror != nil {
		publicPull = s.mirror.publicPull
	}
	svc, tokens, err := newAuth(ctx, s.cfg, store, s.log, s.opts, publicPull)
	if err != nil {
		return err
	}
	s.auth, s.tokens = svc, tokens
	generated, err := svc.EnsureAdmin(ctx, s.cfg.Auth.AdminPassword)
	if err != nil {
		return fmt.Errorf("create the admin user: %w", err)
	}
	if generated != "" {
		// Shown once, on purpose loudly: it is the only way in.
		s.log.Warn("created the first user \"admin\" with a generated password; it is shown only this once — log in with `wharf login` / `docker login` and change it with `wharf user passwd admin`",
			"user", auth.AdminUser, "password", generated)
	}
	return nil
}

func newAuth(ctx context.Context, cfg config.Config, store auth.Store, log *slog.Logger, o options, publicPull func(string) bool) (*auth.Service, *auth.Tokens, error) {
	now := o.now
	// Failed logins are counted in the database, so that replicas sharing
	// it share the back-off: round-robin guessing gains nothing.
	failures, ok := store.(auth.FailureStore)
	if !ok {
		return nil, nil, fmt.Errorf("database driver %q keeps no login failure counts; run with --auth=none", cfg.Database.Driver)
	}
	svc := auth.NewService(store, auth.Config{
		DefaultVisibility: auth.Visibility(cfg.Auth.DefaultVisibility),
		Limiter:           auth.NewLimiter(auth.LimiterConfig{Store: failures, Now: now}),
		Log:               log,
		Now:               now,
		PasswordParams:    o.passwordParams,
		PublicPull:        publicPull,
	})
	tokens, err := auth.NewTokens(ctx, store, auth.TokenConfig{
		Issuer:    "wharf",
		Service:   cfg.Auth.Service,
		Lifetime:  cfg.Auth.TokenLifetime,
		Algorithm: cfg.Auth.SigningAlgorithm,
		Now:       now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("token signing keys: %w", err)
	}
	return svc, tokens, nil
}

// warnIfOpen says at start what an operator could miss: an open
// registry, and plain HTTP where docker will not use it by default.
func (s *Server) warnIfOpen(addr net.Addr) {
	if s.auth == nil {
		s.log.Warn("auth is off (--auth=none): anyone who can reach this address may push, pull and delete; use it for throwaway local registries only")
	}
	if s.tls == nil && !loopback(s.cfg.Addr) {
		s.log.Warn("serving plain HTTP on a non-loopback address: docker treats this registry as insecure and refuses it unless it is listed in insecure-registries (https://docs.docker.com/reference/cli/dockerd/#insecure-registries); use --tls-cert/--tls-key or --tls-self-signed",
			"addr", addr.String())
		if s.auth != nil && s.cfg.Auth.Realm == "" && len(s.cfg.TrustedProxies) == 0 {
			// Behind a proxy that terminates TLS, a realm derived from the
			// request would say http://, and docker would send passwords
			// to it in the clear.
			s.log.Warn("behind a proxy that terminates TLS, set --trusted-proxies (or --auth-realm https://HOST/token): the token realm is derived from each request's scheme and Host otherwise")
		}
	}
}

// loopback reports whether a listen address only accepts local clients.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// reloadKeys picks up signing keys another replica or `wharf` command
// rotated, and drops keys past their overlap, until ctx ends.
func (s *Server) reloadKeys(ctx context.Context) {
	if s.tokens == nil {
		return
	}
	repeat(ctx, time.Minute, func() {
		if err := s.tokens.Reload(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reloading token keys failed", "err", err)
		}
		if err := s.tokens.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning retired token keys failed", "err", err)
		}
	})
}

// loginFailurePruneEvery is how often the janitor deletes failed-login
// counters that no longer matter; between runs the table only grows by
// the failures of that time.
const loginFailurePruneEvery = 10 * time.Minute

// pruneLoginFailures keeps the failed-login counters bounded until ctx
// ends. Every replica runs it; deleting what another already deleted is
// harmless.
func (s *Server) pruneLoginFailures(ctx context.Context) {
	if s.auth == nil {
		return
	}
	repeat(ctx, loginFailurePruneEvery, func() {
		n, err := s.auth.PruneLoginFailures(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("pruning login failure counts failed", "err", err)
		case n > 0:
			s.log.Debug("login failure counts pruned", "count", n)
		}
	})
}
