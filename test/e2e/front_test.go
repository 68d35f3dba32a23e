//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// front is a loopback load balancer of the simplest kind: each request
// goes to the next replica in turn, whatever it belongs to, so that every
// upload session and token flow is spread over the replicas. It streams
// bodies both ways (httputil.ReverseProxy never buffers them), passes the
// client's Host on and adds X-Forwarded-*. A replica marked down is
// skipped, as a health-checking balancer would skip it.
//
// It also records what each replica answered, so that the tests can show
// that the load was spread and that no replica answered a server error.
type front struct {
	Addr string // host:port it listens on
	URL  string // http://Addr

	backends []*url.URL
	proxy    *httputil.ReverseProxy
	srv      *http.Server

	mu       sync.Mutex
	next     int
	down     []bool
	requests []map[string]int        // per replica: requests by method
	faults   []string                // replica answers of 5xx, and requests no replica took
	sessions map[string]map[int]bool // upload session id → the replicas that served it
	onBody   func(replica int, r *http.Request, sent int64)
}

// frontNoAnswer marks the front's own 502 (the replica named died under
// the request or never answered), as against a replica's 5xx.
const frontNoAnswer = "X-Wharf-Front-No-Answer"

// frontReplica is the context key under which a forwarded request carries
// the index of its replica.
type frontReplica struct{}

// startFront listens on addr and balances over the replicas' URLs; it
// stops when the test ends.
func startFront(t *testing.T, addr string, replicas []string) *front {
	t.Helper()
	f := &front{
		down:     make([]bool, len(replicas)),
		requests: make([]map[string]int, len(replicas)),
		sessions: map[string]map[int]bool{},
	}
	for i, r := range replicas {
		u, err := url.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		f.backends = append(f.backends, u)
		f.requests[i] = map[string]int{}
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite:        f.rewrite,
		Transport:      transport,
		FlushInterval:  -1, // stream answers as they come, as a load balancer does
		ModifyResponse: f.answered,
		ErrorHandler:   f.failed,
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("front: %v", err)
	}
	f.Addr = l.Addr().String()
	f.URL = "http://" + f.Addr
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := f.srv.Shutdown(ctx); err != nil {
			f.srv.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("front: %v", err)
		}
		transport.CloseIdleConnections()
	})
	return f
}

// pick returns the next replica that is up, or -1 when all are down.
func (f *front) pick() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range f.backends {
		i := f.next
		f.next = (f.next + 1) % len(f.backends)
		if !f.down[i] {
			return i
		}
	}
	return -1
}

// ServeHTTP picks the replica and hands the request to the proxy.
func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := f.pick()
	if i < 0 {
		f.fault(fmt.Sprintf("no replica up for %s %s", r.Method, r.URL.Path))
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), frontReplica{}, i)))
}

func (f *front) rewrite(pr *httputil.ProxyRequest) {
	i := pr.In.Context().Value(frontReplica{}).(int)
	pr.SetURL(f.backends[i])
	pr.Out.Host = pr.In.Host // the replicas see the name the client used
	pr.SetXForwarded()

	f.mu.Lock()
	f.requests[i][pr.In.Method]++
	hook := f.onBody
	f.mu.Unlock()
	f.noteSession(uploadSession(pr.In.URL.Path), i)
	if hook != nil && pr.Out.Body != nil && pr.Out.Body != http.NoBody {
		pr.Out.Body = &watchedBody{ReadCloser: pr.Out.Body, replica: i, req: pr.Out, hook: hook}
	}
}

// answered records a replica's answer: the session a POST opened, and any
// server error.
func (f *front) answered(resp *http.Response) error {
	i, _ := resp.Request.Context().Value(frontReplica{}).(int)
	if loc := resp.Header.Get("Location"); resp.Request.Method == http.MethodPost && loc != "" {
		if u, err := url.Parse(loc); err == nil {
			f.noteSession(uploadSession(u.Path), i)
		}
	}
	if resp.StatusCode >= 500 {
		f.fault(fmt.Sprintf("replica %d answered %s %s with %s", i, resp.Request.Method, resp.Request.URL.Path, resp.Status))
	}
	return nil
}

// failed answers 502 for a request no replica answered: a replica killed
// under it, or none up.
func (f *front) failed(w http.ResponseWriter, r *http.Request, err error) {
	i := r.Context().Value(frontReplica{}).(int)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client gave up on the request (ggcr cancels its other
		// uploads when one fails): nothing the replica did.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	f.fault(fmt.Sprintf("no answer from replica %d to %s %s: %v", i, r.Method, r.URL.Path, err))
	w.Header().Set(frontNoAnswer, strconv.Itoa(i))
	w.WriteHeader(http.StatusBadGateway)
}

func (f *front) fault(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, s)
}

// takeFaults returns the faults recorded since the last call.
func (f *front) takeFaults() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.faults
	f.faults = nil
	return out
}

// checkNoFaults fails the test for every fault recorded since the last
// call: with all replicas up, no request may go unanswered or get a 5xx.
func (f *front) checkNoFaults(t *testing.T) {
	t.Helper()
	for _, s := range f.takeFaults() {
		t.Errorf("front: %s", s)
	}
}

// setDown marks replica i down (skipped) or up.
func (f *front) setDown(i int, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[i] = down
}

// watchBodies calls hook as the body of each forwarded request streams
// through, with the bytes sent so far; nil stops it.
func (f *front) watchBodies(hook func(replica int, r *http.Request, sent int64)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onBody = hook
}

func (f *front) noteSession(id string, replica int) {
	if id == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessions[id] == nil {
		f.sessions[id] = map[int]bool{}
	}
	f.sessions[id][replica] = true
}

// spread says how many requests of method each replica served, and how
// many upload sessions were served by one, two, three… replicas.
func (f *front) spread(method string) (perReplica []int, sessionsByReplicas map[int]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		perReplica = append(perReplica, r[method])
	}
	sessionsByReplicas = map[int]int{}
	for _, rs := range f.sessions {
		sessionsByReplicas[len(rs)]++
	}
	return perReplica, sessionsByReplicas
}

// sessionReplicas lists the replicas that served upload session id.
func (f *front) sessionReplicas(id string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for i := range f.backends {
		if f.sessions[id][i] {
			out = append(out, i)
		}
	}
	return out
}

// resetSpread forgets the counts spread reports.
func (f *front) resetSpread() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.requests {
		f.requests[i] = map[string]int{}
	}
	f.sessions = map[string]map[int]bool{}
}

// uploadSession is the session id in an upload URL path
// (/v2/NAME/blobs/uploads/ID), or "".
func uploadSession(path string) string {
	const marker = "/blobs/uploads/"
	i := strings.LastIndex(path, marker)
	if i < 0 || !strings.HasPrefix(path, "/v2/") {
		return ""
	}
	return path[i+len(marker):]
}

// watchedBody reports the bytes of a request body as they pass.
type watchedBody struct {
	io.ReadCloser
	replica int
	req     *http.Request
	hook    func(replica int, r *http.Request, sent int64)
	sent    int64
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.sent += int64(n)
	if n > 0 {
		b.hook(b.replica, b.req, b.sent)
	}
	return n, err
}
