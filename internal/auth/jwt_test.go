package auth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/clocktest"
)

func TestThumbprint_RFC8037Example(t *testing.T) {
	// RFC 8037 appendix A.2 and A.3: the Ed25519 key and its thumbprint.
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	must(t, err)
	got, err := auth.Thumbprint(ed25519.PublicKey(x))
	must(t, err)
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

func newTokens(t *testing.T, c *clocktest.Clock, alg string) (*auth.Tokens, auth.Store) {
	t.Helper()
	store := newStore(t)
	tk, err := auth.NewTokens(t.Context(), store, auth.TokenConfig{Issuer: "wharf", Service: "registry.test", Algorithm: alg, Now: c.Now})
	must(t, err)
	return tk, store
}

var pullAliceApp = []auth.Access{access("repository", "alice/app", "pull")}

func TestTokens_IssueVerifyRoundTrips(t *testing.T) {
	for _, alg := range []string{auth.AlgEdDSA, auth.AlgES256} {
		t.Run(alg, func(t *testing.T) {
			c := newClock()
			tk, _ := newTokens(t, c, alg)
			iss, err := tk.Issue("alice", "", pullAliceApp)
			must(t, err)
			if iss.ExpiresIn != 300 || !iss.IssuedAt.Equal(c.Now()) {
				t.Fatalf("Issued = %+v, want 300 s from now", iss)
			}
			claims, err := tk.Verify(t.Context(), iss.Token)
			must(t, err)
			if claims.Subject != "alice" || claims.Issuer != "wharf" || len(claims.Audience) != 1 ||
				claims.Audience[0] != "registry.test" || claims.ID == "" || claims.NotBefore == nil || claims.IssuedAt == nil {
				t.Fatalf("claims = %+v", claims)
			}
			hdr := decodeSegment(t, iss.Token, 0)
			if hdr["alg"] != alg || hdr["kid"] == "" {
				t.Fatalf("header = %v", hdr)
			}
			// A token for repo A is no token for repo B, nor for more actions.
			if !claims.Allows("repository", "alice/app", "pull") ||
				claims.Allows("repository", "alice/other", "pull") ||
				claims.Allows("repository", "alice/app", "push") ||
				claims.Allows("repository", "alice/app/sub", "pull") ||
				claims.Allows("registry", "alice/app", "pull") {
				t.Fatalf("Allows does not match the access claim exactly: %+v", claims.Access)
			}
		})
	}
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	must(t, err)
	m := map[string]any{}
	must(t, json.Unmarshal(b, &m))
	return m
}

func encodeSegment(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	must(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestTokens_VerifyRefuses covers the token security cases: every forged,
// stale or misdirected token is refused with ErrInvalidToken.
func TestTokens_VerifyRefuses(t *testing.T) {
	c := newClock()
	tk, store := newTokens(t, c, auth.AlgEdDSA)
	good, err := tk.Issue("bob", "", pullAliceApp)
	must(t, err)
	parts := strings.Split(good.Token, ".")
	kid := decodeSegment(t, good.Token, 0)["kid"].(string)

	// Same keys, other service or issuer: only the claims differ.
	otherService, err := auth.NewTokens(t.Context(), store, auth.TokenConfig{Issuer: "wharf", Service: "elsewhere", Now: c.Now})
	must(t, err)
	foreign, err := otherService.Issue("bob", "", pullAliceApp)
	must(t, err)
	otherIssuer, err := auth.NewTokens(t.Context(), store, auth.TokenConfig{Issuer: "mallory", Service: "registry.test", Now: c.Now})
	must(t, err)
	fromMallory, err := otherIssuer.Issue("bob", "", pullAliceApp)
	must(t, err)
	// A token signed by a key the verifier has never seen.
	stranger2, _ := newTokensWith(t, c, auth.TokenConfig{Issuer: "wharf", Service: "registry.test"})
	unknownKey, err := stranger2.Issue("bob", "", pullAliceApp)
	must(t, err)

	// Signed by another key that claims our kid.
	_, stranger, _ := ed25519.GenerateKey(nil)
	wrongKey := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "wharf", "aud": "registry.test", "sub": "bob", "exp": c.Now().Add(time.Minute).Unix(),
		"iat": c.Now().Unix(), "access": pullAliceApp,
	})
	wrongKey.Header["kid"] = kid
	wrongSig, err := wrongKey.SignedString(stranger)
	must(t, err)

	claims := decodeSegment(t, good.Token, 1)
	claims["access"] = []auth.Access{access("repository", "alice/app", "pull", "push", "delete")}
	escalated := parts[0] + "." + encodeSegment(t, claims) + "." + parts[2]
	claims = decodeSegment(t, good.Token, 1)
	claims["sub"] = "alice"
	otherSubject := parts[0] + "." + encodeSegment(t, claims) + "." + parts[2]

	none := encodeSegment(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + "."
	hdr := decodeSegment(t, good.Token, 0)
	hdr["kid"] = "unknown"
	unknownKid := encodeSegment(t, hdr) + "." + parts[1] + "." + parts[2]
	hdr = decodeSegment(t, good.Token, 0)
	delete(hdr, "kid")
	noKid := encodeSegment(t, hdr) + "." + parts[1] + "." + parts[2]
	hdr = decodeSegment(t, good.Token, 0)
	hdr["alg"] = "HS256"
	hs := encodeSegment(t, hdr) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name  string
		token string
	}{
		{"wrong signature", wrongSig},
		{"alg none", none},
		{"alg switched to HS256", hs},
		{"escalated access claim", escalated},
		{"tampered subject", otherSubject},
		{"wrong audience", foreign.Token},
		{"wrong issuer", fromMallory.Token},
		{"unknown kid", unknownKid},
		{"signed by an unknown key", unknownKey.Token},
		{"no kid", noKid},
		{"truncated", parts[0] + "." + parts[1]},
		{"garbage", "not.a.token"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := tk.Verify(t.Context(), tt.token)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", claims, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func newTokensWith(t *testing.T, c *clocktest.Clock, cfg auth.TokenConfig) (*auth.Tokens, auth.Store) {
	t.Helper()
	cfg.Now = c.Now
	store := newStore(t)
	tk, err := auth.NewTokens(t.Context(), store, cfg)
	must(t, err)
	return tk, store
}

func TestTokens_ExpiryWithLeeway(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		ok      bool
	}{
		{"fresh", 0, true},
		{"just before expiry", 5*time.Minute - time.Second, true},
		{"expired but within 60 s leeway", 5*time.Minute + 59*time.Second, true},
		{"expired beyond leeway", 5*time.Minute + 61*time.Second, false},
		{"issued in the future beyond leeway", -2 * time.Minute, false},
		{"issued in the future within leeway", -30 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			tk, _ := newTokens(t, c, "")
			iss, err := tk.Issue("alice", "", pullAliceApp)
			must(t, err)
			c.Advance(tt.advance)
			_, err = tk.Verify(t.Context(), iss.Token)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want ok", err)
			}
			if !tt.ok && !errors.Is(err, auth.ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestTokens_LifetimeNeverUnderAMinute(t *testing.T) {
	for _, tt := range []struct {
		set, want time.Duration
	}{{0, 5 * time.Minute}, {time.Second, time.Minute}, {10 * time.Minute, 10 * time.Minute}} {
		tk, _ := newTokensWith(t, newClock(), auth.TokenConfig{Issuer: "wharf", Service: "s", Lifetime: tt.set})
		if tk.Lifetime() != tt.want {
			t.Errorf("Lifetime(%s) = %s, want %s", tt.set, tk.Lifetime(), tt.want)
		}
	}
	if _, err := auth.NewTokens(t.Context(), newStore(t), auth.TokenConfig{Service: "s"}); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("NewTokens without issuer = %v, want ErrInvalid", err)
	}
}

func TestTokens_RotationOverlaps(t *testing.T) {
	c := newClock()
	tk, store := newTokens(t, c, "")
	ctx := t.Context()
	old, err := tk.Issue("alice", "", pullAliceApp)
	must(t, err)
	oldKid := decodeSegment(t, old.Token, 0)["kid"]

	c.Advance(time.Minute)
	must(t, tk.Rotate(ctx))
	fresh, err := tk.Issue("alice", "", pullAliceApp)
	must(t, err)
	if kid := decodeSegment(t, fresh.Token, 0)["kid"]; kid == oldKid {
		t.Fatal("after Rotate the old key still signs")
	}
	// Another replica with the same store sees both keys.
	replica, err := auth.NewTokens(ctx, store, auth.TokenConfig{Issuer: "wharf", Service: "registry.test", Now: c.Now})
	must(t, err)
	for name, v := range map[string]*auth.Tokens{"rotating replica": tk, "other replica": replica} {
		for _, tok := range []auth.Issued{old, fresh} {
			if _, err := v.Verify(t.Context(), tok.Token); err != nil {
				t.Fatalf("%s: Verify during overlap: %v", name, err)
			}
		}
	}
	keys, err := store.ListSigningKeys(ctx)
	must(t, err)
	if len(keys) != 2 || keys[0].RetiredAt.IsZero() || !keys[1].RetiredAt.IsZero() {
		t.Fatalf("keys after rotate = %+v, want old retired, new active", keys)
	}

	// Once every token of the old key has expired, the key verifies nothing
	// and Prune deletes it.
	c.Advance(tk.Lifetime() + auth.Leeway + time.Second)
	forged := reSign(t, keys[0], old.Token, c.Now())
	if _, err := tk.Verify(t.Context(), forged); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("Verify by a key retired long ago = %v, want ErrInvalidToken", err)
	}
	must(t, tk.Prune(ctx))
	keys, err = store.ListSigningKeys(ctx)
	must(t, err)
	if len(keys) != 1 || !keys[0].RetiredAt.IsZero() {
		t.Fatalf("keys after Prune = %+v, want only the active key", keys)
	}
}

// reSign signs a fresh copy of tok's claims (valid times) with a stored key.
func reSign(t *testing.T, k auth.SigningKey, tok string, now time.Time) string {
	t.Helper()
	priv, err := x509ParseEd25519(k.PrivateKey)
	must(t, err)
	claims := jwt.MapClaims(decodeSegment(t, tok, 1))
	claims["iat"], claims["nbf"], claims["exp"] = now.Unix(), now.Unix(), now.Add(time.Minute).Unix()
	j := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	j.Header["kid"] = k.ID
	s, err := j.SignedString(priv)
	must(t, err)
	return s
}
