package distribution

import "strings"

// Kind names an OCI endpoint; it doubles as the route label in metrics.
type Kind string

// The endpoints of the distribution API.
const (
	KindBase        Kind = "base"
	KindCatalog     Kind = "catalog"
	KindTags        Kind = "tags"
	KindManifest    Kind = "manifest"
	KindBlob        Kind = "blob"
	KindUploadStart Kind = "upload_start"
	KindUpload      Kind = "upload"
	KindReferrers   Kind = "referrers"
	KindNotFound    Kind = "not_found"
)

// Route is a parsed API path.
type Route struct {
	Kind Kind
	// Name is the repository name.
	Name string
	// Ref is the tag or digest of a manifest, the digest of a blob or
	// referrers subject, or the id of an upload.
	Ref string
}

// ParseRoute parses an API path from the right: repository names contain
// '/', so only the trailing components say which endpoint is meant.
func ParseRoute(path string) Route {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return Route{Kind: KindBase}
		}
		return Route{Kind: KindNotFound}
	}
	switch rest {
	case "":
		return Route{Kind: KindBase}
	case "_catalog":
		return Route{Kind: KindCatalog}
	}
	// Cut segments off the right instead of splitting: every request
	// passes here, and substrings of the path allocate nothing.
	h1, last, ok1 := cutLast(rest)
	h2, prev, ok2 := cutLast(h1)
	if !ok1 || !ok2 {
		return Route{Kind: KindNotFound}
	}
	// h2 is the name when the endpoint takes two segments.
	if h3, third, ok3 := cutLast(h2); ok3 && third == "blobs" && prev == "uploads" {
		if last == "" {
			return Route{Kind: KindUploadStart, Name: h3}
		}
		return Route{Kind: KindUpload, Name: h3, Ref: last}
	}
	switch {
	case prev == "blobs" && last == "uploads":
		return Route{Kind: KindUploadStart, Name: h2}
	case prev == "tags" && last == "list":
		return Route{Kind: KindTags, Name: h2}
	case last == "":
		return Route{Kind: KindNotFound}
	case prev == "manifests":
		return Route{Kind: KindManifest, Name: h2, Ref: last}
	case prev == "blobs":
		return Route{Kind: KindBlob, Name: h2, Ref: last}
	case prev == "referrers":
		return Route{Kind: KindReferrers, Name: h2, Ref: last}
	}
	return Route{Kind: KindNotFound}
}

// cutLast splits s at its last '/'; ok is false when there is none.
func cutLast(s string) (head, last string, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}
