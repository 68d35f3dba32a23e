// Package auth decides who a caller is and what they may do: users,
// organisations, passwords, personal access tokens, repository visibility,
// the one authorisation function every route asks, and the pieces of
// docker's token service (scopes, JWTs, signing keys, refresh tokens,
// WWW-Authenticate challenges). It speaks no HTTP; the server wires it.
package auth

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Store implementations return ErrNotFound and ErrExists
// (wrapped); the Service adds the others.
var (
	// ErrNotFound means the user, organisation, member, token, key or
	// visibility record does not exist.
	ErrNotFound = errors.New("auth: not found")
	// ErrExists means the name is taken (users and organisations share
	// one namespace) or the id is already used.
	ErrExists = errors.New("auth: already exists")
	// ErrInvalid means an argument is malformed: a bad name, role, scope,
	// visibility or a too short password.
	ErrInvalid = errors.New("auth: invalid argument")
	// ErrUnauthenticated means the credentials are wrong, unknown, expired
	// or revoked. It never says which.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrRateLimited means too many failed logins; the server answers 429
	// TOOMANYREQUESTS. Errors matching it are a *RateLimitError.
	ErrRateLimited = errors.New("auth: too many failed attempts")
	// ErrInvalidToken means a bearer token (JWT) failed verification.
	ErrInvalidToken = errors.New("auth: invalid token")
)

// User is an account. A user owns the namespace of the same name.
type User struct {
	Name         string
	PasswordHash string // PHC-encoded argon2id hash
	Admin        bool
	CreatedAt    time.Time
}

// Org is an organisation: it owns the namespace of its name and has
// members in roles.
type Org struct {
	Name      string
	CreatedAt time.Time
}

// Role is an organisation member's role.
type Role string

// Roles, each including the rights of the one before.
const (
	RoleRead  Role = "read"  // pull
	RoleWrite Role = "write" // pull, push
	RoleAdmin Role = "admin" // pull, push, delete
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleRead || r == RoleWrite || r == RoleAdmin }

// Member is a user's membership in an organisation.
type Member struct {
	Org  string
	User string
	Role Role
}

// Visibility says who may pull a repository.
type Visibility string

// Visibilities.
const (
	Public  Visibility = "public"  // anyone may pull, logged in or not
	Private Visibility = "private" // only those with access
)

// Valid reports whether v is a known visibility.
func (v Visibility) Valid() bool { return v == Public || v == Private }

// TokenKind tells personal access tokens from refresh tokens.
type TokenKind string

// Token kinds.
const (
	// KindPAT is a personal access token, usable as a password.
	KindPAT TokenKind = "pat"
	// KindRefresh is a refresh token handed to `docker login`
	// (offline_token=true) and traded for access tokens.
	KindRefresh TokenKind = "refresh"
)

// TokenScope caps what a personal access token may do.
type TokenScope string

// Token scopes, as on Docker Hub.
const (
	ScopeRead            TokenScope = "read"              // pull
	ScopeReadWrite       TokenScope = "read-write"        // pull, push
	ScopeReadWriteDelete TokenScope = "read-write-delete" // pull, push, delete
)

// Valid reports whether s is a known scope.
func (s TokenScope) Valid() bool {
	return s == ScopeRead || s == ScopeReadWrite || s == ScopeReadWriteDelete
}

// Token is a stored personal access token or refresh token. The secret is
// never stored, only its SHA-256.
type Token struct {
	ID    string
	User  string
	Kind  TokenKind
	Name  string
	Scope TokenScope
	Hash  []byte // sha256 of the secret
	// Parent is the access token a refresh token was obtained with; revoking
	// the parent revokes it too.
	Parent    string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	LastUsed  time.Time // zero: never used
	RevokedAt time.Time // zero: not revoked
}

// Usable reports whether t may authenticate at now.
func (t *Token) Usable(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// SigningKey is a token signing key. Its ID is the RFC 7638 thumbprint of
// its public key; PrivateKey is PKCS #8 DER (Ed25519 or ECDSA P-256).
type SigningKey struct {
	ID         string
	PrivateKey []byte
	CreatedAt  time.Time
	RetiredAt  time.Time // zero: active
}

// Store keeps accounts, tokens, visibility and keys. Every method returns
// ErrNotFound (wrapped) for a missing row unless it says otherwise.
type Store interface {
	// CreateUser adds u; ErrExists if a user or organisation has the name.
	CreateUser(ctx context.Context, u *User) error
	// CreateFirstUser adds u only if there are no users at all, atomically;
	// created is false if a user already existed.
	CreateFirstUser(ctx context.Context, u *User) (created bool, err error)
	// GetUser returns the user name.
	GetUser(ctx context.Context, name string) (*User, error)
	// UserExists reports whether the user exists. Every request with a
	// bearer token asks, so it should be cheap.
	UserExists(ctx context.Context, name string) (bool, error)
	// SetPasswordHash replaces the user's password hash.
	SetPasswordHash(ctx context.Context, name, hash string) error
	// DeleteUser removes the user, its memberships and its tokens.
	DeleteUser(ctx context.Context, name string) error
	// ListUsers lists users by name.
	ListUsers(ctx context.Context) ([]User, error)

	// CreateOrg adds o; ErrExists if a user or organisation has the name.
	CreateOrg(ctx context.Context, o *Org) error
	// GetOrg returns the organisation name.
	GetOrg(ctx context.Context, name string) (*Org, error)
	// SetMember adds the user to the organisation or changes its role;
	// ErrNotFound if either does not exist.
	SetMember(ctx context.Context, m Member) error
	// RemoveMember removes the user from the organisation.
	RemoveMember(ctx context.Context, org, user string) error
	// MemberRole returns the user's role in the organisation.
	MemberRole(ctx context.Context, org, user string) (Role, error)
	// ListMembers lists the organisation's members by user name.
	ListMembers(ctx context.Context, org string) ([]Member, error)

	// SetVisibility records the repository's visibility.
	SetVisibility(ctx context.Context, repo string, v Visibility) error
	// GetVisibility returns the repository's recorded visibility.
	GetVisibility(ctx context.Context, repo string) (Visibility, error)

	// CreateToken stores t; ErrExists if its id or hash is taken, ErrNotFound
	// if its user does not exist.
	CreateToken(ctx context.Context, t *Token) error
	// GetTokenByHash returns the token whose secret hashes to hash.
	GetTokenByHash(ctx context.Context, hash []byte) (*Token, error)
	// ListTokens lists the user's tokens of kind, oldest first.
	ListTokens(ctx context.Context, user string, kind TokenKind) ([]Token, error)
	// RevokeToken marks the user's token id, and the tokens whose Parent it
	// is, revoked at at; revoking twice keeps the first time.
	RevokeToken(ctx context.Context, user, id string, at time.Time) error
	// RevokeTokens revokes every unrevoked token of kind the user holds.
	RevokeTokens(ctx context.Context, user string, kind TokenKind, at time.Time) error
	// ActiveTokenExpiry returns when the user's token id expires (zero:
	// never); ErrNotFound if the user holds no such token or it was
	// revoked. Every request with a bearer token asks, so it should be
	// cheap.
	ActiveTokenExpiry(ctx context.Context, user, id string) (time.Time, error)
	// TouchToken records that token id was used at at.
	TouchToken(ctx context.Context, id string, at time.Time) error

	// CreateSigningKey stores k; ErrExists if its id is taken.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// ListSigningKeys lists all keys, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey marks key id retired at at (first time wins).
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
	// DeleteSigningKey removes key id.
	DeleteSigningKey(ctx context.Context, id string) error
}
