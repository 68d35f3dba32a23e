package distribution

import "testing"

func TestParseRoute(t *testing.T) {
	const d = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	const id = "3f0ab2f4-7c3e-4b8e-9a51-0d1c2e3f4a5b"
	cases := []struct {
		name string
		path string
		want Route
	}{
		// The base and the catalog.
		{"base without slash", "/v2", Route{Kind: KindBase}},
		{"base with slash", "/v2/", Route{Kind: KindBase}},
		{"catalog", "/v2/_catalog", Route{Kind: KindCatalog}},
		{"catalog with trailing slash is no endpoint", "/v2/_catalog/", Route{Kind: KindNotFound}},

		// Every kind, with a one-component name.
		{"tags", "/v2/app/tags/list", Route{Kind: KindTags, Name: "app"}},
		{"manifest by tag", "/v2/app/manifests/latest", Route{Kind: KindManifest, Name: "app", Ref: "latest"}},
		{"manifest by digest", "/v2/app/manifests/" + d, Route{Kind: KindManifest, Name: "app", Ref: d}},
		{"blob", "/v2/app/blobs/" + d, Route{Kind: KindBlob, Name: "app", Ref: d}},
		{"upload start with slash", "/v2/app/blobs/uploads/", Route{Kind: KindUploadStart, Name: "app"}},
		{"upload start without slash", "/v2/app/blobs/uploads", Route{Kind: KindUploadStart, Name: "app"}},
		{"upload", "/v2/app/blobs/uploads/" + id, Route{Kind: KindUpload, Name: "app", Ref: id}},
		{"referrers", "/v2/app/referrers/" + d, Route{Kind: KindReferrers, Name: "app", Ref: d}},

		// Names of several components.
		{"tags of a/b/c/d", "/v2/a/b/c/d/tags/list", Route{Kind: KindTags, Name: "a/b/c/d"}},
		{"manifest of a/b/c/d", "/v2/a/b/c/d/manifests/v1", Route{Kind: KindManifest, Name: "a/b/c/d", Ref: "v1"}},
		{"blob of a/b/c/d", "/v2/a/b/c/d/blobs/" + d, Route{Kind: KindBlob, Name: "a/b/c/d", Ref: d}},
		{"upload start of a/b/c/d", "/v2/a/b/c/d/blobs/uploads/", Route{Kind: KindUploadStart, Name: "a/b/c/d"}},
		{"upload of a/b/c/d", "/v2/a/b/c/d/blobs/uploads/" + id, Route{Kind: KindUpload, Name: "a/b/c/d", Ref: id}},
		{"referrers of a/b/c/d", "/v2/a/b/c/d/referrers/" + d, Route{Kind: KindReferrers, Name: "a/b/c/d", Ref: d}},

		// Names whose components are the API's own words: only the trailing
		// components say which endpoint is meant.
		{"blob of a repository named blobs", "/v2/blobs/blobs/" + d, Route{Kind: KindBlob, Name: "blobs", Ref: d}},
		{"blob of a repository named manifests", "/v2/manifests/blobs/" + d, Route{Kind: KindBlob, Name: "manifests", Ref: d}},
		{"blob of a repository named uploads", "/v2/uploads/blobs/" + d, Route{Kind: KindBlob, Name: "uploads", Ref: d}},
		{"blob of a/blobs/uploads", "/v2/a/blobs/uploads/blobs/" + d, Route{Kind: KindBlob, Name: "a/blobs/uploads", Ref: d}},
		{"manifest of a repository named manifests", "/v2/manifests/manifests/latest", Route{Kind: KindManifest, Name: "manifests", Ref: "latest"}},
		{"manifest of a/blobs", "/v2/a/blobs/manifests/latest", Route{Kind: KindManifest, Name: "a/blobs", Ref: "latest"}},
		{"manifest tagged blobs", "/v2/a/manifests/blobs", Route{Kind: KindManifest, Name: "a", Ref: "blobs"}},
		{"manifest tagged uploads", "/v2/a/manifests/uploads", Route{Kind: KindManifest, Name: "a", Ref: "uploads"}},
		{"manifest of blobs/uploads tagged list", "/v2/blobs/uploads/manifests/list", Route{Kind: KindManifest, Name: "blobs/uploads", Ref: "list"}},
		{"upload start of a repository named blobs", "/v2/blobs/blobs/uploads/", Route{Kind: KindUploadStart, Name: "blobs"}},
		{"upload start of a repository named uploads", "/v2/uploads/blobs/uploads", Route{Kind: KindUploadStart, Name: "uploads"}},
		{"upload start of a/blobs/uploads", "/v2/a/blobs/uploads/blobs/uploads/", Route{Kind: KindUploadStart, Name: "a/blobs/uploads"}},
		{"upload of a repository named blobs", "/v2/blobs/blobs/uploads/" + id, Route{Kind: KindUpload, Name: "blobs", Ref: id}},
		{"upload of blobs/uploads", "/v2/blobs/uploads/blobs/uploads/" + id, Route{Kind: KindUpload, Name: "blobs/uploads", Ref: id}},
		{"tags of a repository named tags", "/v2/tags/tags/list", Route{Kind: KindTags, Name: "tags"}},
		{"tags of tags/list", "/v2/tags/list/tags/list", Route{Kind: KindTags, Name: "tags/list"}},
		{"tags of a/manifests", "/v2/a/manifests/tags/list", Route{Kind: KindTags, Name: "a/manifests"}},
		{"referrers of a/referrers", "/v2/a/referrers/referrers/" + d, Route{Kind: KindReferrers, Name: "a/referrers", Ref: d}},

		// Trailing slashes name no endpoint, except after uploads.
		{"tags with trailing slash", "/v2/app/tags/list/", Route{Kind: KindNotFound}},
		{"manifest with trailing slash", "/v2/app/manifests/latest/", Route{Kind: KindNotFound}},
		{"manifests without reference", "/v2/app/manifests/", Route{Kind: KindNotFound}},
		{"blob with trailing slash", "/v2/app/blobs/" + d + "/", Route{Kind: KindNotFound}},
		{"blobs without digest", "/v2/app/blobs/", Route{Kind: KindNotFound}},
		{"upload with trailing slash", "/v2/app/blobs/uploads/" + id + "/", Route{Kind: KindNotFound}},
		{"referrers without digest", "/v2/app/referrers/", Route{Kind: KindNotFound}},

		// Garbage.
		{"empty", "", Route{Kind: KindNotFound}},
		{"root", "/", Route{Kind: KindNotFound}},
		{"no leading slash", "v2/app/blobs/" + d, Route{Kind: KindNotFound}},
		{"v1 API", "/v1/app/blobs/" + d, Route{Kind: KindNotFound}},
		{"v2 as a prefix of a longer word", "/v20/app/blobs/" + d, Route{Kind: KindNotFound}},
		{"v2x", "/v2x", Route{Kind: KindNotFound}},
		{"name only", "/v2/app", Route{Kind: KindNotFound}},
		{"name and kind without reference", "/v2/app/blobs", Route{Kind: KindNotFound}},
		{"manifests without name", "/v2/manifests/latest", Route{Kind: KindNotFound}},
		{"uploads without name", "/v2/blobs/uploads/" + id, Route{Kind: KindNotFound}},
		{"unknown endpoint word", "/v2/app/layers/" + d, Route{Kind: KindNotFound}},
		{"tags without list", "/v2/app/tags/latest", Route{Kind: KindNotFound}},
		{"extra component after a digest", "/v2/app/blobs/" + d + "/data", Route{Kind: KindNotFound}},
		{"upload with extra component", "/v2/app/blobs/uploads/" + id + "/more", Route{Kind: KindNotFound}},
		{"only slashes", "/v2///", Route{Kind: KindNotFound}},
		{"catalog below a name", "/v2/app/_catalog", Route{Kind: KindNotFound}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseRoute(c.path); got != c.want {
				t.Errorf("ParseRoute(%q) = %+v, want %+v", c.path, got, c.want)
			}
		})
	}
}

// Every kind ParseRoute returns, except KindNotFound, has handlers in the
// route table, and HEAD is allowed wherever GET is, except where the spec
// gives HEAD no meaning.
func TestRouteTable_CoversEveryKind(t *testing.T) {
	a := New(nil, nil)
	for _, k := range []Kind{KindBase, KindCatalog, KindTags, KindManifest, KindBlob, KindUploadStart, KindUpload, KindReferrers} {
		if len(a.routes[k]) == 0 {
			t.Errorf("kind %s has no handlers", k)
		}
	}
	if _, ok := a.routes[KindNotFound]; ok {
		t.Errorf("kind %s has handlers; it must answer 404", KindNotFound)
	}
	for _, k := range []Kind{KindBase, KindManifest, KindBlob} {
		if a.routes[k]["HEAD"] == nil {
			t.Errorf("kind %s answers GET but not HEAD", k)
		}
	}
}
