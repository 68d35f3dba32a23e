package auth

import (
	"context"
	"errors"
	"strings"
)

// Reauthenticate checks that password is user's password, for a signed-in
// user confirming a sensitive change (a new password). Unlike
// Authenticate it accepts the password only: an access token, whatever
// its scope, must never stand in for it. Failures count against the same
// limits as failed logins, so the form cannot be used to guess faster.
// It returns nil, ErrUnauthenticated, or a *RateLimitError.
func (s *Service) Reauthenticate(ctx context.Context, user, password, addr string) error {
	unlock := s.guard.lock(user)
	defer unlock()
	strict, wide := []string{pairKey(user, addr)}, []string{accountKey(user), addrKey(addr)}
	if err := s.allow(strict, wide); err != nil {
		s.cfg.Log.InfoContext(ctx, "password check rate limited", "user", user, "addr", addr)
		return err
	}
	err := ErrUnauthenticated
	// No password has a token's prefix (SetPassword refuses one), so such
	// a secret is wrong without hashing it. The login cache is not asked:
	// a confirmation is rare and should be checked against the store.
	if !strings.HasPrefix(password, PATPrefix) && !strings.HasPrefix(password, RefreshPrefix) {
		_, err = s.checkPassword(ctx, user, password)
	}
	if errors.Is(err, ErrUnauthenticated) {
		s.cfg.Limiter.Fail(strict...)
		s.wide.Fail(wide...)
		s.cfg.Log.InfoContext(ctx, "password check failed", "user", user, "addr", addr)
		return err
	}
	if err != nil {
		return err
	}
	s.cfg.Limiter.Succeed(strict...)
	s.wide.Succeed(accountKey(user))
	return nil
}
