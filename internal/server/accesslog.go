package server

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// LogHandler is the slog handler wharf serve logs with: slog's text or
// JSON handler with the request id added (see WithRequestID). It also
// writes the access log's lines itself, byte for byte as slog would, but
// without slog's per-record work (a Record with eight attributes, an
// interface call per attribute, a pooled state): that was about a tenth of
// a manifest GET's CPU. Lines with a value that slog would escape go
// through slog as usual.
type LogHandler struct {
	slog.Handler
	w     io.Writer
	json  bool
	level slog.Leveler
}

// NewLogHandler logs records of level or above to w, as JSON when json is
// set and as slog's text format otherwise.
func NewLogHandler(w io.Writer, json bool, level slog.Leveler) *LogHandler {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if json {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	if level == nil {
		level = slog.LevelInfo
	}
	return &LogHandler{Handler: WithRequestID(h), w: w, json: json, level: level}
}

// WithAttrs and WithGroup return plain slog handlers: the access line
// writer knows no attributes or groups but its own.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.Handler.WithAttrs(attrs) }

// WithGroup: see WithAttrs.
func (h *LogHandler) WithGroup(name string) slog.Handler { return h.Handler.WithGroup(name) }

// accessEntry is one access-log line's fields, in the order they appear.
type accessEntry struct {
	end       time.Time
	method    string
	path      string
	status    int
	bytesIn   int64
	bytesOut  int64
	duration  time.Duration
	remote    string
	userAgent string
}

// record is the entry as a slog record, for handlers that format it.
func (e *accessEntry) record() slog.Record {
	line := slog.NewRecord(e.end, slog.LevelInfo, "request", 0)
	line.AddAttrs(
		slog.String("method", e.method),
		slog.String("path", e.path),
		slog.Int("status", e.status),
		slog.Int64("bytes_in", e.bytesIn),
		slog.Int64("bytes_out", e.bytesOut),
		slog.Duration("duration", e.duration),
		slog.String("remote", e.remote),
		slog.String("user_agent", e.userAgent),
	)
	return line
}

// accessWriter is a handler that can write an access line itself; false
// means it did not, and the line should go through Handle.
type accessWriter interface {
	writeAccess(ctx context.Context, e accessEntry) bool
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *LogHandler) writeAccess(ctx context.Context, e accessEntry) bool {
	bp := lineBufs.Get().(*[]byte)
	defer lineBufs.Put(bp)
	var b []byte
	var ok bool
	if h.json {
		b, ok = appendAccessJSON((*bp)[:0], &e, RequestIDFrom(ctx))
	} else {
		b, ok = appendAccessText((*bp)[:0], &e, RequestIDFrom(ctx))
	}
	if !ok {
		return false
	}
	*bp = b
	_, _ = h.w.Write(b)
	return true
}

// What slog's text format does with a byte of a value: nothing, quote the
// value (space, '='), or escape it (quotes, backslashes, control bytes, and
// anything not ASCII, which this writer leaves to slog).
const (
	textPlain = iota
	textQuote
	textEscape
)

var textClass, jsonEscape = func() (t [256]uint8, j [256]bool) {
	for c := range 256 {
		switch {
		case c <= ' ' && c != ' ' || c >= 0x7f || c == '"' || c == '\\':
			t[c] = textEscape
		case c == ' ' || c == '=':
			t[c] = textQuote
		}
		j[c] = c < ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&'
	}
	return t, j
}()

// appendAccessText formats e as slog's TextHandler does, or reports false
// when a value holds a byte that slog would escape.
func appendAccessText(b []byte, e *accessEntry, id string) ([]byte, bool) {
	b = append(b, "time="...)
	b = appendTextTime(b, e.end.Round(0))
	b = append(b, " level=INFO msg=request method="...)
	ok := true
	str := func(s string) {
		quote := s == ""
		for i := 0; i < len(s); i++ {
			switch textClass[s[i]] {
			case textQuote:
				quote = true
			case textEscape:
				ok = false
			}
		}
		if quote {
			b = append(b, '"')
			b = append(b, s...)
			b = append(b, '"')
		} else {
			b = append(b, s...)
		}
	}
	str(e.method)
	b = append(b, " path="...)
	str(e.path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, " bytes_in="...)
	b = strconv.AppendInt(b, e.bytesIn, 10)
	b = append(b, " bytes_out="...)
	b = strconv.AppendInt(b, e.bytesOut, 10)
	b = append(b, " duration="...)
	b = appendDuration(b, e.duration)
	b = append(b, " remote="...)
	str(e.remote)
	b = append(b, " user_agent="...)
	str(e.userAgent)
	if id != "" {
		b = append(b, " request_id="...)
		str(id)
	}
	return append(b, '\n'), ok
}

// appendAccessJSON formats e as slog's JSONHandler does, or reports false
// when a value holds a byte that slog would escape.
func appendAccessJSON(b []byte, e *accessEntry, id string) ([]byte, bool) {
	b = append(b, `{"time":"`...)
	b = e.end.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","method":`...)
	ok := true
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			if jsonEscape[s[i]] {
				ok = false
			}
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	str(e.method)
	b = append(b, `,"path":`...)
	str(e.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.bytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.bytesOut, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(e.duration), 10)
	b = append(b, `,"remote":`...)
	str(e.remote)
	b = append(b, `,"user_agent":`...)
	str(e.userAgent)
	if id != "" {
		b = append(b, `,"request_id":`...)
		str(id)
	}
	if y := e.end.Year(); y < 0 || y >= 10000 {
		ok = false // slog reports an error in the line instead
	}
	return append(b, "}\n"...), ok
}

// appendRFC3339Millis is slog's text time format: RFC 3339 with exactly
// three digits of milliseconds (as log/slog formats it).
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// textSecond caches the formatted second of the last access line: most
// lines fall in the same second as the one before, and formatting a time
// is a good part of a line's cost.
type textSecond struct {
	unix int64
	loc  *time.Location
	head []byte // "2006-01-02T15:04:05."
	zone []byte // "Z07:00" as formatted
}

var lastSecond atomic.Pointer[textSecond]

// appendTextTime is appendRFC3339Millis, from the cached second when it
// can be.
func appendTextTime(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	c := lastSecond.Load()
	if c == nil || c.unix != sec || c.loc != loc {
		full := appendRFC3339Millis(nil, t.Truncate(time.Second))
		const head = len("2006-01-02T15:04:05.")
		c = &textSecond{unix: sec, loc: loc, head: full[:head], zone: full[head+3:]}
		lastSecond.Store(c)
	}
	ms := t.Nanosecond() / 1e6
	b = append(b, c.head...)
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, c.zone...)
}

// appendDuration appends d as slog's text format does (d.String()).
func appendDuration(b []byte, d time.Duration) []byte { return append(b, d.String()...) }
