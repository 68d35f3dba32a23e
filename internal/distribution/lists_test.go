package distribution_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/registrytest"
)

// mfLinkRe is an RFC 5988 Link header to the next page.
var mfLinkRe = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// mfCheckLink asserts the next-page Link of a response: its path, and n
// and last in its query.
func mfCheckLink(path, n, last string) func(*testing.T, *registrytest.Server, mfResult) {
	return func(t *testing.T, _ *registrytest.Server, res mfResult) {
		link := res.header.Get("Link")
		m := mfLinkRe.FindStringSubmatch(link)
		if m == nil {
			t.Fatalf("Link %q, want <%s?n=%s&last=%s>; rel=\"next\"", link, path, n, last)
		}
		u, err := url.Parse(m[1])
		if err != nil {
			t.Fatalf("Link %q: %v", link, err)
		}
		q := u.Query()
		if u.Path != path || q.Get("n") != n || q.Get("last") != last || len(q) != 2 {
			t.Errorf("Link %q, want <%s?n=%s&last=%s>; rel=\"next\"", link, path, n, last)
		}
	}
}

// mfPushTags tags mfOCI in repo with each tag, in the order given.
func mfPushTags(repo string, tags ...string) func(*testing.T, *registrytest.Server) {
	return func(t *testing.T, s *registrytest.Server) {
		mfPushImageBlobs(t, s, repo)
		for _, tag := range tags {
			mfPutManifest(t, s, repo, tag, v1.MediaTypeImageManifest, mfOCI)
		}
	}
}

// mfTagsBody is the spec's tag list.
func mfTagsBody(name string, tags ...string) []byte {
	if tags == nil {
		tags = []string{}
	}
	return mfJSON(map[string]any{"name": name, "tags": tags})
}

