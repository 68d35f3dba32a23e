package distribution_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
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
type mfResult = blobResult

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
	return blobSend(s, r.method, r.path, r.header, r.body, r.chunked)
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
	if codes := errCodes(t, res.body); !slices.Equal(codes, []string{wantErrCode}) {
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
				if codes := errCodes(t, res.body); !slices.Equal(codes, []string{c.wantErrCode}) {
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
