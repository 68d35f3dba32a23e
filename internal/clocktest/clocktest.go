// Package clocktest is a clock that tests move by hand, for the time
// sources wharf's constructors take (sqldb.WithClock, registry.Options.Now,
// server.WithClock, auth's Now), so that no test sleeps for time to pass.
// It imports nothing of wharf, so any package's tests may use it.
package clocktest

import (
	"sync"
	"time"
)

// Clock is safe for concurrent use: servers read it while tests move it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock set to the current time.
func New() *Clock { return At(time.Now()) }

// At returns a Clock set to t.
func At(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
