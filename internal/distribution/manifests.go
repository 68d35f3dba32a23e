package distribution

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/wharf/wharf/internal/registry"
)

func (a *API) getManifest(w http.ResponseWriter, r *http.Request, rt Route) {
	m, err := a.reg.GetManifest(r.Context(), rt.Name, rt.Ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !acceptable(r.Header["Accept"], m.MediaType) { // canonical key: no Values canonicalising it
		a.fail(w, r, registry.Errorf(registry.ErrNotAcceptable,
			"manifest %s is %s, which the request's Accept header does not allow", rt.Ref, m.MediaType))
		return
	}
	// Canonical keys assigned directly: Header.Set would canonicalise each
	// key again on this, the hottest path. The values come from the cache
	// (manifestheaders.go), each slice capped so that an Add to one cannot
	// overwrite the next.
	h := w.Header()
	vals := a.headers.get(m.Digest, m.MediaType, len(m.Content)).vals[:]
	h["Content-Type"] = vals[0:1:1]
	h["Docker-Content-Digest"] = vals[1:2:2]
	h["Etag"] = vals[2:3:3]
	h["Content-Length"] = vals[3:4:4]
	if etagMatches(r, m.Digest) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(m.Content)
	}
}

// acceptable reports whether a manifest of mediaType may be returned. A
// request that names only manifest types it knows, none of them this one,
// gets MANIFEST_UNKNOWN; anything vaguer (no Accept, */*, application/json)
// gets the manifest as stored. It runs on every pull, so it scans the
// header in place instead of building maps with mime.ParseMediaType.
func acceptable(accept []string, mediaType string) bool {
	namesManifestType := false
	for _, line := range accept {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ",")
			mt, params, _ := strings.Cut(part, ";")
			mt = strings.TrimSpace(mt)
			if mt == "" {
				continue
			}
			if zeroQuality(params) {
				// q=0 means "not this one": it names a type without accepting it.
				if isManifestType(mt) {
					namesManifestType = true
				}
				continue
			}
			switch {
			case strings.EqualFold(mt, mediaType):
				return true
			case mt == "*/*" || strings.EqualFold(mt, "application/*"):
				return true
			case isManifestType(mt):
				namesManifestType = true
			}
		}
	}
	return !namesManifestType
}

// zeroQuality reports whether media-type parameters (after the first ';')
// carry q=0.
func zeroQuality(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(v), `"`), 64)
		return err == nil && f == 0
	}
	return false
}

func isManifestType(mt string) bool {
	for _, t := range registry.ManifestMediaTypes {
		if strings.EqualFold(t, mt) {
			return true
		}
	}
	return false
}

func (a *API) putManifest(w http.ResponseWriter, r *http.Request, rt Route) {
	limit := a.reg.MaxManifestSize()
	if r.ContentLength > limit {
		a.fail(w, r, registry.Errorf(registry.ErrManifestTooLarge,
			"manifest is %d bytes; the limit is %d", r.ContentLength, limit))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		a.fail(w, r, registry.Errorf(registry.ErrManifestInvalid, "reading the manifest failed: %v", err))
		return
	}
	if int64(len(body)) > limit {
		a.fail(w, r, registry.Errorf(registry.ErrManifestTooLarge, "manifest is over the limit of %d bytes", limit))
		return
	}
	if r.ContentLength >= 0 && int64(len(body)) != r.ContentLength {
		a.fail(w, r, registry.Errorf(registry.ErrSizeInvalid,
			"Content-Length is %d but the body has %d bytes", r.ContentLength, len(body)))
		return
	}
	res, err := a.reg.PutManifest(r.Context(), rt.Name, rt.Ref, r.Header.Get("Content-Type"), body, r.URL.Query()["tag"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.Name+"/manifests/"+res.Digest.String())
	h.Set("Docker-Content-Digest", res.Digest.String())
	if res.Subject != "" {
		h.Set("OCI-Subject", res.Subject.String())
	}
	for _, t := range res.Tags {
		h.Add("OCI-Tag", t)
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (a *API) deleteManifest(w http.ResponseWriter, r *http.Request, rt Route) {
	if err := a.reg.DeleteManifest(r.Context(), rt.Name, rt.Ref); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// pagination reads n and last. n < 0 means "all".
func pagination(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	last = q.Get("last")
	ns := q.Get("n")
	if ns == "" {
		return -1, last, nil
	}
	n, perr := strconv.Atoi(ns)
	if perr != nil || n < 0 {
		return 0, "", &Error{Code: CodePaginationInvalid, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("invalid n=%q: want a non-negative integer", ns)}
	}
	return n, last, nil
}
