package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token lifetimes and the clock skew allowed when verifying.
const (
	DefaultTokenLifetime = 5 * time.Minute
	MinTokenLifetime     = 60 * time.Second
	Leeway               = 60 * time.Second
)

// Signing algorithms for new keys.
const (
	AlgEdDSA = "EdDSA" // Ed25519
	AlgES256 = "ES256" // ECDSA P-256
)

// Claims are a docker registry bearer token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access"`
	// TokenID is the access or refresh token the holder logged in with,
	// if any: revoking it ends this token too (Service.VerifyBearer).
	TokenID string `json:"wharf_token_id,omitempty"`
}

// Allows reports whether the token grants action on the resource named
// exactly typ/name. A grant of "*" allows every action.
func (c *Claims) Allows(typ, name, action string) bool {
	for _, a := range c.Access {
		if a.Type == typ && a.Name == name &&
			(slices.Contains(a.Actions, action) || slices.Contains(a.Actions, ActionAll)) {
			return true
		}
	}
	return false
}

// TokenConfig configures a Tokens. Zero fields take the defaults.
type TokenConfig struct {
	Issuer  string // iss, required
	Service string // aud: the registry's service name, required
	// Lifetime of issued tokens (default 5 minutes, never under 60 s).
	Lifetime time.Duration
	// Algorithm of new keys: AlgEdDSA (default) or AlgES256.
	Algorithm string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Tokens issues and verifies registry bearer tokens with keys kept in a
// Store. The newest active key signs; retired keys keep verifying until
// every token they signed has expired (Lifetime + Leeway after retiring).
type Tokens struct {
	cfg   TokenConfig
	store Store

	mu     sync.RWMutex
	keys   map[string]*signingKey
	signer *signingKey

	// reloadMu serialises the reloads an unknown key id asks for, and
	// lastReload spaces them (keyReloadEvery).
	reloadMu   sync.Mutex
	lastReload time.Time
}

// keyReloadEvery spaces the reloads that tokens signed by an unknown key
// cause: often enough that a key another replica has just created
// verifies at once, rarely enough that tokens naming made-up keys cannot
// turn every request into a database read.
const keyReloadEvery = time.Second

// errUnknownKey is the verification failure that a reload may cure.
var errUnknownKey = errors.New("unknown key")

type signingKey struct {
	id      string
	alg     string
	private crypto.Signer
	retired time.Time
}

// NewTokens loads the keys from store, creating a signing key if none is
// active.
func NewTokens(ctx context.Context, store Store, cfg TokenConfig) (*Tokens, error) {
	if cfg.Issuer == "" || cfg.Service == "" {
		return nil, fmt.Errorf("token issuer and service are required: %w", ErrInvalid)
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultTokenLifetime
	}
	cfg.Lifetime = max(cfg.Lifetime, MinTokenLifetime)
	if cfg.Algorithm == "" {
		cfg.Algorithm = AlgEdDSA
	}
	if cfg.Algorithm != AlgEdDSA && cfg.Algorithm != AlgES256 {
		return nil, fmt.Errorf("token algorithm %q: want EdDSA or ES256: %w", cfg.Algorithm, ErrInvalid)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokens{cfg: cfg, store: store}
	if err := t.Reload(ctx); err != nil {
		return nil, err
	}
	if t.signer == nil {
		if err := t.Rotate(ctx); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Lifetime is how long issued tokens live.
func (t *Tokens) Lifetime() time.Duration { return t.cfg.Lifetime }

// Reload reads the keys from the store again, so that a replica sees keys
// another one created or retired.
func (t *Tokens) Reload(ctx context.Context) error {
	stored, err := t.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	keys := map[string]*signingKey{}
	var signer *signingKey
	for _, sk := range stored {
		k, err := parseKey(sk)
		if err != nil {
			return err
		}
		keys[k.id] = k
		if k.retired.IsZero() {
			signer = k // oldest first: the newest active key wins
		}
	}
	t.mu.Lock()
	t.keys, t.signer = keys, signer
	t.mu.Unlock()
	return nil
}

// Rotate creates a new signing key and retires the active ones; tokens
// they signed stay valid until they expire.
func (t *Tokens) Rotate(ctx context.Context) error {
	sk, err := newKey(t.cfg.Algorithm, t.cfg.Now())
	if err != nil {
		return err
	}
	if err := t.store.CreateSigningKey(ctx, sk); err != nil {
		return err
	}
	t.mu.RLock()
	var active []string
	for id, k := range t.keys {
		if k.retired.IsZero() {
			active = append(active, id)
		}
	}
	t.mu.RUnlock()
	for _, id := range active {
		if err := t.store.RetireSigningKey(ctx, id, t.cfg.Now()); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return t.Reload(ctx)
}

// Prune deletes keys retired so long ago that no token they signed can
// still be valid.
func (t *Tokens) Prune(ctx context.Context) error {
	t.mu.RLock()
	var dead []string
	for id, k := range t.keys {
		if !t.verifies(k) {
			dead = append(dead, id)
		}
	}
	t.mu.RUnlock()
	for _, id := range dead {
		if err := t.store.DeleteSigningKey(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return t.Reload(ctx)
}

// verifies reports whether k may still verify tokens.
func (t *Tokens) verifies(k *signingKey) bool {
	return k.retired.IsZero() || t.cfg.Now().Before(k.retired.Add(t.cfg.Lifetime+Leeway))
}

// Issued is a signed token with what the token response reports.
type Issued struct {
	Token     string
	ExpiresIn int // seconds
	IssuedAt  time.Time
}

// Issue signs a token for subject (empty for anonymous) granting access;
// tokenID names the access or refresh token the subject logged in with.
func (t *Tokens) Issue(subject, tokenID string, access []Access) (Issued, error) {
	t.mu.RLock()
	k := t.signer
	t.mu.RUnlock()
	if k == nil {
		return Issued{}, errors.New("auth: no active signing key")
	}
	now := t.cfg.Now().Truncate(time.Second)
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	if access == nil {
		access = []Access{}
	}
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{t.cfg.Service},
			ExpiresAt: jwt.NewNumericDate(now.Add(t.cfg.Lifetime)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(jti),
		},
		Access:  access,
		TokenID: tokenID,
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), claims)
	tok.Header["kid"] = k.id
	signed, err := tok.SignedString(k.private)
	if err != nil {
		return Issued{}, fmt.Errorf("sign token: %w", err)
	}
	return Issued{Token: signed, ExpiresIn: int(t.cfg.Lifetime / time.Second), IssuedAt: now}, nil
}

// Verify checks a token's signature (by a known key, with that key's
// algorithm; never "none"), issuer, audience, expiry and not-before, with
// Leeway, and returns its claims. Every failure matches ErrInvalidToken.
//
// A key id it does not know makes it read the keys from the store again
// before it gives up (at most once per keyReloadEvery): another replica,
// started after this one or after a rotation, may sign with a key this
// one has not loaded yet, and its tokens must verify here at once.
func (t *Tokens) Verify(ctx context.Context, raw string) (*Claims, error) {
	claims, err := t.verify(raw)
	if errors.Is(err, errUnknownKey) {
		if rerr := t.reloadForUnknownKey(ctx); rerr != nil {
			return nil, rerr
		}
		claims, err = t.verify(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return claims, nil
}

// reloadForUnknownKey reloads the keys unless that was done less than
// keyReloadEvery ago. Callers that arrive during a reload wait for it, so
// that they see its keys.
func (t *Tokens) reloadForUnknownKey(ctx context.Context) error {
	t.reloadMu.Lock()
	defer t.reloadMu.Unlock()
	now := t.cfg.Now()
	if !t.lastReload.IsZero() && now.Sub(t.lastReload) < keyReloadEvery && !now.Before(t.lastReload) {
		return nil
	}
	t.lastReload = now
	if err := t.Reload(ctx); err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	return nil
}

func (t *Tokens) verify(raw string) (*Claims, error) {
	claims := &Claims{}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{AlgEdDSA, AlgES256}),
		jwt.WithIssuer(t.cfg.Issuer),
		jwt.WithAudience(t.cfg.Service),
		jwt.WithLeeway(Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.cfg.Now),
	)
	_, err := p.ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		t.mu.RLock()
		k, ok := t.keys[kid]
		t.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("%w %q", errUnknownKey, kid)
		}
		if !t.verifies(k) {
			return nil, fmt.Errorf("retired key %q", kid)
		}
		if tok.Method.Alg() != k.alg {
			return nil, fmt.Errorf("algorithm %s for a %s key", tok.Method.Alg(), k.alg)
		}
		return k.private.Public(), nil
	})
	return claims, err
}

func newKey(alg string, now time.Time) (*SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("key algorithm %q: %w", alg, ErrInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	return &SigningKey{ID: kid, PrivateKey: der, CreatedAt: now}, nil
}

func parseKey(sk SigningKey) (*signingKey, error) {
	priv, err := x509.ParsePKCS8PrivateKey(sk.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", sk.ID, err)
	}
	k := &signingKey{id: sk.ID, retired: sk.RetiredAt}
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		k.alg, k.private = AlgEdDSA, p
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key %s: curve %s, want P-256", sk.ID, p.Curve.Params().Name)
		}
		k.alg, k.private = AlgES256, p
	default:
		return nil, fmt.Errorf("signing key %s: unsupported type %T", sk.ID, priv)
	}
	if kid, err := Thumbprint(k.private.Public()); err != nil || kid != sk.ID {
		return nil, fmt.Errorf("signing key %s: id is not its thumbprint", sk.ID)
	}
	return k, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url) of
// an Ed25519 or ECDSA P-256 public key: the hash of its required JWK
// members in lexicographic order, without white space.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var jwk []byte
	var err error
	switch p := pub.(type) {
	case ed25519.PublicKey:
		jwk, err = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{"Ed25519", "OKP", b64(p)})
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return "", fmt.Errorf("thumbprint: curve %s: %w", p.Curve.Params().Name, ErrInvalid)
		}
		raw, perr := p.Bytes() // 0x04 || X || Y, each padded to 32 bytes
		if perr != nil {
			return "", fmt.Errorf("thumbprint: %w", perr)
		}
		jwk, err = json.Marshal(struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{"P-256", "EC", b64(raw[1:33]), b64(raw[33:])})
	default:
		return "", fmt.Errorf("thumbprint: key type %T: %w", pub, ErrInvalid)
	}
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(jwk)
	return b64(sum[:]), nil
}