func TestTagsList(t *testing.T) {
	abcde := mfPushTags("app", "c", "a", "e", "b", "d")
	mfRun(t, []mfCase{
		{
			name: "every tag in lexical order", setup: abcde,
			method: "GET", path: "/v2/app/tags/list",
			wantCode: 200, wantBody: mfTagsBody("app", "a", "b", "c", "d", "e"),
			wantHeader: map[string]string{"Content-Type": "application/json", "Link": ""},
		},
		{
			name:   "lexical order of mixed tags",
			setup:  mfPushTags("app", "v1.10", "latest", "1.0", "v1.9", "10", "2", "v1.9-rc_1"),
			method: "GET", path: "/v2/app/tags/list",
			wantCode: 200, wantBody: mfTagsBody("app", "1.0", "10", "2", "latest", "v1.10", "v1.9", "v1.9-rc_1"),
		},
		{
			name: "n=2 gives the first page and a Link to the next", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=2",
			wantCode: 200, wantBody: mfTagsBody("app", "a", "b"),
			check: mfCheckLink("/v2/app/tags/list", "2", "b"),
		},
		{
			name: "n=2&last=b gives the page after b", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=2&last=b",
			wantCode: 200, wantBody: mfTagsBody("app", "c", "d"),
			check: mfCheckLink("/v2/app/tags/list", "2", "d"),
		},
		{
			name: "the last page has no Link", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=2&last=d",
			wantCode: 200, wantBody: mfTagsBody("app", "e"),
			wantHeader: map[string]string{"Link": ""},
		},
		{
			name: "a page that ends exactly at the last tag has no Link", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=5",
			wantCode: 200, wantBody: mfTagsBody("app", "a", "b", "c", "d", "e"),
			wantHeader: map[string]string{"Link": ""},
		},
		{
			name: "n larger than the list gives all of it", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=100",
			wantCode: 200, wantBody: mfTagsBody("app", "a", "b", "c", "d", "e"),
			wantHeader: map[string]string{"Link": ""},
		},
		{
			name: "last without n gives every tag after it", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?last=c",
			wantCode: 200, wantBody: mfTagsBody("app", "d", "e"),
			wantHeader: map[string]string{"Link": ""},
		},
		{
			name: "last that is not a tag starts after where it would sort", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?last=bb&n=1",
			wantCode: 200, wantBody: mfTagsBody("app", "c"),
			check: mfCheckLink("/v2/app/tags/list", "1", "c"),
		},
		{
			name: "last after every tag gives an empty list", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?last=z",
			wantCode: 200, wantBody: mfTagsBody("app"),
		},
		{
			name: "n=0 gives an empty list", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=0",
			wantCode: 200, wantBody: mfTagsBody("app"),
			wantHeader: map[string]string{"Link": ""},
		},
		{
			name: "negative n is PAGINATION_NUMBER_INVALID", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=-1",
			wantCode: 400, wantErrCode: "PAGINATION_NUMBER_INVALID",
		},
		{
			name: "non-numeric n is PAGINATION_NUMBER_INVALID", setup: abcde,
			method: "GET", path: "/v2/app/tags/list?n=two",
			wantCode: 400, wantErrCode: "PAGINATION_NUMBER_INVALID",
		},
		{
			name: "a repository without tags has an empty list",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushBlob(t, s, "app", mfLayer)
			},
			method: "GET", path: "/v2/app/tags/list",
			wantCode: 200, wantBody: mfTagsBody("app"),
		},
		{
			name: "a repository whose tags were all deleted has an empty list",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushTags("app", "v1")(t, s)
				if res := mfDo(t, s, "DELETE", "/v2/app/manifests/v1", nil, nil); res.code != 202 {
					t.Fatalf("delete tag: status %d", res.code)
				}
			},
			method: "GET", path: "/v2/app/tags/list",
			wantCode: 200, wantBody: mfTagsBody("app"),
		},
		{
			name: "a multi-component repository", setup: mfPushTags("team/app/api", "v2", "v1"),
			method: "GET", path: "/v2/team/app/api/tags/list?n=1",
			wantCode: 200, wantBody: mfTagsBody("team/app/api", "v1"),
			check: mfCheckLink("/v2/team/app/api/tags/list", "1", "v1"),
		},
		{
			name: "an unknown repository is NAME_UNKNOWN", setup: abcde,
			method: "GET", path: "/v2/nowhere/tags/list",
			wantCode: 404, wantErrCode: "NAME_UNKNOWN",
		},
		{
			name: "an unknown repository with n=0 is NAME_UNKNOWN", setup: abcde,
			method: "GET", path: "/v2/nowhere/tags/list?n=0",
			wantCode: 404, wantErrCode: "NAME_UNKNOWN",
		},
		{
			name:   "an invalid repository name is NAME_INVALID",
			method: "GET", path: "/v2/No/tags/list",
			wantCode: 400, wantErrCode: "NAME_INVALID",
		},
	})
}

// mfWalk follows next-page Links from path and returns every entry of
// field ("tags" or "repositories") in the order served.
func mfWalk(t *testing.T, s *registrytest.Server, path, field string) []string {
	t.Helper()
	var all []string
	for pages := 0; path != ""; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		res := mfDo(t, s, "GET", path, nil, nil)
		if res.code != http.StatusOK {
			t.Fatalf("GET %s: status %d, body %s", path, res.code, res.body)
		}
		var entries struct {
			Tags         []string `json:"tags"`
			Repositories []string `json:"repositories"`
		}
		if err := json.Unmarshal(res.body, &entries); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		got := entries.Tags
		if field == "repositories" {
			got = entries.Repositories
		}
		all = append(all, got...)
		next := ""
		if link := res.header.Get("Link"); link != "" {
			m := mfLinkRe.FindStringSubmatch(link)
			if m == nil {
				t.Fatalf("GET %s: malformed Link %q", path, link)
			}
			next = m[1]
		}
		path = next
	}
	return all
}

func TestTagsList_FollowingLinksVisitsEveryTagOnce(t *testing.T) {
	s := registrytest.NewServer(t)
	tags := []string{"v3", "v1", "latest", "v10", "v2", "stable", "1.0", "edge"}
	mfPushTags("app", tags...)(t, s)
	want := slices.Clone(tags)
	sort.Strings(want)
	for _, n := range []string{"1", "3", "8", "9"} {
		if got := mfWalk(t, s, "/v2/app/tags/list?n="+n, "tags"); !slices.Equal(got, want) {
			t.Errorf("n=%s: walked %q, want %q", n, got, want)
		}
	}
}

