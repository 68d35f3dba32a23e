package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/wharf/wharf/internal/distribution"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDFrom returns the id middleware gave the request, if any.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// requestID gives each request an id (a sane incoming X-Request-Id is
// kept, so ids follow a request through proxies) and echoes it back.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !saneID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

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
func accessLog(next http.Handler, log *slog.Logger) http.Handler {
	h := log.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := recordResponse(w)
		body := countBody(r)
		next.ServeHTTP(rec, r)
		ctx := r.Context()
		if !h.Enabled(ctx, slog.LevelInfo) {
			return
		}
		// The record goes to the handler directly rather than through
		// Logger.LogAttrs, which captures the caller's PC with
		// runtime.Callers on every call (about 2% of a manifest GET's CPU)
		// for a source location that wharf's handlers never print
		// (AddSource is off) and that would always be this line.
		end := time.Now()
		line := slog.NewRecord(end, slog.LevelInfo, "request", 0)
		line.AddAttrs(
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status()),
			slog.Int64("bytes_in", body.n),
			slog.Int64("bytes_out", rec.bytes),
			slog.Duration("duration", end.Sub(start)),
			slog.String("remote", r.RemoteAddr),
			slog.String("user_agent", r.UserAgent()),
		)
		_ = h.Handle(ctx, line)
	})
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
			distribution.WriteError(w, r, log, distribution.NewError(distribution.CodeTooManyRequests,
				fmt.Sprintf("the registry is serving %d requests of this kind; retry shortly", cap(slots))))
		}
	})
}

// responseRecorder notes the status and bytes written. It passes ReadFrom
// through so that blob downloads keep using sendfile.
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
	b := &countingBody{ReadCloser: r.Body}
	r.Body = b
	return b
}
