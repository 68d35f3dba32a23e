package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Config tunes a Service. Zero fields take the defaults.
type Config struct {
	// DefaultVisibility applies to repositories without a recorded one
	// (default Private).
	DefaultVisibility Visibility
	// PasswordParams are the argon2id costs for new hashes
	// (default DefaultPasswordParams).
	PasswordParams PasswordParams
	// Limiter rate-limits failed logins (default NewLimiter with Now). The
	// account-wide and address-wide allowances keep their counters in its
	// Store too.
	Limiter *Limiter
	// RefreshTokenLifetime bounds refresh tokens (default 90 days).
	RefreshTokenLifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives audit lines (default: discarded).
	Log *slog.Logger
	// PublicPull, if set, names repositories anyone may pull whatever
	// their visibility: the mirrored names when the pull-through cache
	// lets anonymous callers use it.
	PublicPull func(repo string) bool
}

// Service manages accounts and tokens and answers who may do what.
type Service struct {
	store Store
	cfg   Config

	dummyOnce sync.Once
	dummy     string // hash checked for unknown users, to cost the same
	logins    *loginCache
	wide      *Limiter // the account-wide and address-wide allowances
	guard     *guard
}

// NewService returns a Service over store.
func NewService(store Store, cfg Config) *Service {
	if cfg.DefaultVisibility == "" {
		cfg.DefaultVisibility = Private
	}
	if cfg.PasswordParams == (PasswordParams{}) {
		cfg.PasswordParams = DefaultPasswordParams
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limiter == nil {
		cfg.Limiter = NewLimiter(LimiterConfig{Now: cfg.Now})
	}
	if cfg.RefreshTokenLifetime <= 0 {
		cfg.RefreshTokenLifetime = 90 * 24 * time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		store: store, cfg: cfg, logins: newLoginCache(), guard: newGuard(),
		wide: NewLimiter(LimiterConfig{Free: wideFree, Store: cfg.Limiter.cfg.Store, Now: cfg.Now}),
	}
}

// AdminUser is the account EnsureAdmin creates.
const AdminUser = "admin"

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// nameRE is a namespace name: one lower-case path component of a
// repository name, as the distribution spec allows it.
var nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)

// ValidName reports whether name may name a user or organisation.
func ValidName(name string) bool { return len(name) <= 64 && nameRE.MatchString(name) }

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("name %q: lower-case letters, digits and separators, at most 64: %w", name, ErrInvalid)
	}
	return nil
}

func checkPassword(password string) error {
	if len(password) < MinPasswordLen {
		return fmt.Errorf("password shorter than %d characters: %w", MinPasswordLen, ErrInvalid)
	}
	if strings.HasPrefix(password, PATPrefix) || strings.HasPrefix(password, RefreshPrefix) {
		// Such a secret is taken for a token, never checked as a password.
		return fmt.Errorf("password starts with a token prefix: %w", ErrInvalid)
	}
	return nil
}

// AddUser creates a user with password.
func (s *Service) AddUser(ctx context.Context, name, password string, admin bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password, s.cfg.PasswordParams)
	if err != nil {
		return err
	}
	if err := s.store.CreateUser(ctx, &User{Name: name, PasswordHash: hash, Admin: admin, CreatedAt: s.cfg.Now()}); err != nil {
		return err
	}
	s.cfg.Log.InfoContext(ctx, "user added", "user", name, "admin", admin, "by", actor(ctx))
	return nil
}

// SetPassword changes the user's password and revokes its refresh tokens
// (docker logins elsewhere must log in again); access tokens stay valid.
func (s *Service) SetPassword(ctx context.Context, name, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password, s.cfg.PasswordParams)
	if err != nil {
		return err
	}
	if err := s.store.SetPasswordHash(ctx, name, hash); err != nil {
		return err
	}
	s.logins.forget(name)
	if err := s.store.RevokeTokens(ctx, name, KindRefresh, s.cfg.Now()); err != nil {
		return err
	}
	s.cfg.Log.InfoContext(ctx, "password changed", "user", name, "by", actor(ctx))
	return nil
}

// RemoveUser deletes the user with its memberships and tokens.
func (s *Service) RemoveUser(ctx context.Context, name string) error {
	if err := s.store.DeleteUser(ctx, name); err != nil {
		return err
	}
	s.logins.forget(name)
	s.cfg.Log.InfoContext(ctx, "user removed", "user", name, "by", actor(ctx))
	return nil
}

