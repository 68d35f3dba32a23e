package replicate

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// RuleStats counts what this process did for one rule since it started;
// the status every replica shares is the rule's, in the database.
type RuleStats struct {
	// Done and Failed count the task attempts that succeeded and failed
	// (a failure is retried, or given up to the reconcile).
	Done, Failed int64
	// Bytes counts what was sent to the destination: the blobs and
	// manifests uploaded. A blob mounted, or one the destination had,
	// costs nothing.
	Bytes int64
}

type ruleCounters struct{ done, failed, bytes atomic.Int64 }

// stats holds a Service's counters by rule ID.
type stats struct {
	mu    sync.Mutex
	rules map[int64]*ruleCounters
}

func (st *stats) of(id int64) *ruleCounters {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.rules == nil {
		st.rules = map[int64]*ruleCounters{}
	}
	c := st.rules[id]
	if c == nil {
		c = &ruleCounters{}
		st.rules[id] = c
	}
	return c
}

// Stats returns this process's counts by rule ID, for the rules it has
// worked on.
func (s *Service) Stats() map[int64]RuleStats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := make(map[int64]RuleStats, len(s.stats.rules))
	for id, c := range s.stats.rules {
		out[id] = RuleStats{Done: c.done.Load(), Failed: c.failed.Load(), Bytes: c.bytes.Load()}
	}
	return out
}

// countingTransport counts the request bytes next sends.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req = req.Clone(req.Context())
		req.Body = &countingBody{ReadCloser: req.Body, n: t.n}
	}
	return t.next.RoundTrip(req)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
