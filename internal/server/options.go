package server

import "time"

// Option adjusts what New and OpenRegistry build, beyond the
// configuration: things a test needs and an operator never sets.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock makes the server read the time from now instead of time.Now:
// token and login expiry, recorded push and link times, and garbage
// collection's grace period. Tests move such a clock instead of sleeping.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func newOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	return o
}
