package auth

import (
	"context"
	"errors"
	"fmt"
)

// WebClientID names the refresh tokens that serve as web UI sessions.
const WebClientID = "wharf-web"

// StartSession returns a refresh token that the web UI keeps in a
// cookie: a session dies when it expires, when the user signs out, and
// when the password changes, like every other refresh token.
func (s *Service) StartSession(ctx context.Context, sub Subject) (string, error) {
	return s.IssueRefreshToken(ctx, sub, WebClientID)
}

// Session returns the subject of a session secret from StartSession, or
// ErrUnauthenticated.
func (s *Service) Session(ctx context.Context, secret string) (Subject, error) {
	return s.Refresh(ctx, secret)
}

// EndSession revokes the session sub was found with (sign-out); a
// subject without a token has nothing to revoke.
func (s *Service) EndSession(ctx context.Context, sub Subject) error {
	if sub.Anonymous() || sub.TokenID == "" {
		return nil
	}
	if err := s.store.RevokeToken(ctx, sub.User, sub.TokenID, s.cfg.Now()); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	s.cfg.Log.InfoContext(ctx, "session ended", "user", sub.User, "token_id", sub.TokenID)
	return nil
}

// MembershipLister is the optional Store capability behind Memberships.
type MembershipLister interface {
	// ListMemberships lists the organisations user belongs to, by name.
	ListMemberships(ctx context.Context, user string) ([]Member, error)
}

// ErrUnsupported means the store lacks an optional capability.
var ErrUnsupported = errors.New("auth: not supported by the store")

// Memberships lists the organisations user belongs to, with roles, so
// that listings can select what the user may see in the database.
func (s *Service) Memberships(ctx context.Context, user string) ([]Member, error) {
	ml, ok := s.store.(MembershipLister)
	if !ok {
		return nil, fmt.Errorf("list memberships: %w", ErrUnsupported)
	}
	return ml.ListMemberships(ctx, user)
}
