package server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// WithRequestID wraps h so that every record logged with a request's
// context carries its request id.
func WithRequestID(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// LogBuffer is a log destination that gathers lines in memory and writes
// them out when its buffer fills, every interval, at a record of level
// Warn or above (see FlushAtWarn) and on Close. Without it the access log
// costs one write(2) per request, about a tenth of a manifest GET's CPU.
// The price: after a crash that kills the process outright, up to one
// interval of lines can be lost (the runtime writes its own panic report
// straight to the file descriptor, so that is never lost).
type LogBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewLogBuffer buffers writes to w and flushes them every interval.
func NewLogBuffer(w io.Writer, interval time.Duration) *LogBuffer {
	b := &LogBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(interval)
	return b
}

func (b *LogBuffer) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			_ = b.Flush()
		}
	}
}

// Write buffers p; slog handlers write one whole record per call.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what is buffered.
func (b *LogBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the periodic flush and flushes. Records logged after it are
// still buffered, and only written by a later Flush.
func (b *LogBuffer) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	return b.Flush()
}

// FlushAtWarn wraps h so that a record of level Warn or above is written
// out at once: warnings and errors are what someone may be waiting for.
func FlushAtWarn(h slog.Handler, b *LogBuffer) slog.Handler { return flushAtWarn{h, b} }

type flushAtWarn struct {
	slog.Handler
	b *LogBuffer
}

func (h flushAtWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		_ = h.b.Flush()
	}
	return err
}

// writeAccess passes access lines (level Info: no flush) to a handler that
// writes them itself.
func (h flushAtWarn) writeAccess(ctx context.Context, e accessEntry) bool {
	aw, ok := h.Handler.(accessWriter)
	return ok && aw.writeAccess(ctx, e)
}

func (h flushAtWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushAtWarn{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushAtWarn) WithGroup(name string) slog.Handler {
	return flushAtWarn{h.Handler.WithGroup(name), h.b}
}
