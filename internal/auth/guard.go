package auth

import (
	"context"
	"hash/fnv"
	"runtime"
	"sync"
	"time"
)

// Failed logins are limited on three keys. The pair (account, address)
// takes the strict allowance (Config.Limiter, 5 by default): it stops a
// guesser without locking the account's owner out from elsewhere. The
// account alone and the address alone take a wide allowance: they stop
// guessing spread over many addresses or many accounts, while one
// guesser behind a shared NAT or proxy cannot lock everyone out at once.
const wideFree = 30

func pairKey(user, addr string) string { return "pair:" + user + "\x00" + addr }
func accountKey(user string) string    { return "user:" + user }
func addrKey(addr string) string       { return "addr:" + addr }

// hashWait bounds how long a login waits for a hashing slot before it is
// answered "too many requests".
const hashWait = 2 * time.Second

// guard serialises password checks per account, so that concurrent
// guesses cannot all pass the limiter before the first failure is
// counted, and bounds how many argon2id hashes (19 MiB each) run at once,
// so that a flood of logins cannot exhaust memory.
type guard struct {
	stripes [64]sync.Mutex
	slots   chan struct{}
}

func newGuard() *guard {
	return &guard{slots: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
}

// lock serialises logins of user; it returns the unlock function.
func (g *guard) lock(user string) func() {
	h := fnv.New32a()
	h.Write([]byte(user))
	m := &g.stripes[h.Sum32()%uint32(len(g.stripes))]
	m.Lock()
	return m.Unlock
}

// slot waits for a hashing slot; it returns the release function, or a
// *RateLimitError if none frees up in time.
func (g *guard) slot(ctx context.Context) (func(), error) {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	case <-t.C:
		return nil, &RateLimitError{RetryAfter: time.Second}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
