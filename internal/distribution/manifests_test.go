package distribution_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

// Fixtures. Everything is deterministic, so digests can be written into
// the tables below.
var (
	mfConfig = []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	mfLayer  = []byte("pretend this is a gzipped tarball")
	// mfNeverPushed is a blob no test pushes.
	mfNeverPushed = []byte("a blob nobody pushed")

	mfOCI          = mfOCIManifest(nil)
	mfDocker       = mfDockerManifest()
	mfOCIIndex     = mfIndex(v1.MediaTypeImageIndex, mfDesc(v1.MediaTypeImageManifest, mfOCI))
	mfDockerList   = mfIndex(registry.MediaTypeDockerManifestList, mfDesc(registry.MediaTypeDockerManifest, mfDocker))
	mfOCIDigest    = digest.FromBytes(mfOCI)
	mfDockerDigest = digest.FromBytes(mfDocker)
	mfIndexDigest  = digest.FromBytes(mfOCIIndex)
	mfListDigest   = digest.FromBytes(mfDockerList)
)

// mfMaxManifest is the default manifest size limit of 4 MiB.
const mfMaxManifest = registry.DefaultMaxManifestSize

func mfJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// mfDesc describes content of the given media type.
func mfDesc(mediaType string, content []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(content), Size: int64(len(content))}
}

// mfOCIManifest is an OCI image manifest of mfConfig and mfLayer.
func mfOCIManifest(annotations map[string]string) []byte {
	return mfJSON(v1.Manifest{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   v1.MediaTypeImageManifest,
		Config:      mfDesc(v1.MediaTypeImageConfig, mfConfig),
		Layers:      []v1.Descriptor{mfDesc(v1.MediaTypeImageLayerGzip, mfLayer)},
		Annotations: annotations,
	})
}

// mfOCIManifestWith is an OCI image manifest of mfConfig and the given layers.
func mfOCIManifestWith(layers ...v1.Descriptor) []byte {
	return mfJSON(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    mfDesc(v1.MediaTypeImageConfig, mfConfig),
		Layers:    layers,
	})
}

// mfDockerManifest is a Docker schema 2 manifest of mfConfig and mfLayer.
func mfDockerManifest() []byte {
	return mfJSON(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: registry.MediaTypeDockerManifest,
		Config:    mfDesc("application/vnd.docker.container.image.v1+json", mfConfig),
		Layers:    []v1.Descriptor{mfDesc("application/vnd.docker.image.rootfs.diff.tar.gzip", mfLayer)},
	})
}

// mfIndex is an index (OCI or Docker list) of the given manifests.
func mfIndex(mediaType string, children ...v1.Descriptor) []byte {
	for i := range children {
		children[i].Platform = &v1.Platform{Architecture: "amd64", OS: "linux"}
	}
	return mfJSON(v1.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mediaType, Manifests: children})
}

// mfManifestOfSize is a valid OCI image manifest of exactly n bytes.
func mfManifestOfSize(n int) []byte {
	base := mfOCIManifest(map[string]string{"pad": ""})
	b := mfOCIManifest(map[string]string{"pad": strings.Repeat("x", n-len(base))})
	if len(b) != n {
		panic(fmt.Sprintf("padded manifest is %d bytes, want %d", len(b), n))
	}
	return b
}

// mfHeader builds a header from key, value pairs.
func mfHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// mfCT is a Content-Type header.
func mfCT(mediaType string) http.Header { return mfHeader("Content-Type", mediaType) }

// mfResult is a finished HTTP exchange.
type mfResult struct {
	code   int
	header http.Header
	body   []byte
}

// mfRequest is one HTTP call against the registry.
type mfRequest struct {
	method string
	path   string
	header http.Header
	body   []byte
	// chunked sends the body without a Content-Length.
	chunked bool
}

// mfSend makes the call; it is safe to use from several goroutines.
func mfSend(s *registrytest.Server, r mfRequest) (mfResult, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, s.URL+r.path, body)
	if err != nil {
		return mfResult{}, err
	}
	for k, vs := range r.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.chunked {
		req.Body = io.NopCloser(bytes.NewReader(r.body))
		req.GetBody = nil
		req.ContentLength = -1
	}
	res, err := s.Client().Do(req)
	if err != nil {
		return mfResult{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return mfResult{}, err
	}
	return mfResult{code: res.StatusCode, header: res.Header, body: b}, nil
}

// mfDo makes the call and fails the test if it could not be made.
func mfDo(t testing.TB, s *registrytest.Server, method, path string, header http.Header, body []byte) mfResult {
	t.Helper()
	res, err := mfSend(s, mfRequest{method: method, path: path, header: header, body: body})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return res
}

// mfErrCodes returns the codes of a spec error body.
func mfErrCodes(t testing.TB, body []byte) []string {
	t.Helper()
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not the spec's error JSON: %v", body, err)
	}
	codes := make([]string, 0, len(e.Errors))
	for _, x := range e.Errors {
		codes = append(codes, x.Code)
	}
	return codes
}

// mfErrMessage returns the message of the first error of a spec error body.
func mfErrMessage(t testing.TB, body []byte) string {
	t.Helper()
	var e struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("error body %q is not the spec's error JSON: %v", body, err)
	}
	return e.Errors[0].Message
}

// mfPushBlob uploads content to repo in one request.
func mfPushBlob(t testing.TB, s *registrytest.Server, repo string, content []byte) digest.Digest {
	t.Helper()
	d := digest.FromBytes(content)
	res := mfDo(t, s, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+d.String(),
		mfHeader("Content-Type", "application/octet-stream"), content)
	if res.code != http.StatusCreated {
		t.Fatalf("push blob %s to %s: status %d, body %s", d, repo, res.code, res.body)
	}
	return d
}

// mfPushImageBlobs uploads mfConfig and mfLayer to repo.
func mfPushImageBlobs(t testing.TB, s *registrytest.Server, repo string) {
	t.Helper()
	mfPushBlob(t, s, repo, mfConfig)
	mfPushBlob(t, s, repo, mfLayer)
}

