package distribution_test

import (
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

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
