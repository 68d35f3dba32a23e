package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// WebClientID names the refresh tokens that serve as web UI sessions.
const WebClientID = "wharf-web"

// StartSession returns a refresh token that the web UI keeps in a
// cookie: a session dies when it expires, when the user signs out, and
// when the password changes, like every other refresh token.
//
// Only a password login starts one: a session is the account's, and one
// started from an access token would outlive that token's revocation and
// escape its scope.
func (s *Service) StartSession(ctx context.Context, sub Subject) (string, error) {
	if sub.TokenID != "" || sub.Scope != "" {
		return "", fmt.Errorf("web session from an access token: %w", ErrInvalid)
	}
	return s.IssueRefreshToken(ctx, sub, WebClientID)
}

// Session returns the subject of a session secret from StartSession, or
// ErrUnauthenticated. Only a token issued as a web session is one: the
// identity token docker keeps after a login (client id "docker", perhaps
// derived from an access token and capped by its scope) must not become
// a browser session that manages the account.
func (s *Service) Session(ctx context.Context, secret string) (Subject, error) {
	if !strings.HasPrefix(secret, RefreshPrefix) {
		return Subject{}, ErrUnauthenticated
	}
	tok, err := s.store.GetTokenByHash(ctx, hashSecret(secret))
	if errors.Is(err, ErrNotFound) {
		return Subject{}, ErrUnauthenticated
	}
	if err != nil {
		return Subject{}, err
	}
	if !isWebSession(tok) {
		return Subject{}, ErrUnauthenticated
	}
	// Refresh decides whether the token is still usable, as for any other
	// refresh token.
	sub, err := s.Refresh(ctx, secret)
	if err != nil {
		return Subject{}, err
	}
	if sub.Scope != "" || sub.TokenID != tok.ID {
		return Subject{}, ErrUnauthenticated
	}
	return sub, nil
}

// isWebSession reports whether tok was issued by StartSession: a refresh
// token named for the web client, made with the password (no parent
// access token) and so without a scope cap.
func isWebSession(tok *Token) bool {
	return tok.Kind == KindRefresh && tok.Name == WebClientID && tok.Parent == "" && tok.Scope == ""
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