// mfPutManifest pushes a manifest and returns its digest.
func mfPutManifest(t testing.TB, s *registrytest.Server, repo, ref, mediaType string, body []byte) digest.Digest {
	t.Helper()
	res := mfDo(t, s, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mfCT(mediaType), body)
	if res.code != http.StatusCreated {
		t.Fatalf("push manifest %s:%s: status %d, body %s", repo, ref, res.code, res.body)
	}
	return digest.Digest(res.header.Get("Docker-Content-Digest"))
}

// mfPushImage pushes mfOCI with its blobs to repo under tag.
func mfPushImage(t testing.TB, s *registrytest.Server, repo, tag string) {
	t.Helper()
	mfPushImageBlobs(t, s, repo)
	mfPutManifest(t, s, repo, tag, v1.MediaTypeImageManifest, mfOCI)
}

// mfPushAllKinds pushes an OCI image, an OCI index, a Docker manifest and a
// Docker manifest list to repo, tagged oci, oci-index, docker, docker-list.
func mfPushAllKinds(t testing.TB, s *registrytest.Server, repo string) {
	t.Helper()
	mfPushImageBlobs(t, s, repo)
	mfPutManifest(t, s, repo, "oci", v1.MediaTypeImageManifest, mfOCI)
	mfPutManifest(t, s, repo, "oci-index", v1.MediaTypeImageIndex, mfOCIIndex)
	mfPutManifest(t, s, repo, "docker", registry.MediaTypeDockerManifest, mfDocker)
	mfPutManifest(t, s, repo, "docker-list", registry.MediaTypeDockerManifestList, mfDockerList)
}

// mfWantManifest checks that ref of repo serves body as mediaType.
func mfWantManifest(t testing.TB, s *registrytest.Server, repo, ref, mediaType string, body []byte) {
	t.Helper()
	res := mfDo(t, s, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil, nil)
	if res.code != http.StatusOK {
		t.Fatalf("GET %s:%s: status %d, want 200; body %s", repo, ref, res.code, res.body)
	}
	if !bytes.Equal(res.body, body) {
		t.Errorf("GET %s:%s served %d bytes that differ from the %d pushed", repo, ref, len(res.body), len(body))
	}
	if got := res.header.Get("Content-Type"); got != mediaType {
		t.Errorf("GET %s:%s: Content-Type %q, want %q", repo, ref, got, mediaType)
	}
}

// mfWantNoManifest checks that ref of repo is not served.
func mfWantNoManifest(t testing.TB, s *registrytest.Server, repo, ref, wantErrCode string) {
	t.Helper()
	res := mfDo(t, s, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, nil, nil)
	if res.code != http.StatusNotFound {
		t.Fatalf("GET %s:%s: status %d, want 404; body %s", repo, ref, res.code, res.body)
	}
	if codes := mfErrCodes(t, res.body); !slices.Equal(codes, []string{wantErrCode}) {
		t.Errorf("GET %s:%s: error codes %v, want [%s]", repo, ref, codes, wantErrCode)
	}
}

// mfWantDigest checks that ref of repo resolves to d.
func mfWantDigest(t testing.TB, s *registrytest.Server, repo, ref string, d digest.Digest) {
	t.Helper()
	res := mfDo(t, s, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, nil, nil)
	if res.code != http.StatusOK {
		t.Fatalf("HEAD %s:%s: status %d, want 200", repo, ref, res.code)
	}
	if got := res.header.Get("Docker-Content-Digest"); got != d.String() {
		t.Errorf("%s:%s resolves to %s, want %s", repo, ref, got, d)
	}
}

// mfWantTags checks repo's tag list.
func mfWantTags(t testing.TB, s *registrytest.Server, repo string, want ...string) {
	t.Helper()
	res := mfDo(t, s, http.MethodGet, "/v2/"+repo+"/tags/list", nil, nil)
	if res.code != http.StatusOK {
		t.Fatalf("GET tags of %s: status %d, body %s", repo, res.code, res.body)
	}
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(res.body, &list); err != nil {
		t.Fatalf("tags of %s: %v", repo, err)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(list.Tags, want) {
		t.Errorf("tags of %s are %q, want %q", repo, list.Tags, want)
	}
}

// mfCase is one HTTP call with what it must answer.
type mfCase struct {
	name string
	// opts configure the case's server.
	opts  []registrytest.Option
	setup func(t *testing.T, s *registrytest.Server)

	method  string
	path    string
	header  http.Header
	body    []byte
	chunked bool

	wantCode    int
	wantErrCode string
	// wantHeader lists exact header values; "" means the header is absent.
	wantHeader map[string]string
	// wantBody, when not nil, is the exact response body.
	wantBody []byte
	// check asserts stored state after the call.
	check func(t *testing.T, s *registrytest.Server, res mfResult)
}

// mfRun runs each case against a fresh server.
func mfRun(t *testing.T, cases []mfCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := registrytest.NewServer(t, c.opts...)
			if c.setup != nil {
				c.setup(t, s)
			}
			res, err := mfSend(s, mfRequest{method: c.method, path: c.path, header: c.header, body: c.body, chunked: c.chunked})
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, c.path, err)
			}
			if res.code != c.wantCode {
				t.Fatalf("%s %s: status %d, want %d; body %s", c.method, c.path, res.code, c.wantCode, res.body)
			}
			if c.method == http.MethodHead {
				if len(res.body) != 0 {
					t.Errorf("HEAD answered with a %d-byte body", len(res.body))
				}
				if c.wantErrCode != "" {
					t.Fatal("bad test: a HEAD response has no body to carry an error code")
				}
			}
			if c.wantErrCode != "" {
				if codes := mfErrCodes(t, res.body); !slices.Equal(codes, []string{c.wantErrCode}) {
					t.Errorf("error codes %v, want [%s]; body %s", codes, c.wantErrCode, res.body)
				}
				if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("error Content-Type %q, want application/json", ct)
				}
			}
			for k, want := range c.wantHeader {
				got, present := res.header.Get(k), len(res.header.Values(k)) > 0
				switch {
				case want == "" && present:
					t.Errorf("header %s: %q, want none", k, got)
				case want != "" && got != want:
					t.Errorf("header %s: %q, want %q", k, got, want)
				}
			}
			if c.wantBody != nil && !bytes.Equal(res.body, c.wantBody) {
				t.Errorf("body:\n%s\nwant:\n%s", res.body, c.wantBody)
			}
			if c.check != nil {
				c.check(t, s, res)
			}
		})
	}
}

