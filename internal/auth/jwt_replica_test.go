package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

// countingKeys counts the reads of the signing keys of a real store.
type countingKeys struct {
	auth.Store
	lists atomic.Int32
}

func (c *countingKeys) ListSigningKeys(ctx context.Context) ([]auth.SigningKey, error) {
	c.lists.Add(1)
	return c.Store.ListSigningKeys(ctx)
}

// A replica that loaded its keys before another replica rotated verifies
// the new key's tokens at once, without waiting for its periodic reload.
func TestTokens_KeyAnotherReplicaCreatedVerifiesAtOnce(t *testing.T) {
	c := newClock()
	ctx := t.Context()
	rotating, store := newTokens(t, c, "")
	counted := &countingKeys{Store: store}
	replica, err := auth.NewTokens(ctx, counted, auth.TokenConfig{Issuer: "wharf", Service: "registry.test", Now: c.Now})
	must(t, err)
	c.Advance(time.Minute)
	must(t, rotating.Rotate(ctx))
	fresh, err := rotating.Issue("alice", "", pullAliceApp)
	must(t, err)
	if _, err := replica.Verify(ctx, fresh.Token); err != nil {
		t.Fatalf("the other replica verifies a token of the new key: %v", err)
	}

	// A token naming a key nobody has costs at most one reload a second.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	must(t, err)
	forged := reSign(t, auth.SigningKey{ID: "made-up", PrivateKey: der}, fresh.Token, c.Now())
	c.Advance(2 * time.Second)
	before := counted.lists.Load()
	for range 5 {
		if _, err := replica.Verify(ctx, forged); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("Verify of a token by an unknown key = %v, want ErrInvalidToken", err)
		}
	}
	if n := counted.lists.Load() - before; n != 1 {
		t.Fatalf("5 tokens by an unknown key within a second reloaded the keys %d times, want 1", n)
	}
	c.Advance(time.Second)
	_, _ = replica.Verify(ctx, forged)
	if n := counted.lists.Load() - before; n != 2 {
		t.Fatalf("a second later: %d reloads, want 2", n)
	}
}
