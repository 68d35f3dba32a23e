package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/wharf/wharf/internal/distribution"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDFrom returns the id middleware gave the request, if any.
func RequestIDFrom(ctx context.Context) string {
	if c, ok := ctx.Value(requestIDKey).(*idContext); ok {
		return c.id
	}
	return ""
}

// idContext carries a request's id, and the header value that echoes it,
// in one allocation: context.WithValue and a []string for the header were
// two more on every request.
type idContext struct {
	context.Context
	id  string
	hdr [1]string
}

// Value answers requestIDKey with the idContext itself (a pointer, so the
// answer is not boxed anew on each call) and asks the parent otherwise.
func (c *idContext) Value(key any) any {
	if key == requestIDKey {
		return c
	}
	return c.Context.Value(key)
}

// withRequestID returns ctx carrying request id id.
func withRequestID(ctx context.Context, id string) *idContext {
	return &idContext{Context: ctx, id: id, hdr: [1]string{id}}
}

// requestState is a request's id context and the recorder that the access
// log and metrics read (observe finds it in place of making its own), in
// one allocation instead of two on every request.
type requestState struct {
	idContext
	rec responseRecorder
}

// requestID gives each request an id (a sane incoming X-Request-Id is
// kept, so ids follow a request through proxies) and echoes it back.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Canonical keys used directly: Get and Set would canonicalise them
		// on every request (and Set allocate the result).
		var id string
		if v := r.Header["X-Request-Id"]; len(v) > 0 {
			id = v[0]
		}
		if !saneID(id) {
			id = newRequestID()
		}
		st := &requestState{idContext: idContext{Context: r.Context(), id: id, hdr: [1]string{id}}}
		st.rec.ResponseWriter = w
		w.Header()["X-Request-Id"] = st.hdr[:]
		next.ServeHTTP(&st.rec, r.WithContext(&st.idContext))
	})
}

// newRequestID returns 24 random hex digits. Request ids only need to be
// unique, not secret: math/rand/v2's generator (ChaCha8, seeded by the
// runtime) gives that for a fraction of crypto/rand's system call.
func newRequestID() string {
	var b [24]byte
	x, y := rand.Uint64(), rand.Uint32()
	for i := range 16 {
		b[i] = hexDigits[x>>(60-4*i)&0xf]
	}
	for i := range 8 {
		b[16+i] = hexDigits[y>>(28-4*i)&0xf]
	}
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// recoverPanics turns a panic into a 500 in the spec's error format.
func recoverPanics(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				distribution.WriteError(w, r, log, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// accessLog writes one line per request.
func accessLog(next http.Handler, log *slog.Logger) http.Handler { return observe(next, log, nil) }

// observe writes one access-log line per request and, when m is set,
// counts the request in the metrics. One middleware does both so that a
// request pays for one response recorder and two clock reads, not one
// recorder and four clock reads in two layers: on a manifest GET by tag,
// the hottest path, the clock alone was about a twentieth of wharf's CPU.
func observe(next http.Handler, log *slog.Logger, m *metrics) http.Handler {
	h := log.Handler()
	fast, _ := h.(accessWriter)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var route string
		if m != nil {
			route = routeLabel(r.URL.Path)
			if uploadBody(r.Method, route) {
				m.uploading.Inc()
				defer m.uploading.Dec()
			}
		}
		start := time.Now()
		rec := recordResponse(w)
		body := countBody(r)
		next.ServeHTTP(rec, r)
		end := time.Now()
		status := rec.status()
		if m != nil {
			method := methodLabel(r.Method)
			m.seriesFor(route, method).observe(m, route, method, status, end.Sub(start), body.n, rec.bytes)
		}
		ctx := r.Context()
		if !h.Enabled(ctx, slog.LevelInfo) {
			return
		}
		e := accessEntry{end: end, method: r.Method, path: r.URL.Path, status: status, bytesIn: body.n,
			bytesOut: rec.bytes, duration: end.Sub(start), remote: r.RemoteAddr, userAgent: firstValue(r.Header["User-Agent"])}
		if fast != nil && fast.writeAccess(ctx, e) {
			return
		}
		// The record goes to the handler directly rather than through
		// Logger.LogAttrs, which captures the caller's PC with
		// runtime.Callers on every call (about 2% of a manifest GET's CPU)
		// for a source location that wharf's handlers never print
		// (AddSource is off) and that would always be this line.
		_ = h.Handle(ctx, e.record())
	})
}

// firstValue is a header's first value, or "". Reading the map with the
// canonical key directly spares the key's canonicalisation that Header.Get
// (and Request.UserAgent) repeat on every request.
func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// authSeam is where authentication and authorisation will decide who may
// do what; for now every request passes.
func authSeam(next http.Handler) http.Handler { return next }

// newSlots returns a pool of max concurrency slots for limitConcurrency;
// nil (no limit) when max is 0.
func newSlots(max int) chan struct{} {
	if max <= 0 {
		return nil
	}
	return make(chan struct{}, max)
}

// limitConcurrency answers TOOMANYREQUESTS when every slot of the pool is
// taken. Handlers wrapped with the same pool share its slots.
func limitConcurrency(next http.Handler, slots chan struct{}, log *slog.Logger) http.Handler {
	if slots == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			next.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			if r.ContentLength != 0 && r.ProtoMajor == 1 {
				// Answer first, then close: net/http would otherwise
				// read what is left of a body the refusal never reads
				// (up to 256 KiB) before it sends the answer, so a
				// client that stalls would wait for its 429 until the
				// idle cutoff. After the answer, the server may still
				// read up to 256 KiB (or wait out that cutoff) before
				// it closes, so that the close does not reset the
				// connection under an answer not yet read. (HTTP/2
				// resets the stream instead; there the header would
				// close the client's other streams' connection.)
				w.Header().Set("Connection", "close")
			}
			distribution.WriteError(w, r, log, distribution.NewError(distribution.CodeTooManyRequests,
				fmt.Sprintf("the registry is serving %d requests of this kind; retry shortly", cap(slots))))
		}
	})
}

// responseRecorder notes the status and bytes written. It passes ReadFrom
// through, so that a body copied that way keeps net/http's own copy.
type responseRecorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func recordResponse(w http.ResponseWriter) *responseRecorder {
	if rec, ok := w.(*responseRecorder); ok {
		return rec
	}
	return &responseRecorder{ResponseWriter: w}
}

func (r *responseRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

func (r *responseRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *responseRecorder) ReadFrom(src io.Reader) (int64, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *responseRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// noBodyCount stands for the count of a request without a body. It is
// never read through (the request's body stays http.NoBody), so its n
// stays 0.
var noBodyCount countingBody

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// countBody wraps r.Body to count what is read, once however many
// middlewares ask.
func countBody(r *http.Request) *countingBody {
	if b, ok := r.Body.(*countingBody); ok {
		return b
	}
	if r.Body == nil || r.Body == http.NoBody {
		return &noBodyCount // nothing to count (GET, HEAD): no wrapper
	}
	b := &countingBody{ReadCloser: r.Body}
	r.Body = b
	return b
}