// ListUsers lists users by name, without their password hashes.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	users, err := s.store.ListUsers(ctx)
	for i := range users {
		users[i].PasswordHash = ""
	}
	return users, err
}

// AddOrg creates an organisation.
func (s *Service) AddOrg(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := s.store.CreateOrg(ctx, &Org{Name: name, CreatedAt: s.cfg.Now()}); err != nil {
		return err
	}
	s.cfg.Log.InfoContext(ctx, "organisation added", "org", name, "by", actor(ctx))
	return nil
}

// AddMember adds user to org in role, or changes its role.
func (s *Service) AddMember(ctx context.Context, org, user string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("role %q: want read, write or admin: %w", role, ErrInvalid)
	}
	if err := s.store.SetMember(ctx, Member{Org: org, User: user, Role: role}); err != nil {
		return err
	}
	s.cfg.Log.InfoContext(ctx, "organisation member set", "org", org, "user", user, "role", string(role), "by", actor(ctx))
	return nil
}

// RemoveMember removes user from org.
func (s *Service) RemoveMember(ctx context.Context, org, user string) error {
	if err := s.store.RemoveMember(ctx, org, user); err != nil {
		return err
	}
	s.cfg.Log.InfoContext(ctx, "organisation member removed", "org", org, "user", user, "by", actor(ctx))
	return nil
}

// ListMembers lists org's members.
func (s *Service) ListMembers(ctx context.Context, org string) ([]Member, error) {
	return s.store.ListMembers(ctx, org)
}

// Visibility returns the repository's recorded visibility, or Private
// for a repository without a record. Every push through the server
// records the default when it may create a repository, so no record means
// the repository does not exist (or predates accounts): answering
// "private" for it keeps anonymous callers from telling a private
// repository from a missing one, whatever the default.
func (s *Service) Visibility(ctx context.Context, repo string) (Visibility, error) {
	v, err := s.store.GetVisibility(ctx, repo)
	if errors.Is(err, ErrNotFound) {
		return Private, nil
	}
	return v, err
}

// SetVisibility records the repository's visibility. The server records
// the default when a push creates a repository, so that changing the
// default later does not expose existing repositories.
func (s *Service) SetVisibility(ctx context.Context, repo string, v Visibility) error {
	if !v.Valid() {
		return fmt.Errorf("visibility %q: want public or private: %w", v, ErrInvalid)
	}
	if err := s.store.SetVisibility(ctx, repo, v); err != nil {
		return err
	}
	// Pushes record the default visibility of new repositories through
	// EnsureVisibility, which logs nothing: only changes are audited.
	s.cfg.Log.InfoContext(ctx, "visibility changed", "repository", repo, "visibility", string(v), "by", actor(ctx))
	return nil
}

// DefaultVisibility is the visibility recorded for new repositories.
func (s *Service) DefaultVisibility() Visibility { return s.cfg.DefaultVisibility }

// EnsureAdmin creates the user "admin" if there are no users at all. With
// an empty password it generates one and returns it, to be shown once;
// otherwise, or if users exist, generated is empty.
func (s *Service) EnsureAdmin(ctx context.Context, password string) (generated string, err error) {
	gen := password == ""
	if gen {
		password = randomString(24)
	} else if err := checkPassword(password); err != nil {
		return "", err
	}
	hash, err := HashPassword(password, s.cfg.PasswordParams)
	if err != nil {
		return "", err
	}
	created, err := s.store.CreateFirstUser(ctx, &User{Name: AdminUser, PasswordHash: hash, Admin: true, CreatedAt: s.cfg.Now()})
	if err != nil || !created {
		return "", err
	}
	s.cfg.Log.InfoContext(ctx, "admin user created", "user", AdminUser, "generated_password", gen)
	if gen {
		return password, nil
	}
	return "", nil
}

// randomString returns n characters from an unambiguous alphabet, from
// crypto/rand (whose Read never fails).
func randomString(n int) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	return randomFrom(alphabet, n)
}

func randomFrom(alphabet string, n int) string {
	b := make([]byte, n)
	buf := make([]byte, 1)
	for i := 0; i < n; {
		_, _ = rand.Read(buf)
		// Rejection sampling keeps every character equally likely.
		if int(buf[0]) >= 256-256%len(alphabet) {
			continue
		}
		b[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(b)
}