// mfRepos are repositories with one-, two- and three-component names.
var mfRepos = []string{"zeta", "team/app/web", "alpha", "library/ubuntu", "team/app/api"}

func mfPushRepos(t *testing.T, s *registrytest.Server) {
	for _, r := range mfRepos {
		mfPushBlob(t, s, r, mfLayer)
	}
}

func mfCatalogBody(repos ...string) []byte {
	if repos == nil {
		repos = []string{}
	}
	return mfJSON(map[string]any{"repositories": repos})
}

func TestCatalog(t *testing.T) {
	mfRun(t, []mfCase{
		{
			name: "every repository in lexical order", setup: mfPushRepos,
			method: "GET", path: "/v2/_catalog",
			wantCode:   200,
			wantBody:   mfCatalogBody("alpha", "library/ubuntu", "team/app/api", "team/app/web", "zeta"),
			wantHeader: map[string]string{"Content-Type": "application/json", "Link": ""},
		},
		{
			name: "n=2 gives the first page and a Link to the next", setup: mfPushRepos,
			method: "GET", path: "/v2/_catalog?n=2",
			wantCode: 200, wantBody: mfCatalogBody("alpha", "library/ubuntu"),
			check: mfCheckLink("/v2/_catalog", "2", "library/ubuntu"),
		},
		{
			name: "last may be a multi-component name", setup: mfPushRepos,
			method: "GET", path: "/v2/_catalog?n=2&last=library/ubuntu",
			wantCode: 200, wantBody: mfCatalogBody("team/app/api", "team/app/web"),
			check: mfCheckLink("/v2/_catalog", "2", "team/app/web"),
		},
		{
			name: "the last page has no Link", setup: mfPushRepos,
			method: "GET", path: "/v2/_catalog?n=2&last=team/app/web",
			wantCode: 200, wantBody: mfCatalogBody("zeta"),
			wantHeader: map[string]string{"Link": ""},
		},
		{
			name: "n=0 gives an empty list", setup: mfPushRepos,
			method: "GET", path: "/v2/_catalog?n=0",
			wantCode: 200, wantBody: mfCatalogBody(),
			wantHeader: map[string]string{"Link": ""},
		},
		{
			name: "invalid n is PAGINATION_NUMBER_INVALID", setup: mfPushRepos,
			method: "GET", path: "/v2/_catalog?n=x",
			wantCode: 400, wantErrCode: "PAGINATION_NUMBER_INVALID",
		},
		{
			name:   "an empty registry has an empty catalog",
			method: "GET", path: "/v2/_catalog",
			wantCode: 200, wantBody: mfCatalogBody(),
		},
		{
			name: "a repository holding only a manifest is listed", opts: []registrytest.Option{registrytest.Sparse()},
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPutManifest(t, s, "sparse/app", "v1", v1.MediaTypeImageManifest, mfOCI)
			},
			method: "GET", path: "/v2/_catalog",
			wantCode: 200, wantBody: mfCatalogBody("sparse/app"),
		},
	})
}

func TestCatalog_FollowingLinksVisitsEveryRepositoryOnce(t *testing.T) {
	s := registrytest.NewServer(t)
	mfPushRepos(t, s)
	want := slices.Clone(mfRepos)
	sort.Strings(want)
	for _, n := range []string{"1", "2", "5"} {
		if got := mfWalk(t, s, "/v2/_catalog?n="+n, "repositories"); !slices.Equal(got, want) {
			t.Errorf("n=%s: walked %q, want %q", n, got, want)
		}
	}
}

