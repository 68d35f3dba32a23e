package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Token secret prefixes: they make leaked secrets easy to scan for and
// tell a token from a password without a database lookup.
const (
	PATPrefix     = "wharf_pat_"
	RefreshPrefix = "wharf_rt_"
)

// touchEvery limits last-used writes to one per token per interval, since
// clients using Basic auth present the token on every request.
const touchEvery = time.Minute

// Subject is who is asking: a user (possibly through a personal access
// token, whose scope caps what it may do) or, with an empty User, an
// anonymous caller.
type Subject struct {
	User  string
	Admin bool
	// Scope caps the subject's rights when it authenticated with an access
	// token (or a refresh token derived from one); empty means no cap.
	Scope TokenScope
	// TokenID is the access or refresh token used, if any.
	TokenID string
	// TokenExpires is when that token expires; zero: never.
	TokenExpires time.Time
}

// Anonymous reports whether nobody logged in.
func (s Subject) Anonymous() bool { return s.User == "" }

// newSecret returns prefix + 256 random bits, and the secret's SHA-256.
// A plain hash suffices: unlike passwords, the secret cannot be guessed.
func newSecret(prefix string) (secret string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret = prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CreatePAT creates a personal access token for user and returns its
// secret, which is shown once and never stored. A zero expires means the
// token does not expire.
func (s *Service) CreatePAT(ctx context.Context, user, name string, scope TokenScope, expires time.Time) (secret string, tok *Token, err error) {
	if !scope.Valid() {
		return "", nil, fmt.Errorf("token scope %q: want read, read-write or read-write-delete: %w", scope, ErrInvalid)
	}
	if name == "" || len(name) > 100 {
		return "", nil, fmt.Errorf("token name: 1 to 100 characters: %w", ErrInvalid)
	}
	now := s.cfg.Now()
	if !expires.IsZero() && !expires.After(now) {
		return "", nil, fmt.Errorf("token expiry %s is not in the future: %w", expires, ErrInvalid)
	}
	secret, hash := newSecret(PATPrefix)
	tok = &Token{ID: newID(), User: user, Kind: KindPAT, Name: name, Scope: scope, Hash: hash, CreatedAt: now, ExpiresAt: expires}
	if err := s.store.CreateToken(ctx, tok); err != nil {
		return "", nil, err
	}
	s.cfg.Log.InfoContext(ctx, "access token created", "user", user, "token_id", tok.ID, "scope", string(scope))
	tok.Hash = nil
	return secret, tok, nil
}

// ListPATs lists the user's personal access tokens, without hashes.
func (s *Service) ListPATs(ctx context.Context, user string) ([]Token, error) {
	toks, err := s.store.ListTokens(ctx, user, KindPAT)
	for i := range toks {
		toks[i].Hash = nil
	}
	return toks, err
}

// RevokePAT revokes the user's token id at once, with the refresh tokens
// handed out to logins made with it.
func (s *Service) RevokePAT(ctx context.Context, user, id string) error {
	if err := s.store.RevokeToken(ctx, user, id, s.cfg.Now()); err != nil {
		return err
	}
	s.cfg.Log.InfoContext(ctx, "access token revoked", "user", user, "token_id", id)
	return nil
}

// Authenticate checks user's secret, a password or a personal access
// token, from the client at addr. It returns ErrUnauthenticated for any
// wrong, unknown, expired or revoked credential, and a *RateLimitError
// (ErrRateLimited) while the caller is blocked after failures or the
// server is too busy hashing. An unknown user costs the same password
// hash as a known one.
func (s *Service) Authenticate(ctx context.Context, user, secret, addr string) (Subject, error) {
	if strings.HasPrefix(secret, PATPrefix) {
		return s.authenticateToken(ctx, user, secret, addr)
	}
	return s.passwordLogin(ctx, user, secret, addr, true)
}

// passwordLogin checks user's password under the login limits. It is
// serialised per account, so that concurrent guesses are counted one by
// one; remembered (true for logins; a confirmation of a sensitive change
// is always checked against the store) lets a password verified in the
// last 30 s pass without hashing.
func (s *Service) passwordLogin(ctx context.Context, user, password, addr string, remembered bool) (Subject, error) {
	unlock := s.guard.lock(user)
	defer unlock()
	strict, wide := []string{pairKey(user, addr)}, []string{accountKey(user), addrKey(addr)}
	// One read for both allowances: every Basic-auth request passes here.
	recs, err := s.cfg.Limiter.cfg.Store.LoginFailures(ctx, append(slices.Clip(strict), wide...))
	if err != nil {
		return Subject{}, err
	}
	now := s.cfg.Now()
	if wait := max(s.cfg.Limiter.wait(recs, strict, now), s.wide.wait(recs, wide, now)); wait > 0 {
		s.cfg.Log.InfoContext(ctx, "login rate limited", "user", user, "addr", addr)
		return Subject{}, &RateLimitError{RetryAfter: wait}
	}
	if remembered {
		sub, ok, err := s.rememberedLogin(ctx, user, password)
		if err != nil {
			return Subject{}, err
		}
		if ok {
			// HTTP Basic clients send the password on every request, and
			// one audit line per request would drown the log.
			return sub, nil
		}
	}
	sub, err := s.checkPassword(ctx, user, password)
	if errors.Is(err, ErrUnauthenticated) {
		if ferr := errors.Join(s.cfg.Limiter.Fail(ctx, strict...), s.wide.Fail(ctx, wide...)); ferr != nil {
			return Subject{}, ferr
		}
		s.cfg.Log.InfoContext(ctx, "login failed", "user", user, "addr", addr)
		return Subject{}, err
	}
	if err != nil {
		return Subject{}, err
	}
	// The address's count is not forgiven: one valid login must not reset
	// a guesser's budget against other accounts. Counters that did not
	// exist need no delete, so a login without failures writes nothing.
	var forgive []string
	for _, k := range []string{strict[0], accountKey(user)} {
		if _, ok := recs[k]; ok {
			forgive = append(forgive, k)
		}
	}
	if len(forgive) > 0 {
		if err := s.cfg.Limiter.Succeed(ctx, forgive...); err != nil {
			return Subject{}, err
		}
	}
	s.cfg.Log.InfoContext(ctx, "login", "user", user, "addr", addr)
	return sub, nil
}

// authenticateToken checks a personal access token. Its 256 random bits
// cannot be guessed, so failures count against the address only: a
// guesser must not be able to lock an account's CI tokens out.
func (s *Service) authenticateToken(ctx context.Context, user, secret, addr string) (Subject, error) {
	keys := []string{addrKey(addr)}
	if err := s.wide.Allow(ctx, keys...); err != nil {
		if errors.Is(err, ErrRateLimited) {
			s.cfg.Log.InfoContext(ctx, "login rate limited", "user", user, "addr", addr)
		}
		return Subject{}, err
	}
	sub, err := s.checkToken(ctx, user, secret, KindPAT)
	if errors.Is(err, ErrUnauthenticated) {
		if ferr := s.wide.Fail(ctx, keys...); ferr != nil {
			return Subject{}, ferr
		}
		s.cfg.Log.InfoContext(ctx, "login failed", "user", user, "addr", addr, "credential", "access token")
		return Subject{}, err
	}
	if err == nil {
		s.cfg.Log.DebugContext(ctx, "login", "user", user, "addr", addr, "token_id", sub.TokenID)
	}
	return sub, err
}

// PruneLoginFailures deletes the failed-login counters that no longer
// matter (forgotten and no longer blocking), so that the table of a
// registry under a long guessing campaign stays bounded; the server's
// janitor calls it. It returns how many it deleted.
func (s *Service) PruneLoginFailures(ctx context.Context) (int64, error) {
	keep := max(s.cfg.Limiter.keep(), s.wide.keep())
	return s.cfg.Limiter.cfg.Store.PruneLoginFailures(ctx, s.cfg.Now().Add(-keep))
}

// rememberedLogin reports whether password was verified for user lately
// against the hash the user still has in the store, and returns the
// user's subject as the store has it now.
func (s *Service) rememberedLogin(ctx context.Context, user, password string) (Subject, bool, error) {
	e, ok := s.logins.get(user, password, s.cfg.Now())
	if !ok {
		return Subject{}, false, nil
	}
	u, err := s.store.GetUser(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return Subject{}, false, nil
	}
	if err != nil {
		return Subject{}, false, err
	}
	if u.PasswordHash != e.hash {
		return Subject{}, false, nil
	}
	return Subject{User: u.Name, Admin: u.Admin}, true, nil
}

func (s *Service) dummyHash() string {
	s.dummyOnce.Do(func() {
		s.dummy, _ = HashPassword(randomFrom("abcdefgh", 16), s.cfg.PasswordParams)
	})
	return s.dummy
}

func (s *Service) checkPassword(ctx context.Context, name, password string) (Subject, error) {
	now := s.cfg.Now()
	release, err := s.guard.slot(ctx)
	if err != nil {
		return Subject{}, err
	}
	defer release()
	u, err := s.store.GetUser(ctx, name)
	if errors.Is(err, ErrNotFound) {
		CheckPassword(s.dummyHash(), password)
		return Subject{}, ErrUnauthenticated
	}
	if err != nil {
		return Subject{}, err
	}
	if !CheckPassword(u.PasswordHash, password) {
		return Subject{}, ErrUnauthenticated
	}
	sub := Subject{User: u.Name, Admin: u.Admin}
	s.logins.put(name, password, u.PasswordHash, sub, now)
	return sub, nil
}

// checkToken finds the token of kind whose secret is secret; user, if not
// empty, must own it.
func (s *Service) checkToken(ctx context.Context, user, secret string, kind TokenKind) (Subject, error) {
	tok, err := s.store.GetTokenByHash(ctx, hashSecret(secret))
	if errors.Is(err, ErrNotFound) {
		return Subject{}, ErrUnauthenticated
	}
	if err != nil {
		return Subject{}, err
	}
	now := s.cfg.Now()
	if tok.Kind != kind || (user != "" && tok.User != user) || !tok.Usable(now) {
		return Subject{}, ErrUnauthenticated
	}
	u, err := s.store.GetUser(ctx, tok.User)
	if errors.Is(err, ErrNotFound) {
		return Subject{}, ErrUnauthenticated
	}
	if err != nil {
		return Subject{}, err
	}
	if now.Sub(tok.LastUsed) >= touchEvery {
		if err := s.store.TouchToken(ctx, tok.ID, now); err != nil {
			// Last-used is informative; a failed write must not fail the login.
			s.cfg.Log.WarnContext(ctx, "token last-used not recorded", "token_id", tok.ID, "err", err)
		}
	}
	return Subject{User: u.Name, Admin: u.Admin, Scope: tok.Scope, TokenID: tok.ID, TokenExpires: tok.ExpiresAt}, nil
}

// IssueRefreshToken returns a refresh token for sub, which `docker login`
// saves as its identity token (offline_token=true) and trades for access
// tokens through Refresh. A refresh token carries sub's cap and dies with
// the access token sub logged in with.
func (s *Service) IssueRefreshToken(ctx context.Context, sub Subject, clientID string) (string, error) {
	if sub.Anonymous() {
		return "", fmt.Errorf("refresh token for an anonymous caller: %w", ErrInvalid)
	}
	now := s.cfg.Now()
	expires := now.Add(s.cfg.RefreshTokenLifetime)
	if !sub.TokenExpires.IsZero() && sub.TokenExpires.Before(expires) {
		// A login made with an access token ends when that token does:
		// "expires in 7 days" must not become 90 through docker login.
		expires = sub.TokenExpires
	}
	secret, hash := newSecret(RefreshPrefix)
	tok := &Token{
		ID: newID(), User: sub.User, Kind: KindRefresh, Name: clientID, Scope: sub.Scope, Hash: hash,
		Parent: sub.TokenID, CreatedAt: now, ExpiresAt: expires,
	}
	if err := s.store.CreateToken(ctx, tok); err != nil {
		return "", err
	}
	s.cfg.Log.InfoContext(ctx, "refresh token created", "user", sub.User, "token_id", tok.ID, "client_id", clientID)
	return secret, nil
}

// Refresh returns the subject a refresh token stands for, or
// ErrUnauthenticated if it is unknown, expired or revoked.
func (s *Service) Refresh(ctx context.Context, secret string) (Subject, error) {
	if !strings.HasPrefix(secret, RefreshPrefix) {
		return Subject{}, ErrUnauthenticated
	}
	return s.checkToken(ctx, "", secret, KindRefresh)
}

// VerifyBearer checks a bearer token's signature and claims (t.Verify),
// then that its holder still stands: its user must exist and the access
// or refresh token it logged in with must be neither revoked nor expired.
// A bearer token lives minutes, but a deleted account or a revoked token
// must not keep working that long. Every failure matches ErrInvalidToken,
// so clients fetch a new token and meet the real refusal at the token
// endpoint (a store error is returned as is).
func (s *Service) VerifyBearer(ctx context.Context, t *Tokens, raw string) (*Claims, error) {
	c, err := t.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := s.checkHolder(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

func (s *Service) checkHolder(ctx context.Context, c *Claims) error {
	if c.Subject == "" {
		return nil
	}
	if c.TokenID == "" {
		ok, err := s.store.UserExists(ctx, c.Subject)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: user %s no longer exists", ErrInvalidToken, c.Subject)
		}
		return nil
	}
	// Deleting a user deletes its tokens, so this covers the user too.
	expires, err := s.store.ActiveTokenExpiry(ctx, c.Subject, c.TokenID)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: token %s was revoked", ErrInvalidToken, c.TokenID)
	}
	if err != nil {
		return err
	}
	if !expires.IsZero() && !s.cfg.Now().Before(expires) {
		return fmt.Errorf("%w: token %s has expired", ErrInvalidToken, c.TokenID)
	}
	return nil
}

// RevokeRefreshTokens logs the user out of every docker login.
func (s *Service) RevokeRefreshTokens(ctx context.Context, user string) error {
	return s.store.RevokeTokens(ctx, user, KindRefresh, s.cfg.Now())
}
