package auth

import (
	"context"
	"strings"
)

// Reauthenticate checks that password is user's password, for a signed-in
// user confirming a sensitive change (a new password). Unlike
// Authenticate it accepts the password only: an access token, whatever
// its scope, must never stand in for it. Failures count against the same
// limits as failed logins, so the form cannot be used to guess faster.
// It returns nil, ErrUnauthenticated, or a *RateLimitError.
func (s *Service) Reauthenticate(ctx context.Context, user, password, addr string) error {
	if strings.HasPrefix(password, PATPrefix) || strings.HasPrefix(password, RefreshPrefix) {
		// A token is never the password; counted as a failure all the same,
		// so that the form cannot be used to probe faster than a login.
		password = "\x00" + password
	}
	_, err := s.passwordLogin(ctx, user, password, addr, false)
	return err
}
