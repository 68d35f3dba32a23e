package server

import (
	"io"
	"net/http"
	"time"
)

// cutIdleBodies cuts off a request whose body sends nothing for idle. A
// client that stops sending would otherwise hold its handler's goroutine,
// buffers, concurrency slot and (for an upload) the session's lock for as
// long as the connection stays open. http.Server's ReadTimeout cannot do
// this: it bounds the whole request, so it would also cut off a large
// upload that is making progress.
//
// The handler sees the cut as a failed read (and its context is
// cancelled), as when the client goes away; an upload session keeps what
// it had recorded before the request and can be resumed from there.
func cutIdleBodies(next http.Handler, idle time.Duration) http.Handler {
	if idle <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b := &idleBody{ReadCloser: r.Body, rc: http.NewResponseController(w), idle: idle}
		r.Body = b
		next.ServeHTTP(w, r)
		b.handlerDone()
	})
}

// idleBody moves the connection's read deadline out as the body arrives.
type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	// renewed is when the deadline was last moved out.
	renewed time.Time
	// ended is set once a read failed or hit the end. From then on the
	// server reads the connection itself, to notice the client leaving, and
	// a deadline set now would cut that read and cancel the request.
	ended bool
	// unsupported: the connection takes no deadlines (a test recorder).
	unsupported bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.ended && !b.unsupported {
		// Moving the deadline costs a timer update; do it when an eighth of
		// idle has passed, and add that eighth, so that a body is never cut
		// off less than idle after it last sent something.
		if now := time.Now(); now.Sub(b.renewed) >= b.idle/8 {
			if err := b.rc.SetReadDeadline(now.Add(b.idle + b.idle/8)); err != nil {
				b.unsupported = true
			} else {
				b.renewed = now
			}
		}
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.ended = true
	}
	return n, err
}

// handlerDone bounds what follows the handler: a body it did not read to
// the end is still arriving, and the server reads (and discards) some of
// it before the connection can take its next request.
func (b *idleBody) handlerDone() {
	if !b.ended && !b.unsupported {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
}