// mfSetupBlobs is a setup that pushes mfConfig and mfLayer to repo.
func mfSetupBlobs(repo string) func(*testing.T, *registrytest.Server) {
	return func(t *testing.T, s *registrytest.Server) { mfPushImageBlobs(t, s, repo) }
}

func mfSetupAllKinds(repo string) func(*testing.T, *registrytest.Server) {
	return func(t *testing.T, s *registrytest.Server) { mfPushAllKinds(t, s, repo) }
}

// mfCheckStored asserts that ref of repo now serves body as mediaType.
func mfCheckStored(repo, ref, mediaType string, body []byte) func(*testing.T, *registrytest.Server, mfResult) {
	return func(t *testing.T, s *registrytest.Server, _ mfResult) {
		mfWantManifest(t, s, repo, ref, mediaType, body)
	}
}

// mfCheckNotStored asserts that a rejected push left nothing behind: not
// the manifest by its digest, nor a tag.
func mfCheckNotStored(repo string, body []byte, tags ...string) func(*testing.T, *registrytest.Server, mfResult) {
	return func(t *testing.T, s *registrytest.Server, _ mfResult) {
		mfWantNoManifest(t, s, repo, digest.FromBytes(body).String(), "MANIFEST_UNKNOWN")
		for _, tag := range tags {
			mfWantNoManifest(t, s, repo, tag, "MANIFEST_UNKNOWN")
		}
		mfWantTags(t, s, repo)
	}
}

