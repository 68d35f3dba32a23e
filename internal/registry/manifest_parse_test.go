package registry

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Descriptors for hand-written manifests.
var (
	parseConfig  = `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + digest.FromString("config").String() + `","size":6}`
	parseLayer   = `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + digest.FromString("layer").String() + `","size":5}`
	parseChild   = `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("child").String() + `","size":5}`
	parseSubject = `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest.FromString("subject").String() + `","size":7}`
)

func TestParseManifest(t *testing.T) {
	const (
		oci      = MediaTypeOCIManifest
		index    = MediaTypeOCIIndex
		docker   = MediaTypeDockerManifest
		list     = MediaTypeDockerManifestList
		schema1  = "application/vnd.docker.distribution.manifest.v1+json"
		schema1S = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	)
	image := func(mediaType string) string {
		return `{"schemaVersion":2,"mediaType":"` + mediaType + `","config":` + parseConfig + `,"layers":[` + parseLayer + `]}`
	}
	idx := func(mediaType string) string {
		return `{"schemaVersion":2,"mediaType":"` + mediaType + `","manifests":[` + parseChild + `]}`
	}
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		// wantMediaType is the media type the manifest is stored under; ""
		// means the manifest is refused as ErrManifestInvalid.
		wantMediaType string
		wantSchema1   bool
	}{
		{name: "OCI image manifest", contentType: oci, body: image(oci), wantMediaType: oci},
		{name: "OCI index", contentType: index, body: idx(index), wantMediaType: index},
		{name: "Docker schema 2 manifest", contentType: docker, body: image(docker), wantMediaType: docker},
		{name: "Docker manifest list", contentType: list, body: idx(list), wantMediaType: list},
		{name: "Content-Type with parameters", contentType: oci + "; charset=utf-8", body: image(oci), wantMediaType: oci},
		{name: "Content-Type with spaces", contentType: " " + oci + " ", body: image(oci), wantMediaType: oci},
		{name: "no Content-Type: mediaType from the body", body: image(oci), wantMediaType: oci},
		{
			name: "no mediaType in the body: the Content-Type's", contentType: oci,
			body: `{"schemaVersion":2,"config":` + parseConfig + `,"layers":[]}`, wantMediaType: oci,
		},
		{
			name: "an index without manifests", contentType: index,
			body: `{"schemaVersion":2,"mediaType":"` + index + `","manifests":[]}`, wantMediaType: index,
		},
		{
			name: "unknown fields are ignored", contentType: oci,
			body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":` + parseConfig + `,"layers":[],"x-extra":{"a":[1,2]}}`, wantMediaType: oci,
		},
		{
			name: "with subject, artifactType and annotations", contentType: oci,
			body: `{"schemaVersion":2,"mediaType":"` + oci + `","artifactType":"application/vnd.example","config":` + parseConfig +
				`,"layers":[],"subject":` + parseSubject + `,"annotations":{"a":"b"}}`,
			wantMediaType: oci,
		},

		// Docker schema 1, however it is recognised.
		{name: "schema 1 Content-Type", contentType: schema1, body: `{"schemaVersion":1}`, wantSchema1: true},
		{name: "signed schema 1 Content-Type", contentType: schema1S, body: `{"schemaVersion":1}`, wantSchema1: true},
		{name: "schema 1 Content-Type with parameters", contentType: schema1 + "; charset=utf-8", body: `{}`, wantSchema1: true},
		{name: "schema 1 Content-Type with a schema 2 body", contentType: schema1, body: image(docker), wantSchema1: true},
		{name: "schemaVersion 1 under an OCI Content-Type", contentType: oci, body: `{"schemaVersion":1,"fsLayers":[]}`, wantSchema1: true},
		{name: "schemaVersion 1 without a Content-Type", body: `{"schemaVersion":1,"name":"a","tag":"b"}`, wantSchema1: true},
		{name: "fsLayers in a schemaVersion 2 body", contentType: docker, body: `{"schemaVersion":2,"fsLayers":[{"blobSum":"x"}]}`, wantSchema1: true},

		// Malformed.
		{name: "not JSON", contentType: oci, body: `not json`},
		{name: "truncated JSON", contentType: oci, body: image(oci)[:40]},
		{name: "empty body", contentType: oci, body: ``},
		{name: "JSON null", contentType: oci, body: `null`},
		{name: "JSON array", contentType: oci, body: `[]`},
		{name: "no schemaVersion", contentType: oci, body: `{"mediaType":"` + oci + `","config":` + parseConfig + `}`},
		{name: "schemaVersion 3", contentType: oci, body: `{"schemaVersion":3,"mediaType":"` + oci + `","config":` + parseConfig + `}`},
		{name: "schemaVersion as a string", contentType: oci, body: `{"schemaVersion":"2","mediaType":"` + oci + `","config":` + parseConfig + `}`},
		{name: "mediaType differs from Content-Type", contentType: docker, body: image(oci)},
		{name: "index mediaType under a manifest Content-Type", contentType: oci, body: idx(index)},
		{name: "neither mediaType nor Content-Type", body: `{"schemaVersion":2,"config":` + parseConfig + `}`},
		{name: "unknown media type", contentType: "application/vnd.example+json", body: `{"schemaVersion":2,"config":` + parseConfig + `}`},
		{name: "application/json", contentType: "application/json", body: `{"schemaVersion":2,"config":` + parseConfig + `}`},
		{name: "image manifest without config", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","layers":[` + parseLayer + `]}`},
		{name: "image manifest with null config", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":null}`},
		{name: "image manifest that lists manifests", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":` + parseConfig + `,"manifests":[` + parseChild + `]}`},
		{name: "index with config", contentType: index, body: `{"schemaVersion":2,"mediaType":"` + index + `","config":` + parseConfig + `,"manifests":[]}`},
		{name: "index with layers", contentType: index, body: `{"schemaVersion":2,"mediaType":"` + index + `","layers":[` + parseLayer + `],"manifests":[]}`},
		{name: "config without mediaType", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":{"digest":"` + digest.FromString("c").String() + `","size":1}}`},
		{name: "config with a malformed digest", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":{"mediaType":"a/b","digest":"sha256:123","size":1}}`},
		{name: "config without digest", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":{"mediaType":"a/b","size":1}}`},
		{name: "layer with a negative size", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":` + parseConfig + `,"layers":[{"mediaType":"a/b","digest":"` + digest.FromString("l").String() + `","size":-1}]}`},
		{name: "layer with an unknown digest algorithm", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":` + parseConfig + `,"layers":[{"mediaType":"a/b","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":0}]}`},
		{name: "index child without mediaType", contentType: index, body: `{"schemaVersion":2,"mediaType":"` + index + `","manifests":[{"digest":"` + digest.FromString("c").String() + `","size":1}]}`},
		{name: "index child with a malformed digest", contentType: index, body: `{"schemaVersion":2,"mediaType":"` + index + `","manifests":[{"mediaType":"` + oci + `","digest":"nope","size":1}]}`},
		{name: "subject with a malformed digest", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":` + parseConfig + `,"subject":{"mediaType":"` + oci + `","digest":"sha256:zz","size":1}}`},
		{name: "subject without mediaType", contentType: oci, body: `{"schemaVersion":2,"mediaType":"` + oci + `","config":` + parseConfig + `,"subject":{"digest":"` + digest.FromString("s").String() + `","size":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseManifest(tc.contentType, []byte(tc.body))
			if tc.wantMediaType != "" {
				if err != nil {
					t.Fatalf("parseManifest: %v", err)
				}
				if m.MediaType != tc.wantMediaType {
					t.Errorf("media type %q, want %q", m.MediaType, tc.wantMediaType)
				}
				return
			}
			if !errors.Is(err, ErrManifestInvalid) {
				t.Fatalf("parseManifest = %v, want ErrManifestInvalid", err)
			}
			if isSchema1 := err.Error() == schema1Refused().Error(); isSchema1 != tc.wantSchema1 {
				t.Errorf("error %q; refused as schema 1: %v, want %v", err, isSchema1, tc.wantSchema1)
			}
		})
	}
}

func TestParseManifest_References(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	desc := func(mediaType, s string, urls ...string) v1.Descriptor {
		return v1.Descriptor{MediaType: mediaType, Digest: d(s), Size: int64(len(s)), URLs: urls}
	}
	mustParse := func(t *testing.T, contentType string, v any) *manifest {
		t.Helper()
		body, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		m, err := parseManifest(contentType, body)
		if err != nil {
			t.Fatalf("parseManifest: %v", err)
		}
		return m
	}
	for _, tc := range []struct {
		name             string
		contentType      string
		manifest         any
		wantBlobs        []digest.Digest
		wantRequired     []digest.Digest
		wantChildren     []digest.Digest
		wantArtifactType string
	}{
		{
			name: "image: config and layers are required", contentType: MediaTypeOCIManifest,
			manifest: v1.Manifest{
				MediaType: MediaTypeOCIManifest,
				Config:    desc(v1.MediaTypeImageConfig, "config"),
				Layers:    []v1.Descriptor{desc(v1.MediaTypeImageLayerGzip, "l1"), desc(v1.MediaTypeImageLayer, "l2")},
			},
			wantBlobs:        []digest.Digest{d("config"), d("l1"), d("l2")},
			wantRequired:     []digest.Digest{d("config"), d("l1"), d("l2")},
			wantChildren:     []digest.Digest{},
			wantArtifactType: v1.MediaTypeImageConfig,
		},
		{
			name: "image: non-distributable and foreign layers are not required", contentType: MediaTypeOCIManifest,
			manifest: v1.Manifest{
				MediaType: MediaTypeOCIManifest,
				Config:    desc(v1.MediaTypeImageConfig, "config"),
				Layers: []v1.Descriptor{
					desc("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "nd", "https://example.com/nd"),
					desc(v1.MediaTypeImageLayerGzip, "l1"),
					desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "foreign", "https://example.com/f"),
				},
			},
			wantBlobs:        []digest.Digest{d("config"), d("nd"), d("l1"), d("foreign")},
			wantRequired:     []digest.Digest{d("config"), d("l1")},
			wantChildren:     []digest.Digest{},
			wantArtifactType: v1.MediaTypeImageConfig,
		},
		{
			name: "artifact: artifactType wins over the config media type", contentType: MediaTypeOCIManifest,
			manifest: v1.Manifest{
				MediaType:    MediaTypeOCIManifest,
				ArtifactType: "application/vnd.example.sbom",
				Config:       desc(v1.MediaTypeEmptyJSON, "{}"),
				Layers:       []v1.Descriptor{},
			},
			wantBlobs:        []digest.Digest{d("{}")},
			wantRequired:     []digest.Digest{d("{}")},
			wantChildren:     []digest.Digest{},
			wantArtifactType: "application/vnd.example.sbom",
		},
		{
			name: "index: children, no blobs", contentType: MediaTypeOCIIndex,
			manifest: v1.Index{
				MediaType: MediaTypeOCIIndex,
				Manifests: []v1.Descriptor{desc(MediaTypeOCIManifest, "amd64"), desc(MediaTypeOCIManifest, "arm64")},
			},
			wantBlobs:        nil,
			wantRequired:     nil,
			wantChildren:     []digest.Digest{d("amd64"), d("arm64")},
			wantArtifactType: "",
		},
		{
			name: "index: its own artifactType", contentType: MediaTypeOCIIndex,
			manifest: v1.Index{
				MediaType:    MediaTypeOCIIndex,
				ArtifactType: "application/vnd.example.bundle",
				Manifests:    []v1.Descriptor{},
			},
			wantChildren:     []digest.Digest{},
			wantArtifactType: "application/vnd.example.bundle",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, tc.contentType, withSchemaVersion(tc.manifest))
			if got := m.blobDigests(); !slices.Equal(got, tc.wantBlobs) {
				t.Errorf("blobDigests = %v, want %v", got, tc.wantBlobs)
			}
			if got := m.requiredBlobs(); !slices.Equal(got, tc.wantRequired) {
				t.Errorf("requiredBlobs = %v, want %v", got, tc.wantRequired)
			}
			if got := m.childDigests(); !slices.Equal(got, tc.wantChildren) {
				t.Errorf("childDigests = %v, want %v", got, tc.wantChildren)
			}
			if got := m.artifactType(); got != tc.wantArtifactType {
				t.Errorf("artifactType = %q, want %q", got, tc.wantArtifactType)
			}
		})
	}
}

// withSchemaVersion sets schemaVersion 2 on an image-spec manifest or index.
func withSchemaVersion(v any) any {
	switch m := v.(type) {
	case v1.Manifest:
		m.SchemaVersion = 2
		return m
	case v1.Index:
		m.SchemaVersion = 2
		return m
	}
	return v
}
