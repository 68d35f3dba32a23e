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
	seg := strings.Split(rest, "/")
	n := len(seg)
	if n < 3 {
		return Route{Kind: KindNotFound}
	}
	last, prev := seg[n-1], seg[n-2]
	name := func(k int) string { return strings.Join(seg[:n-k], "/") }
	switch {
	case n >= 4 && seg[n-3] == "blobs" && prev == "uploads":
		if last == "" {
			return Route{Kind: KindUploadStart, Name: name(3)}
		}
		return Route{Kind: KindUpload, Name: name(3), Ref: last}
	case prev == "blobs" && last == "uploads":
		return Route{Kind: KindUploadStart, Name: name(2)}
	case prev == "tags" && last == "list":
		return Route{Kind: KindTags, Name: name(2)}
	case last == "":
		return Route{Kind: KindNotFound}
	case prev == "manifests":
		return Route{Kind: KindManifest, Name: name(2), Ref: last}
	case prev == "blobs":
		return Route{Kind: KindBlob, Name: name(2), Ref: last}
	case prev == "referrers":
		return Route{Kind: KindReferrers, Name: name(2), Ref: last}
	}
	return Route{Kind: KindNotFound}
}
