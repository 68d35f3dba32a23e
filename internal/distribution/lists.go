package distribution

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/registry"
)

func (a *API) tags(w http.ResponseWriter, r *http.Request, rt Route) {
	n, last, err := pagination(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if n == 0 {
		// Still say whether the repository exists.
		if _, err := a.reg.Tags(r.Context(), rt.Name, last, 1); err != nil {
			a.fail(w, r, err)
			return
		}
		writeList(w, rt.Name, "tags", nil)
		return
	}
	tags, err := a.reg.Tags(r.Context(), rt.Name, last, fetchCount(n))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tags = a.pageLink(w, r, tags, n)
	writeList(w, rt.Name, "tags", tags)
}

func (a *API) catalog(w http.ResponseWriter, r *http.Request, _ Route) {
	n, last, err := pagination(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if n == 0 {
		writeList(w, "", "repositories", nil)
		return
	}
	repos, err := a.reg.Catalog(r.Context(), last, fetchCount(n))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	repos = a.pageLink(w, r, repos, n)
	writeList(w, "", "repositories", repos)
}

// fetchCount asks the store for one more than a page so that we know
// whether a next page exists.
func fetchCount(n int) int {
	if n < 0 {
		return -1
	}
	return n + 1
}

// pageLink trims names to a page of n and, when more follow, adds an RFC
// 5988 Link header to the next page.
func (a *API) pageLink(w http.ResponseWriter, r *http.Request, names []string, n int) []string {
	if n < 0 || len(names) <= n {
		return names
	}
	names = names[:n]
	q := url.Values{}
	q.Set("n", strconv.Itoa(n))
	q.Set("last", names[len(names)-1])
	w.Header().Set("Link", `<`+r.URL.Path+`?`+q.Encode()+`>; rel="next"`)
	return names
}

func (a *API) referrers(w http.ResponseWriter, r *http.Request, rt Route) {
	d, err := registry.ParseDigest(rt.Ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs, err := a.reg.Referrers(r.Context(), rt.Name, d, artifactType)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	index := v1.Index{MediaType: v1.MediaTypeImageIndex, Manifests: make([]v1.Descriptor, 0, len(descs))}
	index.SchemaVersion = 2
	for _, desc := range descs {
		index.Manifests = append(index.Manifests, v1.Descriptor{
			MediaType:    desc.MediaType,
			Digest:       desc.Digest,
			Size:         desc.Size,
			ArtifactType: desc.ArtifactType,
			Annotations:  desc.Annotations,
		})
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, v1.MediaTypeImageIndex, index)
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeList writes the spec's list bodies, {"name":…,"tags":[…]} (name
// set) or {"repositories":[…]}, encoding by hand: a whole tags/list of
// 10,000 names through encoding/json's reflection costs more than the
// query. The bytes are what json.Marshal would produce.
func writeList(w http.ResponseWriter, name, key string, names []string) {
	size := 32 + len(name) + len(key)
	for _, n := range names {
		size += len(n) + 3
	}
	b := make([]byte, 0, size)
	b = append(b, '{')
	if name != "" {
		b = append(b, `"name":`...)
		b = appendJSONString(b, name)
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, n)
	}
	b = append(b, "]}"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// appendJSONString appends s as a JSON string. Repository and tag names
// are plain ASCII and need no escaping; anything else goes through
// encoding/json, so the output matches json.Marshal byte for byte.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
