package distribution_test

import (
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

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
