package server

import (
	"time"

	"github.com/wharf/wharf/internal/auth"
)

// Option adjusts what New and OpenRegistry build, beyond the
// configuration: things a test needs and an operator never sets.
type Option func(*options)

type options struct {
	now            func() time.Time
	passwordParams auth.PasswordParams
}

// WithClock makes the server read the time from now instead of time.Now:
// token and login expiry, recorded push and link times, and garbage
// collection's grace period. Tests move such a clock instead of sleeping.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithPasswordParams sets the argon2id costs of the passwords the server
// hashes. Tests that create accounts by the dozen use a cheap setting: at
// the production cost (19 MiB, two passes) hashing is most of their time.
func WithPasswordParams(p auth.PasswordParams) Option {
	return func(o *options) { o.passwordParams = p }
}

func newOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}
