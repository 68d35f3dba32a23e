package distribution_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

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
