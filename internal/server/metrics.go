package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/registry"
)

type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	bytesIn   *prometheus.CounterVec
	bytesOut  *prometheus.CounterVec
	uploading prometheus.Gauge

	// series holds, per (route, method), the children of the vectors
	// above, so that a request does not pay four WithLabelValues (each
	// hashes its labels and takes the vector's lock). Built up front for
	// every label pair there can be (both labels are bounded); a pair's
	// children are created on its first request, so /metrics shows only
	// series that have been used, as before.
	series map[routeMethod]*routeSeries
	// extra takes label pairs missing from series (a route kind added
	// without updating routeLabels), so that such a request is still counted.
	extra sync.Map // routeMethod → *routeSeries
}

type routeMethod struct{ route, method string }

// routeSeries is one (route, method)'s children, created once.
type routeSeries struct {
	once     sync.Once
	latency  prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	// codes is copied on write: a request only loads and scans it.
	codes atomic.Pointer[[]codeCounter]
	mu    sync.Mutex // serialises adding a code
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, svc *registry.Service) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wharf_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_http_request_bytes_total", Help: "Request body bytes received, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_http_response_bytes_total", Help: "Response body bytes sent, by route.",
		}, []string{"route"}),
		uploading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_uploads_in_flight", Help: "Blob upload requests being received now.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.bytesIn, m.bytesOut, m.uploading, &storedCollector{svc: svc})
	if gc := svc.GCRuns(); gc != nil {
		reg.MustRegister(&gcCollector{gc: gc})
	}
	m.series = map[routeMethod]*routeSeries{}
	for _, route := range routeLabels {
		for _, method := range methodLabels {
			m.series[routeMethod{route, method}] = &routeSeries{}
		}
	}
	return m
}

// seriesFor returns the children for route and method, which must come
// from routeLabel and methodLabel.
func (m *metrics) seriesFor(route, method string) *routeSeries {
	s := m.series[routeMethod{route, method}]
	if s == nil {
		v, _ := m.extra.LoadOrStore(routeMethod{route, method}, &routeSeries{})
		s = v.(*routeSeries)
	}
	s.once.Do(func() {
		s.latency = m.latency.WithLabelValues(route, method)
		s.bytesIn = m.bytesIn.WithLabelValues(route)
		s.bytesOut = m.bytesOut.WithLabelValues(route)
		s.codes.Store(&[]codeCounter{})
	})
	return s
}

// requests returns the request counter of status code.
func (s *routeSeries) requests(m *metrics, route, method string, code int) prometheus.Counter {
	for _, cc := range *s.codes.Load() {
		if cc.code == code {
			return cc.c
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.codes.Load()
	for _, cc := range old {
		if cc.code == code {
			return cc.c
		}
	}
	c := m.requests.WithLabelValues(route, method, strconv.Itoa(code))
	codes := append(old[:len(old):len(old)], codeCounter{code, c})
	s.codes.Store(&codes)
	return c
}

// routeLabels is every value routeLabel returns.
var routeLabels = []string{
	string(distribution.KindBase), string(distribution.KindCatalog), string(distribution.KindTags),
	string(distribution.KindManifest), string(distribution.KindBlob), string(distribution.KindUploadStart),
	string(distribution.KindUpload), string(distribution.KindReferrers), string(distribution.KindNotFound),
	"healthz", "readyz", "metrics", "other",
}

// methodLabels is every value methodLabel returns.
var methodLabels = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, "other",
}

// routeLabel keeps label cardinality bounded: repository names and digests
// never become labels.
func routeLabel(path string) string {
	switch {
	case strings.HasPrefix(path, "/v2"):
		return string(distribution.ParseRoute(path).Kind)
	case path == "/healthz", path == "/readyz", path == "/metrics":
		return strings.TrimPrefix(path, "/")
	default:
		return "other"
	}
}

// uploadBody reports whether a request carries an upload's bytes, which
// the uploads-in-flight gauge counts while they are received.
func uploadBody(method, route string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodDelete &&
		(route == string(distribution.KindUpload) || route == string(distribution.KindUploadStart))
}

// observe counts one answered request of the series.
func (s *routeSeries) observe(m *metrics, route, method string, status int, took time.Duration, in, out int64) {
	s.requests(m, route, method, status).Inc()
	s.latency.Observe(took.Seconds())
	// A counter's Add is a compare-and-swap loop on a word that every
	// request of the route shares; most requests (GET, HEAD) have no
	// body to add.
	if in != 0 {
		s.bytesIn.Add(float64(in))
	}
	if out != 0 {
		s.bytesOut.Add(float64(out))
	}
}

// methodLabel bounds the method label: any token is a valid HTTP method,
// and each new one would be a new time series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// storedCollector reports what the registry holds, asked at scrape time.
type storedCollector struct{ svc *registry.Service }

var (
	blobsDesc = prometheus.NewDesc("wharf_blobs_stored", "Distinct blobs linked into repositories.", nil, nil)
	bytesDesc = prometheus.NewDesc("wharf_blob_bytes_stored", "Bytes of distinct blobs linked into repositories.", nil, nil)
	// Labelled only for namespaces given a quota of their own (NAME/*),
	// so that the series are as many as the quotas an administrator set,
	// not as the namespaces.
	nsUsedDesc = prometheus.NewDesc("wharf_namespace_used_bytes",
		"Bytes a namespace with a quota of its own uses, each blob counted once.", []string{"namespace"}, nil)
	nsQuotaDesc = prometheus.NewDesc("wharf_namespace_quota_bytes",
		"The quota of a namespace with a quota of its own.", []string{"namespace"}, nil)
)

func (c *storedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- blobsDesc
	ch <- bytesDesc
	ch <- nsUsedDesc
	ch <- nsQuotaDesc
}

func (c *storedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.svc.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(blobsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(blobsDesc, prometheus.GaugeValue, float64(st.Blobs))
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.GaugeValue, float64(st.Bytes))
	usages, err := c.svc.QuotaUsages(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(nsUsedDesc, err)
		return
	}
	for _, u := range usages {
		ch <- prometheus.MustNewConstMetric(nsUsedDesc, prometheus.GaugeValue, float64(u.Bytes), u.Namespace)
		ch <- prometheus.MustNewConstMetric(nsQuotaDesc, prometheus.GaugeValue, float64(u.Quota), u.Namespace)
	}
}