func TestManifestPut(t *testing.T) {
	oci := v1.MediaTypeImageManifest
	schema1Body := []byte(`{"schemaVersion":1,"name":"app","tag":"v1","architecture":"amd64",` +
		`"fsLayers":[{"blobSum":"` + digest.FromBytes(mfLayer).String() + `"}],"history":[{"v1Compatibility":"{}"}]}`)
	wrongDigest := digest.FromBytes([]byte("not the manifest"))
	sha512Digest := digest.SHA512.FromBytes(mfOCI)
	withSubject := mfJSON(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: oci,
		Config:    mfDesc(v1.MediaTypeImageConfig, mfConfig),
		Layers:    []v1.Descriptor{mfDesc(v1.MediaTypeImageLayerGzip, mfLayer)},
		Subject:   &v1.Descriptor{MediaType: oci, Digest: mfDockerDigest, Size: int64(len(mfDocker))},
	})
	missingLayer := mfOCIManifestWith(mfDesc(v1.MediaTypeImageLayerGzip, mfNeverPushed))
	missingChild := mfIndex(v1.MediaTypeImageIndex, mfDesc(oci, missingLayer))
	nonDistributable := mfOCIManifestWith(
		mfDesc(v1.MediaTypeImageLayerGzip, mfLayer),
		v1.Descriptor{
			MediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
			Digest:    digest.FromBytes(mfNeverPushed), Size: int64(len(mfNeverPushed)),
			URLs: []string{"https://example.com/layer.tar.gz"},
		})
	foreignLayer := mfJSON(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: registry.MediaTypeDockerManifest,
		Config:    mfDesc("application/vnd.docker.container.image.v1+json", mfConfig),
		Layers: []v1.Descriptor{{
			MediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
			Digest:    digest.FromBytes(mfNeverPushed), Size: int64(len(mfNeverPushed)),
			URLs: []string{"https://example.com/windows-base.tar.gz"},
		}},
	})
	noMediaType := []byte(`{"schemaVersion":2,"config":` + string(mfJSON(mfDesc(v1.MediaTypeImageConfig, mfConfig))) + `,"layers":[]}`)
	noConfig := []byte(`{"schemaVersion":2,"mediaType":"` + oci + `","layers":[]}`)
	atLimit := mfManifestOfSize(mfMaxManifest)
	overLimit := mfManifestOfSize(mfMaxManifest + 1)
	wayOverLimit := mfManifestOfSize(mfMaxManifest + 64<<10)

	mfRun(t, []mfCase{
		{
			name: "OCI image manifest by tag", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: mfOCI,
			wantCode: 201,
			wantHeader: map[string]string{
				"Location":              "/v2/app/manifests/" + mfOCIDigest.String(),
				"Docker-Content-Digest": mfOCIDigest.String(),
				"OCI-Subject":           "",
			},
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantManifest(t, s, "app", "v1", oci, mfOCI)
				mfWantManifest(t, s, "app", mfOCIDigest.String(), oci, mfOCI)
				mfWantTags(t, s, "app", "v1")
			},
		},
		{
			name: "OCI index by tag",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushImage(t, s, "app", "child")
			},
			method: "PUT", path: "/v2/app/manifests/multi", header: mfCT(v1.MediaTypeImageIndex), body: mfOCIIndex,
			wantCode: 201,
			wantHeader: map[string]string{
				"Location":              "/v2/app/manifests/" + mfIndexDigest.String(),
				"Docker-Content-Digest": mfIndexDigest.String(),
			},
			check: mfCheckStored("app", "multi", v1.MediaTypeImageIndex, mfOCIIndex),
		},
		{
			name: "Docker schema 2 manifest by tag", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(registry.MediaTypeDockerManifest), body: mfDocker,
			wantCode: 201,
			wantHeader: map[string]string{
				"Location":              "/v2/app/manifests/" + mfDockerDigest.String(),
				"Docker-Content-Digest": mfDockerDigest.String(),
			},
			check: mfCheckStored("app", "v1", registry.MediaTypeDockerManifest, mfDocker),
		},
		{
			name: "Docker manifest list by tag",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushImageBlobs(t, s, "app")
				mfPutManifest(t, s, "app", mfDockerDigest.String(), registry.MediaTypeDockerManifest, mfDocker)
			},
			method: "PUT", path: "/v2/app/manifests/multi", header: mfCT(registry.MediaTypeDockerManifestList), body: mfDockerList,
			wantCode: 201,
			wantHeader: map[string]string{
				"Location":              "/v2/app/manifests/" + mfListDigest.String(),
				"Docker-Content-Digest": mfListDigest.String(),
			},
			check: mfCheckStored("app", "multi", registry.MediaTypeDockerManifestList, mfDockerList),
		},
		{
			name: "multi-component repository name", setup: mfSetupBlobs("team/app/api"),
			method: "PUT", path: "/v2/team/app/api/manifests/v1", header: mfCT(oci), body: mfOCI,
			wantCode:   201,
			wantHeader: map[string]string{"Location": "/v2/team/app/api/manifests/" + mfOCIDigest.String()},
			check:      mfCheckStored("team/app/api", "v1", oci, mfOCI),
		},
		{
			name: "media type taken from the body when Content-Type has parameters", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci + "; charset=utf-8"), body: mfOCI,
			wantCode: 201,
			check:    mfCheckStored("app", "v1", oci, mfOCI),
		},
		{
			name: "by its digest", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + mfOCIDigest.String(), header: mfCT(oci), body: mfOCI,
			wantCode: 201,
			wantHeader: map[string]string{
				"Location":              "/v2/app/manifests/" + mfOCIDigest.String(),
				"Docker-Content-Digest": mfOCIDigest.String(),
				"OCI-Tag":               "",
			},
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantManifest(t, s, "app", mfOCIDigest.String(), oci, mfOCI)
				mfWantTags(t, s, "app")
			},
		},
		{
			name: "by a digest of other content is DIGEST_INVALID", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + wrongDigest.String(), header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "DIGEST_INVALID",
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantNoManifest(t, s, "app", wrongDigest.String(), "MANIFEST_UNKNOWN")
				mfWantNoManifest(t, s, "app", mfOCIDigest.String(), "MANIFEST_UNKNOWN")
			},
		},
		{
			name: "by a malformed digest is DIGEST_INVALID", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/sha256:abc", header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "DIGEST_INVALID",
		},
		{
			name: "by a sha512 digest", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + sha512Digest.String(), header: mfCT(oci), body: mfOCI,
			wantCode: 201,
			wantHeader: map[string]string{
				"Location":              "/v2/app/manifests/" + sha512Digest.String(),
				"Docker-Content-Digest": sha512Digest.String(),
			},
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantManifest(t, s, "app", sha512Digest.String(), oci, mfOCI)
				mfWantDigest(t, s, "app", sha512Digest.String(), sha512Digest)
			},
		},
		{
			name: "by a digest of an unsupported algorithm is DIGEST_INVALID", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + digest.SHA384.FromBytes(mfOCI).String(), header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "DIGEST_INVALID",
		},
		{
			name: "by digest with tag parameters sets every tag", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + mfOCIDigest.String() + "?tag=a&tag=b", header: mfCT(oci), body: mfOCI,
			wantCode: 201,
			check: func(t *testing.T, s *registrytest.Server, res mfResult) {
				if got := res.header.Values("OCI-Tag"); !slices.Equal(got, []string{"a", "b"}) {
					t.Errorf("OCI-Tag headers %q, want [a b]", got)
				}
				mfWantDigest(t, s, "app", "a", mfOCIDigest)
				mfWantDigest(t, s, "app", "b", mfOCIDigest)
				mfWantTags(t, s, "app", "a", "b")
			},
		},
		{
			name: "an invalid tag parameter is refused and nothing is stored", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + mfOCIDigest.String() + "?tag=ok&tag=-bad", header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckNotStored("app", mfOCI, "ok"),
		},
		{
			name: "a tag of 128 characters is accepted", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + strings.Repeat("t", 128), header: mfCT(oci), body: mfOCI,
			wantCode: 201,
			check:    mfCheckStored("app", strings.Repeat("t", 128), oci, mfOCI),
		},
		{
			name: "tags are case-sensitive", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/Latest", header: mfCT(oci), body: mfOCI,
			wantCode: 201,
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantDigest(t, s, "app", "Latest", mfOCIDigest)
				mfWantNoManifest(t, s, "app", "latest", "MANIFEST_UNKNOWN")
			},
		},
		{
			name: "an invalid tag is refused", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/-v1", header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckNotStored("app", mfOCI),
		},
		{
			name: "a tag of 129 characters is refused", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/" + strings.Repeat("t", 129), header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckNotStored("app", mfOCI),
		},
		{
			name:   "an invalid repository name is NAME_INVALID",
			method: "PUT", path: "/v2/App/manifests/v1", header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "NAME_INVALID",
		},
		{
			name: "re-pushing a tag moves it",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushImage(t, s, "app", "latest")
				mfPushImageBlobs(t, s, "app")
			},
			method: "PUT", path: "/v2/app/manifests/latest", header: mfCT(registry.MediaTypeDockerManifest), body: mfDocker,
			wantCode: 201,
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantManifest(t, s, "app", "latest", registry.MediaTypeDockerManifest, mfDocker)
				mfWantManifest(t, s, "app", mfOCIDigest.String(), oci, mfOCI)
				mfWantTags(t, s, "app", "latest")
			},
		},
		{
			name: "a subject is echoed in OCI-Subject", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/sig", header: mfCT(oci), body: withSubject,
			wantCode:   201,
			wantHeader: map[string]string{"OCI-Subject": mfDockerDigest.String()},
			check:      mfCheckStored("app", "sig", oci, withSubject),
		},

		// Docker schema 1 is refused outright.
		{
			name: "schema 1 Content-Type", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1",
			header: mfCT("application/vnd.docker.distribution.manifest.v1+json"), body: schema1Body,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckSchema1Refused,
		},
		{
			name: "signed schema 1 Content-Type", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1",
			header: mfCT("application/vnd.docker.distribution.manifest.v1+prettyjws"), body: schema1Body,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckSchema1Refused,
		},
		{
			name: "schemaVersion 1 body under an OCI Content-Type", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: schema1Body,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckSchema1Refused,
		},

		// Malformed manifests.
		{
			name: "invalid JSON", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: []byte(`{"schemaVersion":2,`),
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckNotStored("app", []byte(`{"schemaVersion":2,`), "v1"),
		},
		{
			name: "empty body", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: []byte{},
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
		},
		{
			name: "without Content-Type the body's mediaType is used", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", body: mfOCI,
			wantCode: 201,
			check:    mfCheckStored("app", "v1", oci, mfOCI),
		},
		{
			name: "without mediaType the Content-Type is used", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: noMediaType,
			wantCode: 201,
			check:    mfCheckStored("app", "v1", oci, noMediaType),
		},
		{
			name: "with neither mediaType nor Content-Type", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", body: noMediaType,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckNotStored("app", noMediaType, "v1"),
		},
		{
			name: "mediaType differs from Content-Type", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(registry.MediaTypeDockerManifest), body: mfOCI,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckNotStored("app", mfOCI, "v1"),
		},
		{
			name: "unknown media type", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT("application/vnd.example.thing+json"),
			body:     []byte(`{"schemaVersion":2,"config":` + string(mfJSON(mfDesc(v1.MediaTypeImageConfig, mfConfig))) + `}`),
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
		},
		{
			name: "no config", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: noConfig,
			wantCode: 400, wantErrCode: "MANIFEST_INVALID",
			check: mfCheckNotStored("app", noConfig, "v1"),
		},

		// References must have been pushed, unless they need not be.
		{
			name: "a layer never pushed is MANIFEST_BLOB_UNKNOWN", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: missingLayer,
			wantCode: 400, wantErrCode: "MANIFEST_BLOB_UNKNOWN",
			check: mfCheckNotStored("app", missingLayer, "v1"),
		},
		{
			name: "a config never pushed is MANIFEST_BLOB_UNKNOWN",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushBlob(t, s, "app", mfLayer)
			},
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "MANIFEST_BLOB_UNKNOWN",
			check: mfCheckNotStored("app", mfOCI, "v1"),
		},
		{
			name: "a blob deleted from the repository no longer counts",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushImageBlobs(t, s, "app")
				if res := mfDo(t, s, "DELETE", "/v2/app/blobs/"+digest.FromBytes(mfLayer).String(), nil, nil); res.code != 202 {
					t.Fatalf("delete blob: status %d, body %s", res.code, res.body)
				}
			},
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "MANIFEST_BLOB_UNKNOWN",
			check: mfCheckNotStored("app", mfOCI, "v1"),
		},
		{
			name: "a blob pushed to another repository does not count",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushImageBlobs(t, s, "other")
				mfPushBlob(t, s, "app", []byte("something else"))
			},
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: mfOCI,
			wantCode: 400, wantErrCode: "MANIFEST_BLOB_UNKNOWN",
		},
		{
			name: "an index child never pushed is MANIFEST_UNKNOWN with 400", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/multi", header: mfCT(v1.MediaTypeImageIndex), body: missingChild,
			wantCode: 400, wantErrCode: "MANIFEST_UNKNOWN",
			check: mfCheckNotStored("app", missingChild, "multi"),
		},
		{
			name: "a non-distributable layer with urls need not be pushed", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: nonDistributable,
			wantCode: 201,
			check:    mfCheckStored("app", "v1", oci, nonDistributable),
		},
		{
			name: "a Docker foreign layer need not be pushed", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(registry.MediaTypeDockerManifest), body: foreignLayer,
			wantCode: 201,
			check:    mfCheckStored("app", "v1", registry.MediaTypeDockerManifest, foreignLayer),
		},
		{
			name: "sparse: a missing layer is accepted", opts: []registrytest.Option{registrytest.Sparse()},
			setup:  mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: missingLayer,
			wantCode: 201,
			check:    mfCheckStored("app", "v1", oci, missingLayer),
		},
		{
			name: "sparse: a missing index child is accepted", opts: []registrytest.Option{registrytest.Sparse()},
			method: "PUT", path: "/v2/app/manifests/multi", header: mfCT(v1.MediaTypeImageIndex), body: missingChild,
			wantCode: 201,
			check:    mfCheckStored("app", "multi", v1.MediaTypeImageIndex, missingChild),
		},

		// The 4 MiB limit.
		{
			name: "exactly 4 MiB is accepted", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/big", header: mfCT(oci), body: atLimit,
			wantCode: 201,
			check:    mfCheckStored("app", "big", oci, atLimit),
		},
		{
			name: "exactly 4 MiB chunked is accepted", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/big", header: mfCT(oci), body: atLimit, chunked: true,
			wantCode: 201,
			check:    mfCheckStored("app", "big", oci, atLimit),
		},
		{
			name: "one byte over 4 MiB is SIZE_INVALID 413", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/big", header: mfCT(oci), body: overLimit,
			wantCode: 413, wantErrCode: "SIZE_INVALID",
			check: mfCheckNotStored("app", overLimit, "big"),
		},
		{
			name: "one byte over 4 MiB chunked is SIZE_INVALID 413", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/big", header: mfCT(oci), body: overLimit, chunked: true,
			wantCode: 413, wantErrCode: "SIZE_INVALID",
			check: mfCheckNotStored("app", overLimit, "big"),
		},
		{
			name: "a configured limit is enforced",
			opts: []registrytest.Option{registrytest.WithConfig(func(c *config.Config) {
				c.Validation.MaxManifestBytes = int64(len(mfOCI)) - 1
			})},
			setup:  mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: mfOCI,
			wantCode: 413, wantErrCode: "SIZE_INVALID",
			check: mfCheckNotStored("app", mfOCI, "v1"),
		},
		{
			name: "a configured limit is enforced on chunked bodies",
			opts: []registrytest.Option{registrytest.WithConfig(func(c *config.Config) {
				c.Validation.MaxManifestBytes = int64(len(mfOCI)) - 1
			})},
			setup:  mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(oci), body: mfOCI, chunked: true,
			wantCode: 413, wantErrCode: "SIZE_INVALID",
			check: mfCheckNotStored("app", mfOCI, "v1"),
		},
		{
			name: "far over 4 MiB chunked is SIZE_INVALID 413", setup: mfSetupBlobs("app"),
			method: "PUT", path: "/v2/app/manifests/big", header: mfCT(oci), body: wayOverLimit, chunked: true,
			wantCode: 413, wantErrCode: "SIZE_INVALID",
			check: mfCheckNotStored("app", wayOverLimit, "big"),
		},
	})
}

