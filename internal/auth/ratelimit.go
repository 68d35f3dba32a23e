package auth

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RateLimitError is returned while a key is blocked after failed logins.
// errors.Is(err, ErrRateLimited) holds; the server answers 429
// TOOMANYREQUESTS with Retry-After.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry after %s", ErrRateLimited, e.RetryAfter.Round(time.Second))
}

// RetryAfterSeconds is RetryAfter as a Retry-After header gives it: in
// whole seconds, rounded up, so that a client that waits as told is not
// refused again.
func (e *RateLimitError) RetryAfterSeconds() int {
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// LoginFailure is one key's count of consecutive failed logins.
type LoginFailure struct {
	Count int
	Last  time.Time // the latest failure
}

// FailureStore keeps failed-login counters. The metadata database keeps
// them for a server, so that replicas sharing it share the counters: a
// guesser who sends each try to another replica gets no more tries than
// on one.
type FailureStore interface {
	// LoginFailures returns the counters of those of keys that have one.
	LoginFailures(ctx context.Context, keys []string) (map[string]LoginFailure, error)
	// AddLoginFailure counts one failure of key at now, atomically, counting
	// from zero if the previous one was before forgetBefore; it returns the
	// updated counter.
	AddLoginFailure(ctx context.Context, key string, now, forgetBefore time.Time) (LoginFailure, error)
	// ClearLoginFailures deletes the counters of keys; missing ones are no
	// error.
	ClearLoginFailures(ctx context.Context, keys []string) error
	// PruneLoginFailures deletes the counters whose latest failure is
	// before before, and returns how many it deleted.
	PruneLoginFailures(ctx context.Context, before time.Time) (int64, error)
}

// LimiterConfig tunes a Limiter. Zero fields take the defaults.
type LimiterConfig struct {
	// Free is how many consecutive failures pass without delay (default 5).
	Free int
	// Base is the first block; each further failure doubles it (default 1s).
	Base time.Duration
	// Max caps the block (default 15 minutes).
	Max time.Duration
	// Forget drops a key's failures after this long without one
	// (default 1 hour).
	Forget time.Duration
	// Store keeps the counters (default: in this process's memory, at most
	// 100000 keys).
	Store FailureStore
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limiter blocks keys (an account, a client address) with exponential
// back-off after repeated failures. Its counters live in its Store, so
// limiters on one shared store limit together.
type Limiter struct {
	cfg LimiterConfig
}

// NewLimiter returns a Limiter with cfg's zero fields defaulted.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.Free <= 0 {
		cfg.Free = 5
	}
	if cfg.Base <= 0 {
		cfg.Base = time.Second
	}
	if cfg.Max <= 0 {
		cfg.Max = 15 * time.Minute
	}
	if cfg.Forget <= 0 {
		cfg.Forget = time.Hour
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryFailureStore(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg}
}

// Allow returns a *RateLimitError if any of keys is blocked now.
func (l *Limiter) Allow(ctx context.Context, keys ...string) error {
	recs, err := l.cfg.Store.LoginFailures(ctx, keys)
	if err != nil {
		return fmt.Errorf("read login failures: %w", err)
	}
	if wait := l.wait(recs, keys, l.cfg.Now()); wait > 0 {
		return &RateLimitError{RetryAfter: wait}
	}
	return nil
}

// wait is how long the most blocked of keys stays blocked after now,
// given their counters recs.
func (l *Limiter) wait(recs map[string]LoginFailure, keys []string, now time.Time) time.Duration {
	var wait time.Duration
	for _, k := range keys {
		if f, ok := recs[k]; ok {
			wait = max(wait, l.blockedUntil(f).Sub(now))
		}
	}
	return wait
}

// blockedUntil is when a key with counter f may try again: the block
// starts at the latest failure and lasts Base × 2^(failures beyond the
// free allowance − 1), capped at Max.
func (l *Limiter) blockedUntil(f LoginFailure) time.Time {
	over := f.Count - l.cfg.Free
	if over <= 0 {
		return time.Time{}
	}
	d := l.cfg.Max
	if over <= 30 {
		d = min(l.cfg.Base<<(over-1), l.cfg.Max)
	}
	return f.Last.Add(d)
}

// Fail records a failure for each key; a key past the free allowance is
// blocked for Base × 2^(failures beyond it − 1), capped at Max.
func (l *Limiter) Fail(ctx context.Context, keys ...string) error {
	now := l.cfg.Now()
	for _, k := range keys {
		if _, err := l.cfg.Store.AddLoginFailure(ctx, k, now, now.Add(-l.cfg.Forget)); err != nil {
			return fmt.Errorf("count a login failure: %w", err)
		}
	}
	return nil
}

// Succeed forgets the failures of keys.
func (l *Limiter) Succeed(ctx context.Context, keys ...string) error {
	if err := l.cfg.Store.ClearLoginFailures(ctx, keys); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// keep is how long a counter matters after its latest failure: until it
// is forgotten and no longer blocks.
func (l *Limiter) keep() time.Duration { return max(l.cfg.Forget, l.cfg.Max) }

// memoryFailures is a FailureStore in one process's memory.
type memoryFailures struct {
	maxKeys int
	mu      sync.Mutex
	keys    map[string]LoginFailure
}

// NewMemoryFailureStore returns a FailureStore in this process's memory
// that holds at most maxKeys counters (0: 100000), dropping the stalest
// when full. It suits one process; replicas need a shared store.
func NewMemoryFailureStore(maxKeys int) FailureStore {
	if maxKeys <= 0 {
		maxKeys = 100000
	}
	return &memoryFailures{maxKeys: maxKeys, keys: map[string]LoginFailure{}}
}

func (m *memoryFailures) LoginFailures(_ context.Context, keys []string) (map[string]LoginFailure, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]LoginFailure{}
	for _, k := range keys {
		if f, ok := m.keys[k]; ok {
			out[k] = f
		}
	}
	return out, nil
}

func (m *memoryFailures) AddLoginFailure(_ context.Context, key string, now, forgetBefore time.Time) (LoginFailure, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.keys[key]
	if !ok && len(m.keys) >= m.maxKeys {
		m.prune(now, forgetBefore)
	}
	if !ok || f.Last.Before(forgetBefore) {
		f = LoginFailure{}
	}
	f.Count++
	f.Last = now
	m.keys[key] = f
	return f, nil
}

func (m *memoryFailures) ClearLoginFailures(_ context.Context, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.keys, k)
	}
	return nil
}

func (m *memoryFailures) PruneLoginFailures(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.keys)
	for k, f := range m.keys {
		if f.Last.Before(before) {
			delete(m.keys, k)
		}
	}
	return int64(n - len(m.keys)), nil
}

// prune makes room when the store is full: it drops forgotten counters,
// or if that is not enough, those without a failure in the latest tenth
// of the forget period, and then any, until a tenth of the room is free.
func (m *memoryFailures) prune(now, forgetBefore time.Time) {
	for k, f := range m.keys {
		if f.Last.Before(forgetBefore) {
			delete(m.keys, k)
		}
	}
	if len(m.keys) < m.maxKeys {
		return
	}
	cut := now.Add(-now.Sub(forgetBefore) / 10)
	for k, f := range m.keys {
		if f.Last.Before(cut) || len(m.keys) >= m.maxKeys {
			delete(m.keys, k)
		}
		if len(m.keys) < m.maxKeys*9/10 {
			return
		}
	}
}