// Referrers fixtures: an image, and artifacts that refer to it.
var (
	mfSubject     = v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: mfOCIDigest, Size: int64(len(mfOCI))}
	mfEmpty       = []byte("{}")
	mfSBOMContent = []byte(`{"spdxVersion":"SPDX-2.3"}`)
	mfSigConfig   = []byte(`{"signature":true}`)

	// mfSBOM has an artifactType.
	mfSBOM = mfJSON(v1.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageManifest,
		ArtifactType: "application/spdx+json",
		Config:       mfDesc(v1.MediaTypeEmptyJSON, mfEmpty),
		Layers:       []v1.Descriptor{mfDesc("application/spdx+json", mfSBOMContent)},
		Subject:      &mfSubject,
		Annotations:  map[string]string{"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
	})
	// mfSignature has no artifactType: its config's media type stands in.
	mfSignature = mfJSON(v1.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   v1.MediaTypeImageManifest,
		Config:      mfDesc("application/vnd.example.signature.config.v1+json", mfSigConfig),
		Layers:      []v1.Descriptor{mfDesc(v1.MediaTypeEmptyJSON, mfEmpty)},
		Subject:     &mfSubject,
		Annotations: map[string]string{"org.example.signer": "alice", "org.example.kind": "signature"},
	})
	// mfBundle is an index that refers to the image.
	mfBundle = mfJSON(v1.Index{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    v1.MediaTypeImageIndex,
		ArtifactType: "application/vnd.example.bundle",
		Manifests:    []v1.Descriptor{},
		Subject:      &mfSubject,
	})

	mfSBOMDesc = v1.Descriptor{
		MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(mfSBOM), Size: int64(len(mfSBOM)),
		ArtifactType: "application/spdx+json",
		Annotations:  map[string]string{"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
	}
	mfSignatureDesc = v1.Descriptor{
		MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(mfSignature), Size: int64(len(mfSignature)),
		ArtifactType: "application/vnd.example.signature.config.v1+json",
		Annotations:  map[string]string{"org.example.signer": "alice", "org.example.kind": "signature"},
	}
	mfBundleDesc = v1.Descriptor{
		MediaType: v1.MediaTypeImageIndex, Digest: digest.FromBytes(mfBundle), Size: int64(len(mfBundle)),
		ArtifactType: "application/vnd.example.bundle",
	}
)

// mfPushReferrers pushes the image and three artifacts referring to it.
func mfPushReferrers(t *testing.T, s *registrytest.Server) {
	mfPushImage(t, s, "app", "v1")
	mfPushBlob(t, s, "app", mfEmpty)
	mfPushBlob(t, s, "app", mfSBOMContent)
	mfPushBlob(t, s, "app", mfSigConfig)
	mfPutManifest(t, s, "app", mfSBOMDesc.Digest.String(), v1.MediaTypeImageManifest, mfSBOM)
	mfPutManifest(t, s, "app", mfSignatureDesc.Digest.String(), v1.MediaTypeImageManifest, mfSignature)
	mfPutManifest(t, s, "app", mfBundleDesc.Digest.String(), v1.MediaTypeImageIndex, mfBundle)
}

// mfCheckReferrers asserts that the response is an OCI index listing
// exactly want, in any order.
func mfCheckReferrers(want ...v1.Descriptor) func(*testing.T, *registrytest.Server, mfResult) {
	return func(t *testing.T, _ *registrytest.Server, res mfResult) {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(res.body, &raw); err != nil {
			t.Fatalf("referrers body %s: %v", res.body, err)
		}
		if m := string(raw["manifests"]); !strings.HasPrefix(m, "[") {
			t.Errorf(`"manifests" is %s, want a JSON array`, m)
		}
		var index v1.Index
		if err := json.Unmarshal(res.body, &index); err != nil {
			t.Fatalf("referrers body %s: %v", res.body, err)
		}
		if index.SchemaVersion != 2 || index.MediaType != v1.MediaTypeImageIndex {
			t.Errorf("referrers index has schemaVersion %d and mediaType %q", index.SchemaVersion, index.MediaType)
		}
		got := index.Manifests
		byDigest := func(a, b v1.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) }
		slices.SortFunc(got, byDigest)
		want = append([]v1.Descriptor{}, want...)
		slices.SortFunc(want, byDigest)
		if string(mfJSON(got)) != string(mfJSON(want)) {
			t.Errorf("referrers:\n%s\nwant:\n%s", mfJSON(got), mfJSON(want))
		}
	}
}

