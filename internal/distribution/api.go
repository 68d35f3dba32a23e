// Package distribution serves the OCI Distribution Specification v1.1 over
// HTTP: it parses requests, calls one registry.Service method, and writes
// the response or the spec's error.
package distribution

import (
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/wharf/wharf/internal/registry"
)

// API is the http.Handler for everything under /v2/.
type API struct {
	reg    *registry.Service
	log    *slog.Logger
	routes map[Kind]map[string]handlerFunc
	// headers holds manifest responses' header values (manifestheaders.go).
	headers headerCache
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rt Route)

// New returns the API over reg.
func New(reg *registry.Service, log *slog.Logger) *API {
	a := &API{reg: reg, log: log}
	a.routes = map[Kind]map[string]handlerFunc{
		KindBase:    {"GET": a.base, "HEAD": a.base},
		KindCatalog: {"GET": a.catalog},
		KindTags:    {"GET": a.tags},
		KindManifest: {
			"GET": a.getManifest, "HEAD": a.getManifest,
			"PUT": a.putManifest, "DELETE": a.deleteManifest,
		},
		KindBlob:        {"GET": a.getBlob, "HEAD": a.getBlob, "DELETE": a.deleteBlob},
		KindUploadStart: {"POST": a.startUpload},
		KindUpload: {
			"GET": a.uploadStatus, "PATCH": a.patchUpload,
			"PUT": a.putUpload, "DELETE": a.cancelUpload,
		},
		KindReferrers: {"GET": a.referrers},
	}
	return a
}

// apiVersion is the Docker-Distribution-Api-Version header's value, one
// slice that every response shares instead of one allocated per request.
// Nothing writes into a header's value slice in place (Header.Set replaces
// it; Header.Add appends, which copies a slice whose capacity is full).
var apiVersion = []string{"registry/2.0"}[:1:1]

// ServeHTTP dispatches on the parsed route and the method.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The canonical key assigned directly: Header.Set would allocate its
	// canonical form on every request.
	w.Header()["Docker-Distribution-Api-Version"] = apiVersion
	rt := ParseRoute(r.URL.Path)
	methods, ok := a.routes[rt.Kind]
	if !ok {
		a.fail(w, r, &Error{Code: CodeNameUnknown, Status: http.StatusNotFound,
			Message: "no such endpoint of the distribution API: " + r.URL.Path})
		return
	}
	h, ok := methods[r.Method]
	if !ok {
		allowed := make([]string, 0, len(methods))
		for m := range methods {
			allowed = append(allowed, m)
		}
		sort.Strings(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		a.fail(w, r, NewError(CodeUnsupported, "method "+r.Method+" is not allowed on this endpoint"))
		return
	}
	h(w, r, rt)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, a.log, err)
}

func (a *API) base(w http.ResponseWriter, r *http.Request, _ Route) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("{}"))
	}
}
