package auth

import (
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

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

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
	// MaxKeys bounds memory; the stalest entries go first (default 100000).
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Limiter blocks keys (an account, a client address) with exponential
// back-off after repeated failures. It is in memory: each replica limits
// on its own, which bounds guessing to replicas × the per-replica rate.
type Limiter struct {
	cfg  LimiterConfig
	mu   sync.Mutex
	keys map[string]*failures
}

type failures struct {
	count int
	last  time.Time
	until time.Time
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
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, keys: map[string]*failures{}}
}

// Allow returns a *RateLimitError if any of keys is blocked now.
func (l *Limiter) Allow(keys ...string) error {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if f, ok := l.keys[k]; ok && now.Before(f.until) {
			wait = max(wait, f.until.Sub(now))
		}
	}
	if wait > 0 {
		return &RateLimitError{RetryAfter: wait}
	}
	return nil
}

// Fail records a failure for each key and blocks those past the free
// allowance for Base × 2^(failures beyond it), capped at Max.
func (l *Limiter) Fail(keys ...string) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		f, ok := l.keys[k]
		if !ok || now.Sub(f.last) > l.cfg.Forget {
			if !ok && len(l.keys) >= l.cfg.MaxKeys {
				l.prune(now)
			}
			f = &failures{}
			l.keys[k] = f
		}
		f.count++
		f.last = now
		if over := f.count - l.cfg.Free; over > 0 {
			d := l.cfg.Max
			if over <= 30 {
				d = min(l.cfg.Base<<(over-1), l.cfg.Max)
			}
			f.until = now.Add(d)
		}
	}
}

// Succeed forgets the failures of keys.
func (l *Limiter) Succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.keys, k)
	}
}

// prune drops forgotten entries, or if none, the stalest tenth.
func (l *Limiter) prune(now time.Time) {
	for k, f := range l.keys {
		if now.Sub(f.last) > l.cfg.Forget && now.After(f.until) {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < l.cfg.MaxKeys {
		return
	}
	cut := now.Add(-l.cfg.Forget / 10)
	for k, f := range l.keys {
		if f.last.Before(cut) || len(l.keys) >= l.cfg.MaxKeys {
			delete(l.keys, k)
		}
		if len(l.keys) < l.cfg.MaxKeys*9/10 {
			return
		}
	}
}