func TestReferrers(t *testing.T) {
	indexCT := map[string]string{"Content-Type": v1.MediaTypeImageIndex}
	mfRun(t, []mfCase{
		{
			name: "lists every manifest whose subject is the digest", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/" + mfOCIDigest.String(),
			wantCode: 200,
			wantHeader: map[string]string{
				"Content-Type":        v1.MediaTypeImageIndex,
				"OCI-Filters-Applied": "",
			},
			check: mfCheckReferrers(mfSBOMDesc, mfSignatureDesc, mfBundleDesc),
		},
		{
			name: "artifactType filters and says so", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/" + mfOCIDigest.String() + "?artifactType=application/spdx%2Bjson",
			wantCode: 200,
			wantHeader: map[string]string{
				"Content-Type":        v1.MediaTypeImageIndex,
				"OCI-Filters-Applied": "artifactType",
			},
			check: mfCheckReferrers(mfSBOMDesc),
		},
		{
			name: "artifactType matches the config media type of a manifest without one", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/" + mfOCIDigest.String() + "?artifactType=application/vnd.example.signature.config.v1%2Bjson",
			wantCode:   200,
			wantHeader: map[string]string{"OCI-Filters-Applied": "artifactType"},
			check:      mfCheckReferrers(mfSignatureDesc),
		},
		{
			name: "artifactType matching nothing gives an empty list", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/" + mfOCIDigest.String() + "?artifactType=application/vnd.example.none",
			wantCode:   200,
			wantHeader: map[string]string{"OCI-Filters-Applied": "artifactType"},
			check:      mfCheckReferrers(),
		},
		{
			name: "a subject without referrers gives an empty list", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/" + mfDockerDigest.String(),
			wantCode: 200, wantHeader: indexCT,
			check: mfCheckReferrers(),
		},
		{
			name: "a referrer itself has no referrers", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/" + mfSBOMDesc.Digest.String(),
			wantCode: 200, wantHeader: indexCT,
			check: mfCheckReferrers(),
		},
		{
			name: "referrers are listed before their subject is pushed",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushBlob(t, s, "app", mfEmpty)
				mfPushBlob(t, s, "app", mfSBOMContent)
				mfPutManifest(t, s, "app", mfSBOMDesc.Digest.String(), v1.MediaTypeImageManifest, mfSBOM)
			},
			method: "GET", path: "/v2/app/referrers/" + mfOCIDigest.String(),
			wantCode: 200, wantHeader: indexCT,
			check: mfCheckReferrers(mfSBOMDesc),
		},
		{
			name: "a deleted referrer is no longer listed",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushReferrers(t, s)
				if res := mfDo(t, s, "DELETE", "/v2/app/manifests/"+mfSignatureDesc.Digest.String(), nil, nil); res.code != 202 {
					t.Fatalf("delete referrer: status %d", res.code)
				}
			},
			method: "GET", path: "/v2/app/referrers/" + mfOCIDigest.String(),
			wantCode: 200,
			check:    mfCheckReferrers(mfSBOMDesc, mfBundleDesc),
		},
		{
			name: "referrers in another repository are not listed",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushReferrers(t, s)
				mfPushImage(t, s, "other", "v1")
			},
			method: "GET", path: "/v2/other/referrers/" + mfOCIDigest.String(),
			wantCode: 200, wantHeader: indexCT,
			check: mfCheckReferrers(),
		},
		{
			// The spec: a registry that supports the referrers API MUST NOT
			// answer 404 to a referrers request.
			name:   "an unknown repository gives an empty list",
			method: "GET", path: "/v2/nowhere/referrers/" + mfOCIDigest.String(),
			wantCode: 200, wantHeader: indexCT,
			check: mfCheckReferrers(),
		},
		{
			name: "a malformed digest is DIGEST_INVALID", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/sha256:xyz",
			wantCode: 400, wantErrCode: "DIGEST_INVALID",
		},
		{
			name: "a tag is not a digest", setup: mfPushReferrers,
			method: "GET", path: "/v2/app/referrers/v1",
			wantCode: 400, wantErrCode: "DIGEST_INVALID",
		},
	})
}
