package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/auth/authtest"
)

func TestMemoryFailureStore_Contract(t *testing.T) {
	authtest.RunFailures(t, func(t *testing.T) auth.FailureStore { return auth.NewMemoryFailureStore(0) })
}

// The back-off is the same whichever store keeps the counters.
func TestLimiter_BackOffCapsAndForgets(t *testing.T) {
	stores := map[string]func(t *testing.T) auth.FailureStore{
		"memory": func(*testing.T) auth.FailureStore { return auth.NewMemoryFailureStore(0) },
		"sqlite": func(t *testing.T) auth.FailureStore { return newStore(t) },
	}
	for name, newFailures := range stores {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			l := auth.NewLimiter(auth.LimiterConfig{Free: 1, Base: time.Second, Max: 8 * time.Second, Forget: time.Hour,
				Store: newFailures(t), Now: c.Now})
			wantWait := func(want time.Duration) {
				t.Helper()
				err := l.Allow(t.Context(), "k")
				var rl *auth.RateLimitError
				switch {
				case want == 0 && err != nil:
					t.Fatalf("Allow = %v, want nil", err)
				case want > 0 && (!errors.As(err, &rl) || rl.RetryAfter != want):
					t.Fatalf("Allow = %v, want retry after %s", err, want)
				}
			}
			must(t, l.Fail(t.Context(), "k"))
			wantWait(0)
			for _, want := range []time.Duration{1, 2, 4, 8, 8, 8} {
				must(t, l.Fail(t.Context(), "k"))
				wantWait(want * time.Second)
			}
			c.Advance(3 * time.Second)
			wantWait(5 * time.Second) // the block runs from the latest failure
			c.Advance(2 * time.Hour)
			wantWait(0)
			must(t, l.Fail(t.Context(), "k")) // forgotten: the count starts again within the allowance
			wantWait(0)
			must(t, l.Succeed(t.Context(), "k"))
			must(t, l.Fail(t.Context(), "k")) // forgiven: the first failure again
			wantWait(0)
		})
	}
}

// newReplicas returns two account services over one database, as two
// replicas of a server build them: the failed-login counters in it.
func newReplicas(t *testing.T) (a, b *auth.Service) {
	t.Helper()
	c := newClock()
	db := newStore(t)
	newReplica := func() *auth.Service {
		return auth.NewService(db, auth.Config{PasswordParams: cheap, Now: c.Now,
			Limiter: auth.NewLimiter(auth.LimiterConfig{Store: db, Now: c.Now})})
	}
	return newReplica(), newReplica()
}

// A guesser who sends every other try to the other replica is blocked
// after as many failures as on one: the strict (account, address)
// allowance, and the account-wide one over many addresses.
func TestService_ReplicasShareLoginBackOff(t *testing.T) {
	a, b := newReplicas(t)
	ctx := t.Context()
	must(t, a.AddUser(ctx, "alice", "alice-password", false))
	must(t, a.AddUser(ctx, "bob", "bob-password", false))
	replicas := []*auth.Service{a, b}
	for i := range 6 { // 5 free failures and the one that blocks
		if _, err := replicas[i%2].Authenticate(ctx, "alice", "wrong", "10.0.0.1"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("guess %d: %v, want unauthenticated", i+1, err)
		}
	}
	for i, s := range replicas {
		var rl *auth.RateLimitError
		if _, err := s.Authenticate(ctx, "alice", "alice-password", "10.0.0.1"); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
			t.Fatalf("replica %d after 6 failures shared by both: %v, want retry after 1s", i, err)
		}
	}
	for i := range 31 {
		_, _ = replicas[i%2].Authenticate(ctx, "bob", "wrong", fmt.Sprintf("10.1.0.%d", i))
	}
	for i, s := range replicas {
		if _, err := s.Authenticate(ctx, "bob", "bob-password", "10.2.0.1"); !errors.Is(err, auth.ErrRateLimited) {
			t.Fatalf("replica %d, account after 31 failures spread over addresses and replicas: %v, want rate limited", i, err)
		}
	}
}

// countingFailures counts the writes to a real store.
type countingFailures struct {
	auth.FailureStore
	writes atomic.Int32
}

func (c *countingFailures) AddLoginFailure(ctx context.Context, key string, now, forgetBefore time.Time) (auth.LoginFailure, error) {
	c.writes.Add(1)
	return c.FailureStore.AddLoginFailure(ctx, key, now, forgetBefore)
}

func (c *countingFailures) ClearLoginFailures(ctx context.Context, keys []string) error {
	c.writes.Add(1)
	return c.FailureStore.ClearLoginFailures(ctx, keys)
}

// A login costs a database write only when there are failures to forget.
func TestService_LoginWithoutFailuresWritesNothing(t *testing.T) {
	c := newClock()
	db := newStore(t)
	store := &countingFailures{FailureStore: db}
	s := auth.NewService(db, auth.Config{PasswordParams: cheap, Now: c.Now,
		Limiter: auth.NewLimiter(auth.LimiterConfig{Store: store, Now: c.Now})})
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	if _, err := s.Authenticate(ctx, "alice", "alice-password", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if n := store.writes.Load(); n != 0 {
		t.Fatalf("a login without failures wrote %d times, want 0", n)
	}
	_, _ = s.Authenticate(ctx, "alice", "wrong", "10.0.0.1")
	if n := store.writes.Load(); n != 3 {
		t.Fatalf("a failure wrote %d times, want 3 (pair, account, address)", n)
	}
	c.Advance(time.Minute) // past the remembered login
	if _, err := s.Authenticate(ctx, "alice", "alice-password", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	recs, err := db.LoginFailures(ctx, []string{"pair:alice\x0010.0.0.1", "user:alice", "addr:10.0.0.1"})
	must(t, err)
	if _, ok := recs["addr:10.0.0.1"]; len(recs) != 1 || !ok {
		t.Fatalf("after a login, counters %v; want only the address's (it is not forgiven)", recs)
	}
}

// Counters are pruned once forgotten and no longer blocking, not before.
func TestService_PruneLoginFailures(t *testing.T) {
	c := newClock()
	db := newStore(t)
	s := auth.NewService(db, auth.Config{PasswordParams: cheap, Now: c.Now,
		Limiter: auth.NewLimiter(auth.LimiterConfig{Store: db, Now: c.Now})})
	ctx := t.Context()
	for range 8 {
		_, _ = s.Authenticate(ctx, "mallory", "wrong", "10.0.0.9")
		c.Advance(time.Minute)
	}
	c.Advance(50 * time.Minute) // the last failure 51 minutes ago: not yet forgotten
	n, err := s.PruneLoginFailures(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("pruned %d counters within the forget period, want 0", n)
	}
	c.Advance(10 * time.Minute)
	n, err = s.PruneLoginFailures(ctx)
	must(t, err)
	if n != 3 {
		t.Fatalf("pruned %d counters after the forget period, want 3 (pair, account, address)", n)
	}
}
