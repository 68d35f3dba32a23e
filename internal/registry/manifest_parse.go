package registry

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types the registry stores.
const (
	MediaTypeOCIManifest        = v1.MediaTypeImageManifest
	MediaTypeOCIIndex           = v1.MediaTypeImageIndex
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// ManifestMediaTypes lists every media type PutManifest accepts.
var ManifestMediaTypes = []string{MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList}

// manifest is the union of the fields of image manifests and indexes that
// the registry needs to check and index.
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *v1.Descriptor    `json:"config"`
	Layers        []v1.Descriptor   `json:"layers"`
	Manifests     []v1.Descriptor   `json:"manifests"`
	Subject       *v1.Descriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
	FSLayers      json.RawMessage   `json:"fsLayers"`
}

func (m *manifest) isIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerManifestList
}

// parseManifest decodes and validates body, pushed with contentType.
func parseManifest(contentType string, body []byte) (*manifest, error) {
	ct := contentType
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if ct == mediaTypeDockerSchema1 || ct == mediaTypeDockerSchema1Signed {
		return nil, schema1Refused()
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, Errorf(ErrManifestInvalid, "manifest is not valid JSON: %v", err)
	}
	if m.SchemaVersion == 1 || len(m.FSLayers) > 0 {
		return nil, schema1Refused()
	}
	if m.SchemaVersion != 2 {
		return nil, Errorf(ErrManifestInvalid, "unsupported schemaVersion %d: expected 2", m.SchemaVersion)
	}
	switch {
	case m.MediaType != "" && ct != "" && m.MediaType != ct:
		return nil, Errorf(ErrManifestInvalid, "Content-Type %q does not match the manifest's mediaType %q", ct, m.MediaType)
	case m.MediaType == "" && ct == "":
		return nil, Errorf(ErrManifestInvalid, "manifest has no mediaType and the request no Content-Type")
	case m.MediaType == "":
		m.MediaType = ct
	}
	if !isManifestMediaType(m.MediaType) {
		return nil, Errorf(ErrManifestInvalid, "unsupported manifest media type %q; supported: %s", m.MediaType, strings.Join(ManifestMediaTypes, ", "))
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *manifest) validate() error {
	if m.isIndex() {
		if m.Config != nil || len(m.Layers) > 0 {
			return Errorf(ErrManifestInvalid, "an index must not have config or layers")
		}
		for i, d := range m.Manifests {
			if err := validateDescriptor(d, "manifests", i); err != nil {
				return err
			}
		}
	} else {
		if m.Config == nil {
			return Errorf(ErrManifestInvalid, "image manifest has no config descriptor")
		}
		if err := validateDescriptor(*m.Config, "config", -1); err != nil {
			return err
		}
		if len(m.Manifests) > 0 {
			return Errorf(ErrManifestInvalid, "an image manifest must not list manifests")
		}
		for i, d := range m.Layers {
			if err := validateDescriptor(d, "layers", i); err != nil {
				return err
			}
		}
	}
	if m.Subject != nil {
		if err := validateDescriptor(*m.Subject, "subject", -1); err != nil {
			return err
		}
	}
	return nil
}

func validateDescriptor(d v1.Descriptor, field string, i int) error {
	where := field
	if i >= 0 {
		where = field + "[" + strconv.Itoa(i) + "]"
	}
	if err := d.Digest.Validate(); err != nil {
		return Errorf(ErrManifestInvalid, "%s has an invalid digest %q: %v", where, truncate(string(d.Digest), 140), err)
	}
	if d.Size < 0 {
		return Errorf(ErrManifestInvalid, "%s has a negative size", where)
	}
	if d.MediaType == "" {
		return Errorf(ErrManifestInvalid, "%s has no mediaType", where)
	}
	return nil
}

// artifactType is what the referrers API reports for this manifest.
func (m *manifest) artifactType() string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil && !m.isIndex() {
		return m.Config.MediaType
	}
	return ""
}

// blobDigests lists the config and every layer.
func (m *manifest) blobDigests() []digest.Digest {
	if m.isIndex() {
		return nil
	}
	out := make([]digest.Digest, 0, len(m.Layers)+1)
	out = append(out, m.Config.Digest)
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// requiredBlobs lists the blobs that must have been pushed: all but
// non-distributable layers, which live at their URLs.
func (m *manifest) requiredBlobs() []digest.Digest {
	if m.isIndex() {
		return nil
	}
	out := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 || strings.Contains(l.MediaType, "nondistributable") || strings.Contains(l.MediaType, "foreign") {
			continue
		}
		out = append(out, l.Digest)
	}
	return out
}

// childDigests lists an index's manifests.
func (m *manifest) childDigests() []digest.Digest {
	out := make([]digest.Digest, 0, len(m.Manifests))
	for _, c := range m.Manifests {
		out = append(out, c.Digest)
	}
	return out
}

func isManifestMediaType(mt string) bool {
	for _, t := range ManifestMediaTypes {
		if t == mt {
			return true
		}
	}
	return false
}

func schema1Refused() error {
	return Errorf(ErrManifestInvalid, "Docker image manifest schema 1 is deprecated and not supported; push with a client that writes schema 2 or OCI manifests (Docker 1.10 or later)")
}
