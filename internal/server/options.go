package server

import (
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/proxy"
)

// Option adjusts what New and OpenRegistry build, beyond the
// configuration: things a test needs and an operator never sets.
type Option func(*options)

type options struct {
	now            func() time.Time
	passwordParams auth.PasswordParams
	afterFunc      func(time.Duration, func()) proxy.Timer
	uploadKey      []byte
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

// WithAfterFunc starts the mirror's idle timers with afterFunc instead of
// time.AfterFunc, so that a test fires a timeout instead of waiting it out.
func WithAfterFunc(afterFunc func(d time.Duration, f func()) proxy.Timer) Option {
	return func(o *options) { o.afterFunc = afterFunc }
}

// WithUploadKey gives the server its secret key (32 bytes), which lets a
// POST open an upload session without a database write
// (registry.Options.UploadKey). Without it every session is recorded.
func WithUploadKey(key []byte) Option { return func(o *options) { o.uploadKey = key } }

func newOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}