// mfCheckSchema1Refused asserts that the error says schema 1 is why, and
// that nothing was stored.
func mfCheckSchema1Refused(t *testing.T, s *registrytest.Server, res mfResult) {
	if msg := mfErrMessage(t, res.body); !strings.Contains(strings.ToLower(msg), "schema 1") {
		t.Errorf("message %q does not say schema 1 is unsupported", msg)
	}
	mfWantNoManifest(t, s, "app", "v1", "MANIFEST_UNKNOWN")
}

func TestManifestGet(t *testing.T) {
	oci := v1.MediaTypeImageManifest
	getHeaders := func(mediaType string, body []byte) map[string]string {
		d := digest.FromBytes(body).String()
		return map[string]string{
			"Content-Type":          mediaType,
			"Docker-Content-Digest": d,
			"ETag":                  `"` + d + `"`,
			"Content-Length":        strconv.Itoa(len(body)),
		}
	}
	kinds := []struct {
		tag       string
		mediaType string
		body      []byte
	}{
		{"oci", oci, mfOCI},
		{"oci-index", v1.MediaTypeImageIndex, mfOCIIndex},
		{"docker", registry.MediaTypeDockerManifest, mfDocker},
		{"docker-list", registry.MediaTypeDockerManifestList, mfDockerList},
	}
	var cases []mfCase
	for _, k := range kinds {
		d := digest.FromBytes(k.body).String()
		cases = append(cases,
			mfCase{
				name: "GET " + k.tag + " by tag", setup: mfSetupAllKinds("app"),
				method: "GET", path: "/v2/app/manifests/" + k.tag,
				wantCode: 200, wantHeader: getHeaders(k.mediaType, k.body), wantBody: k.body,
			},
			mfCase{
				name: "GET " + k.tag + " by digest", setup: mfSetupAllKinds("app"),
				method: "GET", path: "/v2/app/manifests/" + d,
				wantCode: 200, wantHeader: getHeaders(k.mediaType, k.body), wantBody: k.body,
			},
			mfCase{
				name: "HEAD " + k.tag + " by tag", setup: mfSetupAllKinds("app"),
				method: "HEAD", path: "/v2/app/manifests/" + k.tag,
				wantCode: 200, wantHeader: getHeaders(k.mediaType, k.body),
			},
			mfCase{
				name: "HEAD " + k.tag + " by digest", setup: mfSetupAllKinds("app"),
				method: "HEAD", path: "/v2/app/manifests/" + d,
				wantCode: 200, wantHeader: getHeaders(k.mediaType, k.body),
			},
		)
	}
	cases = append(cases, []mfCase{
		// Accept negotiation.
		{
			name: "an OCI index is not served to a client that accepts only Docker schema 2", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci-index",
			header:   mfHeader("Accept", registry.MediaTypeDockerManifest),
			wantCode: 404, wantErrCode: "MANIFEST_UNKNOWN",
		},
		{
			name: "nor HEAD to such a client", setup: mfSetupAllKinds("app"),
			method: "HEAD", path: "/v2/app/manifests/oci-index",
			header:   mfHeader("Accept", registry.MediaTypeDockerManifest),
			wantCode: 404,
		},
		{
			name: "an OCI index is served to Accept */*", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci-index", header: mfHeader("Accept", "*/*"),
			wantCode: 200, wantHeader: getHeaders(v1.MediaTypeImageIndex, mfOCIIndex), wantBody: mfOCIIndex,
		},
		{
			name: "an OCI index is served when no Accept is sent", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci-index",
			wantCode: 200, wantHeader: getHeaders(v1.MediaTypeImageIndex, mfOCIIndex), wantBody: mfOCIIndex,
		},
		{
			name: "an OCI index is served to an Accept naming it", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci-index", header: mfHeader("Accept", v1.MediaTypeImageIndex),
			wantCode: 200, wantHeader: getHeaders(v1.MediaTypeImageIndex, mfOCIIndex), wantBody: mfOCIIndex,
		},
		{
			name: "an OCI index is served to an Accept list naming it among others", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci-index",
			header: mfHeader(
				"Accept", registry.MediaTypeDockerManifest+", "+registry.MediaTypeDockerManifestList,
				"Accept", oci+";q=0.9, "+v1.MediaTypeImageIndex+";q=0.8"),
			wantCode: 200, wantHeader: getHeaders(v1.MediaTypeImageIndex, mfOCIIndex), wantBody: mfOCIIndex,
		},
		{
			name: "a Docker manifest is served to an Accept naming it", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/docker", header: mfHeader("Accept", registry.MediaTypeDockerManifest),
			wantCode: 200, wantHeader: getHeaders(registry.MediaTypeDockerManifest, mfDocker), wantBody: mfDocker,
		},

		// Unknown references.
		{
			name: "an unknown tag in an existing repository is MANIFEST_UNKNOWN", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/nope",
			wantCode: 404, wantErrCode: "MANIFEST_UNKNOWN",
		},
		{
			name: "an unknown digest in an existing repository is MANIFEST_UNKNOWN", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/" + digest.FromBytes(mfNeverPushed).String(),
			wantCode: 404, wantErrCode: "MANIFEST_UNKNOWN",
		},
		{
			name: "a manifest of another repository is MANIFEST_UNKNOWN",
			setup: func(t *testing.T, s *registrytest.Server) {
				mfPushAllKinds(t, s, "other")
				mfPushBlob(t, s, "app", mfLayer)
			},
			method: "GET", path: "/v2/app/manifests/" + mfOCIDigest.String(),
			wantCode: 404, wantErrCode: "MANIFEST_UNKNOWN",
		},
		{
			name:   "a tag in an unknown repository is NAME_UNKNOWN",
			method: "GET", path: "/v2/nowhere/manifests/latest",
			wantCode: 404, wantErrCode: "NAME_UNKNOWN",
		},
		{
			name:   "a digest in an unknown repository is NAME_UNKNOWN",
			method: "GET", path: "/v2/nowhere/manifests/" + mfOCIDigest.String(),
			wantCode: 404, wantErrCode: "NAME_UNKNOWN",
		},
		{
			name:   "HEAD in an unknown repository is 404",
			method: "HEAD", path: "/v2/nowhere/manifests/latest",
			wantCode: 404,
		},
		{
			name: "an invalid tag is MANIFEST_UNKNOWN", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/-oci",
			wantCode: 404, wantErrCode: "MANIFEST_UNKNOWN",
		},
		{
			name: "a malformed digest is DIGEST_INVALID", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/sha256:xyz",
			wantCode: 400, wantErrCode: "DIGEST_INVALID",
		},
		{
			name:   "an invalid repository name is NAME_INVALID",
			method: "GET", path: "/v2/-app/manifests/latest",
			wantCode: 400, wantErrCode: "NAME_INVALID",
		},

		// Conditional requests.
		{
			name: "If-None-Match with the ETag is 304", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci", header: mfHeader("If-None-Match", `"`+mfOCIDigest.String()+`"`),
			wantCode: 304, wantBody: []byte{},
			wantHeader: map[string]string{"ETag": `"` + mfOCIDigest.String() + `"`},
		},
		{
			name: "If-None-Match with a weak ETag is 304", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci", header: mfHeader("If-None-Match", `W/"`+mfOCIDigest.String()+`"`),
			wantCode: 304, wantBody: []byte{},
		},
		{
			name: "If-None-Match with one of several ETags is 304", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci",
			header:   mfHeader("If-None-Match", `"`+mfDockerDigest.String()+`", "`+mfOCIDigest.String()+`"`),
			wantCode: 304, wantBody: []byte{},
		},
		{
			name: "HEAD with If-None-Match with the ETag is 304", setup: mfSetupAllKinds("app"),
			method: "HEAD", path: "/v2/app/manifests/oci", header: mfHeader("If-None-Match", `"`+mfOCIDigest.String()+`"`),
			wantCode: 304,
		},
		{
			// RFC 9110 section 13.1.2: "*" matches any current
			// representation, and a GET or HEAD whose condition is false
			// MUST be answered 304.
			name: "If-None-Match * is 304 when the manifest exists", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci", header: mfHeader("If-None-Match", "*"),
			wantCode: 304, wantBody: []byte{},
		},
		{
			name: "If-None-Match with another ETag is 200", setup: mfSetupAllKinds("app"),
			method: "GET", path: "/v2/app/manifests/oci", header: mfHeader("If-None-Match", `"`+mfDockerDigest.String()+`"`),
			wantCode: 200, wantBody: mfOCI,
		},
	}...)
	mfRun(t, cases)
}

func TestManifestDelete(t *testing.T) {
	twoTags := func(t *testing.T, s *registrytest.Server) {
		mfPushImageBlobs(t, s, "app")
		mfPutManifest(t, s, "app", mfOCIDigest.String()+"?tag=v1&tag=latest", v1.MediaTypeImageManifest, mfOCI)
		mfPutManifest(t, s, "app", "docker", registry.MediaTypeDockerManifest, mfDocker)
	}
	mfRun(t, []mfCase{
		{
			name: "by tag removes only that tag", setup: twoTags,
			method: "DELETE", path: "/v2/app/manifests/v1",
			wantCode: 202,
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantNoManifest(t, s, "app", "v1", "MANIFEST_UNKNOWN")
				mfWantManifest(t, s, "app", mfOCIDigest.String(), v1.MediaTypeImageManifest, mfOCI)
				mfWantDigest(t, s, "app", "latest", mfOCIDigest)
				mfWantDigest(t, s, "app", "docker", mfDockerDigest)
				mfWantTags(t, s, "app", "docker", "latest")
			},
		},
		{
			name: "by digest removes the manifest and all its tags", setup: twoTags,
			method: "DELETE", path: "/v2/app/manifests/" + mfOCIDigest.String(),
			wantCode: 202,
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantNoManifest(t, s, "app", mfOCIDigest.String(), "MANIFEST_UNKNOWN")
				mfWantNoManifest(t, s, "app", "v1", "MANIFEST_UNKNOWN")
				mfWantNoManifest(t, s, "app", "latest", "MANIFEST_UNKNOWN")
				mfWantDigest(t, s, "app", "docker", mfDockerDigest)
				mfWantTags(t, s, "app", "docker")
			},
		},
		{
			name: "a deleted manifest can be pushed again",
			setup: func(t *testing.T, s *registrytest.Server) {
				twoTags(t, s)
				res := mfDo(t, s, "DELETE", "/v2/app/manifests/"+mfOCIDigest.String(), nil, nil)
				if res.code != 202 {
					t.Fatalf("delete: status %d", res.code)
				}
			},
			method: "PUT", path: "/v2/app/manifests/v1", header: mfCT(v1.MediaTypeImageManifest), body: mfOCI,
			wantCode: 201,
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantDigest(t, s, "app", "v1", mfOCIDigest)
				mfWantNoManifest(t, s, "app", "latest", "MANIFEST_UNKNOWN")
			},
		},
		{
			name: "an unknown tag is MANIFEST_UNKNOWN", setup: twoTags,
			method: "DELETE", path: "/v2/app/manifests/v2",
			wantCode: 404, wantErrCode: "MANIFEST_UNKNOWN",
			check: func(t *testing.T, s *registrytest.Server, _ mfResult) {
				mfWantTags(t, s, "app", "docker", "latest", "v1")
			},
		},
		{
			name: "an unknown digest is MANIFEST_UNKNOWN", setup: twoTags,
			method: "DELETE", path: "/v2/app/manifests/" + digest.FromBytes(mfNeverPushed).String(),
			wantCode: 404, wantErrCode: "MANIFEST_UNKNOWN",
		},
		{
			name:   "in an unknown repository is NAME_UNKNOWN",
			method: "DELETE", path: "/v2/nowhere/manifests/" + mfOCIDigest.String(),
			wantCode: 404, wantErrCode: "NAME_UNKNOWN",
		},
		{
			name: "a malformed digest is DIGEST_INVALID", setup: twoTags,
			method: "DELETE", path: "/v2/app/manifests/sha256:xyz",
			wantCode: 400, wantErrCode: "DIGEST_INVALID",
		},
	})
}

func TestManifestPut_ConcurrentPushesOfOneTagAllSucceed(t *testing.T) {
	const n = 16
	s := registrytest.NewServer(t)
	mfPushImageBlobs(t, s, "app")
	bodies := make([][]byte, n)
	pushed := make(map[digest.Digest]bool, n)
	for i := range bodies {
		bodies[i] = mfOCIManifest(map[string]string{"push": strconv.Itoa(i)})
		pushed[digest.FromBytes(bodies[i])] = true
	}

	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := mfSend(s, mfRequest{method: "PUT", path: "/v2/app/manifests/latest",
				header: mfCT(v1.MediaTypeImageManifest), body: bodies[i]})
			switch {
			case err != nil:
				errs[i] = err
			case res.code != http.StatusCreated:
				errs[i] = fmt.Errorf("status %d, body %s", res.code, res.body)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent pushes failed:\n%v", err)
	}

	res := mfDo(t, s, "GET", "/v2/app/manifests/latest", nil, nil)
	if res.code != http.StatusOK {
		t.Fatalf("GET latest: status %d", res.code)
	}
	got := digest.Digest(res.header.Get("Docker-Content-Digest"))
	if !pushed[got] || digest.FromBytes(res.body) != got {
		t.Errorf("latest is %s (body digest %s), not one of the pushed manifests", got, digest.FromBytes(res.body))
	}
	for d := range pushed {
		mfWantDigest(t, s, "app", d.String(), d)
	}
	mfWantTags(t, s, "app", "latest")
}

// TestManifestGet_NeverServesWhatAnotherReplicaMovedOrDeleted runs two
// servers on one data directory, as two replicas on one database. The
// manifest cache is keyed by digest and every pull asks the database which
// digest a tag names, so whatever b has cached, a tag moved or a manifest
// deleted through a is visible on b's very next request.
func TestManifestGet_NeverServesWhatAnotherReplicaMovedOrDeleted(t *testing.T) {
	a := registrytest.NewServer(t)
	b := registrytest.NewServer(t, registrytest.WithDataDir(a.DataDir))
	mfPushAllKinds(t, a, "app")
	oci, docker := v1.MediaTypeImageManifest, registry.MediaTypeDockerManifest
	mfPutManifest(t, a, "app", "moving", oci, mfOCI)

	// Warm b's cache by tag and by digest.
	mfWantManifest(t, b, "app", "moving", oci, mfOCI)
	mfWantManifest(t, b, "app", mfOCIDigest.String(), oci, mfOCI)
	mfWantManifest(t, b, "app", "docker", docker, mfDocker)

	mfPutManifest(t, a, "app", "moving", docker, mfDocker)
	mfWantManifest(t, b, "app", "moving", docker, mfDocker)
	mfWantDigest(t, b, "app", "moving", mfDockerDigest)

	if res := mfDo(t, a, http.MethodDelete, "/v2/app/manifests/"+mfOCIDigest.String(), nil, nil); res.code != http.StatusAccepted {
		t.Fatalf("delete on a: status %d", res.code)
	}
	mfWantNoManifest(t, b, "app", mfOCIDigest.String(), "MANIFEST_UNKNOWN")
	mfWantNoManifest(t, b, "app", "oci", "MANIFEST_UNKNOWN")

	if res := mfDo(t, a, http.MethodDelete, "/v2/app/manifests/moving", nil, nil); res.code != http.StatusAccepted {
		t.Fatalf("delete tag on a: status %d", res.code)
	}
	mfWantNoManifest(t, b, "app", "moving", "MANIFEST_UNKNOWN")
	// The manifest the tag named is still there by digest and by its other tag.
	mfWantManifest(t, b, "app", "docker", docker, mfDocker)
}

// TestManifestGet_DeletedAndPushedAgainIsServed checks the cache on one
// server across a delete and a second push of the same bytes.
func TestManifestGet_DeletedAndPushedAgainIsServed(t *testing.T) {
	s := registrytest.NewServer(t)
	mfPushImageBlobs(t, s, "app")
	oci := v1.MediaTypeImageManifest
	mfPutManifest(t, s, "app", "v1", oci, mfOCI)
	mfWantManifest(t, s, "app", "v1", oci, mfOCI)
	if res := mfDo(t, s, http.MethodDelete, "/v2/app/manifests/"+mfOCIDigest.String(), nil, nil); res.code != http.StatusAccepted {
		t.Fatalf("delete: status %d", res.code)
	}
	mfWantNoManifest(t, s, "app", "v1", "MANIFEST_UNKNOWN")
	mfWantNoManifest(t, s, "app", mfOCIDigest.String(), "MANIFEST_UNKNOWN")
	mfPutManifest(t, s, "app", "v2", oci, mfOCI)
	mfWantManifest(t, s, "app", "v2", oci, mfOCI)
	mfWantManifest(t, s, "app", mfOCIDigest.String(), oci, mfOCI)
	mfWantNoManifest(t, s, "app", "v1", "MANIFEST_UNKNOWN")
}
