package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// accessEntries covers what reaches an access line: plain values, values
// slog quotes (spaces, '=', empty), values it escapes (quotes,
// backslashes, control bytes, non-ASCII, HTML characters in JSON), and
// durations of every unit.
func accessEntries() []accessEntry {
	t0 := time.Date(2026, 12, 5, 5, 16, 36, 123456789, time.UTC)
	base := accessEntry{end: t0, method: "GET", path: "/v2/library/app/manifests/latest", status: 200,
		bytesIn: 0, bytesOut: 1234, duration: 1234567 * time.Nanosecond, remote: "127.0.0.1:43210",
		userAgent: "docker/27.3.1 go/go1.22.7 git-commit/41ca978 os/linux arch/amd64"}
	var out []accessEntry
	add := func(f func(e *accessEntry)) {
		e := base
		f(&e)
		out = append(out, e)
	}
	add(func(*accessEntry) {})
	add(func(e *accessEntry) { e.userAgent = "" })
	add(func(e *accessEntry) { e.userAgent = "Go-http-client/1.1" })
	add(func(e *accessEntry) { e.userAgent = `say "hi"` })
	add(func(e *accessEntry) { e.userAgent = `back\slash` })
	add(func(e *accessEntry) { e.userAgent = "a=b" })
	add(func(e *accessEntry) { e.userAgent = "tab\there" })
	add(func(e *accessEntry) { e.userAgent = "café" })
	add(func(e *accessEntry) { e.userAgent = "<script>&" })
	add(func(e *accessEntry) { e.path = "/v2/a b/manifests/x%20y" })
	add(func(e *accessEntry) { e.path = "/v2/\xff/bad" })
	add(func(e *accessEntry) { e.remote = "[::1]:5000" })
	add(func(e *accessEntry) { e.status, e.bytesIn, e.bytesOut = 404, -1, 0 })
	add(func(e *accessEntry) { e.end = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 5*3600+1800)) })
	add(func(e *accessEntry) { e.end = t0.Add(999 * time.Microsecond) })
	add(func(e *accessEntry) { e.end = t0.Add(876 * time.Millisecond) }) // same second: the cached one
	add(func(e *accessEntry) { e.end = t0.Add(time.Second) })
	add(func(e *accessEntry) { e.end = t0.In(time.FixedZone("Y", -3600)) }) // same second, another zone
	for _, d := range []time.Duration{0, 1, 999, 1500 * time.Nanosecond, 12 * time.Millisecond, 3 * time.Second, 2*time.Hour + time.Nanosecond} {
		add(func(e *accessEntry) { e.duration = d })
	}
	return out
}

// TestAccessLine_MatchesSlog: the access log's own formatter writes
// exactly what slog's text and JSON handlers write for the same record,
// and leaves to slog every line with a value slog would escape.
func TestAccessLine_MatchesSlog(t *testing.T) {
	for _, json := range []bool{false, true} {
		for _, id := range []string{"", "0123456789abcdef01234567"} {
			fastLines := 0
			for i, e := range accessEntries() {
				var want bytes.Buffer
				var h slog.Handler
				if json {
					h = slog.NewJSONHandler(&want, nil)
				} else {
					h = slog.NewTextHandler(&want, nil)
				}
				ctx := context.Background()
				if id != "" {
					ctx = withRequestID(ctx, id)
				}
				if err := WithRequestID(h).Handle(ctx, e.record()); err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				lh := NewLogHandler(&got, json, slog.LevelInfo)
				if !lh.writeAccess(ctx, e) {
					// Left to slog: the middleware then calls Handle.
					if err := lh.Handle(ctx, e.record()); err != nil {
						t.Fatal(err)
					}
				} else {
					fastLines++
				}
				if got.String() != want.String() {
					t.Errorf("json=%v id=%q entry %d:\n got  %s want %s", json, id, i, got.String(), want.String())
				}
			}
			if fastLines < 15 {
				t.Errorf("json=%v: only %d lines took the fast path", json, fastLines)
			}
		}
	}
}

// TestAccessLog_ThroughMiddleware: a request through accessLog with the
// serve command's handler (behind FlushAtWarn, as wharf serve has it)
// logs one line with the request's fields, formatted by the fast path.
func TestAccessLog_ThroughMiddleware(t *testing.T) {
	var out bytes.Buffer
	buf := NewLogBuffer(&out, time.Hour)
	log := slog.New(FlushAtWarn(NewLogHandler(buf, false, slog.LevelInfo), buf))
	h := requestID(accessLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("hello"))
	}), log))
	req := httptest.NewRequest(http.MethodPut, "/v2/a/manifests/b", strings.NewReader("body!"))
	req.Header.Set("User-Agent", "test agent")
	req.Header.Set("X-Request-Id", "rid-1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if err := buf.Close(); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	for _, want := range []string{" level=INFO msg=request method=PUT path=/v2/a/manifests/b status=201 bytes_in=5 bytes_out=5 duration=",
		` remote=192.0.2.1:1234 user_agent="test agent" request_id=rid-1` + "\n"} {
		if !strings.Contains(line, want) {
			t.Errorf("access line %q lacks %q", line, want)
		}
	}
	if !strings.HasPrefix(line, "time=") || strings.Count(line, "\n") != 1 {
		t.Errorf("access line %q: want one line starting with time=", line)
	}
}

// TestAccessLog_Allocations: formatting and writing an access line
// allocates nothing; the middleware's only allocation is its response
// recorder (slog's record path added more).
func TestAccessLog_Allocations(t *testing.T) {
	lh := NewLogHandler(io.Discard, false, slog.LevelInfo)
	e := accessEntries()[0]
	ctx := withRequestID(context.Background(), "0123456789abcdef01234567")
	if n := testing.AllocsPerRun(200, func() { lh.writeAccess(ctx, e) }); n != 0 {
		t.Errorf("writeAccess: %.0f allocations per line, want 0", n)
	}
	log := slog.New(lh)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	h := accessLog(next, log)
	req := httptest.NewRequest(http.MethodGet, "/v2/a/manifests/latest", nil)
	req.Body = nil
	w := httptest.NewRecorder()
	bare := testing.AllocsPerRun(200, func() { next.ServeHTTP(w, req) })
	logged := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) })
	// The recorder wrapping the ResponseWriter (the body counter is the
	// request's from the first run on). slog's record path added one more.
	if extra := logged - bare; extra > 1 {
		t.Errorf("access log: %.0f allocations per request, want ≤ 1", extra)
	}
}

// BenchmarkAccessLine compares one access line through slog's text handler
// (what wharf did) with the access log's own formatter, both with the
// request id, both to io.Discard.
func BenchmarkAccessLine(b *testing.B) {
	e := accessEntries()[0]
	ctx := withRequestID(context.Background(), "0123456789abcdef01234567")
	b.Run("slog", func(b *testing.B) {
		h := WithRequestID(slog.NewTextHandler(io.Discard, nil))
		b.ReportAllocs()
		for b.Loop() {
			e.end = time.Now()
			_ = h.Handle(ctx, e.record())
		}
	})
	b.Run("wharf", func(b *testing.B) {
		h := NewLogHandler(io.Discard, false, slog.LevelInfo)
		b.ReportAllocs()
		for b.Loop() {
			e.end = time.Now()
			if !h.writeAccess(ctx, e) {
				b.Fatal("not written")
			}
		}
	})
}
