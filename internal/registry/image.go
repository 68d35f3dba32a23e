package registry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// maxConfigSize bounds the image config read for the detail view; real
// configs are a few kilobytes, and this is a page, not a pull.
const maxConfigSize = 4 << 20

// Layer is one step of an image as Docker Hub's "image layers" view shows
// it: a history entry, with the layer it produced unless it was empty.
type Layer struct {
	Digest    digest.Digest // "" for an empty layer (ENV, CMD, …)
	MediaType string
	Size      int64
	CreatedBy string
	Created   time.Time
	Comment   string
}

// ImageConfig is the runtime part of an image config.
type ImageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	ExposedPorts []string
	Labels       map[string]string
	WorkingDir   string
	User         string
	Created      time.Time
}

// Image is one manifest of a repository opened for reading: the detail
// view of a tag or of one of its platforms.
type Image struct {
	Repo      string
	Digest    digest.Digest
	MediaType string
	// Raw is the manifest as pushed.
	Raw []byte
	// Platforms is set for an index: its images.
	Platforms []Platform
	// For an image manifest: its platform, config and layers. Config is nil
	// when the config blob is absent or not an image config (artifacts).
	Platform     Platform
	ConfigDigest digest.Digest
	ConfigType   string
	Config       *ImageConfig
	Layers       []Layer
	ArtifactType string
	Referrers    []metadata.Descriptor
}

// imageConfigFile is the part of an OCI/docker image config the detail
// view reads.
type imageConfigFile struct {
	imageConfigHead
	Created *time.Time `json:"created"`
	Config  struct {
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		Env          []string            `json:"Env"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Labels       map[string]string   `json:"Labels"`
		WorkingDir   string              `json:"WorkingDir"`
		User         string              `json:"User"`
	} `json:"config"`
	History []struct {
		Created    *time.Time `json:"created"`
		CreatedBy  string     `json:"created_by"`
		Comment    string     `json:"comment"`
		EmptyLayer bool       `json:"empty_layer"`
	} `json:"history"`
}

// Image opens manifest ref (a tag or digest) of repo with its config,
// layers and referrers.
func (s *Service) Image(ctx context.Context, repo, ref string) (*Image, error) {
	m, err := s.viewManifest(ctx, repo, ref)
	if err != nil {
		return nil, err
	}
	img := &Image{Repo: repo, Digest: m.Digest, MediaType: m.MediaType, Raw: m.Content}
	refs, err := s.Referrers(ctx, repo, m.Digest, "")
	if err != nil {
		return nil, err
	}
	img.Referrers = refs
	var parsed manifest
	if err := json.Unmarshal(m.Content, &parsed); err != nil {
		return img, nil
	}
	if parsed.isIndex() {
		img.Platforms, img.ArtifactType, err = s.platforms(ctx, repo, m.Digest, m.MediaType, m.Content)
		return img, err
	}
	if !isImageConfig(&parsed) {
		img.ArtifactType = parsed.artifactType()
	}
	img.Platform = Platform{Digest: m.Digest, MediaType: m.MediaType, Size: imageSize(&parsed)}
	for _, l := range parsed.Layers {
		img.Layers = append(img.Layers, Layer{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size})
	}
	if parsed.Config == nil {
		return img, nil
	}
	img.ConfigDigest, img.ConfigType = parsed.Config.Digest, parsed.Config.MediaType
	if !isImageConfig(&parsed) {
		// An artifact's config is not an image's ("{}" for most).
		return img, nil
	}
	cfg, err := s.readConfig(ctx, repo, parsed.Config.Digest, parsed.Config.Size)
	if err != nil || cfg == nil {
		return img, err
	}
	img.Platform.OS, img.Platform.Architecture, img.Platform.Variant = cfg.OS, cfg.Architecture, cfg.Variant
	img.Config = runtimeConfig(cfg)
	img.Layers = withHistory(img.Layers, cfg)
	return img, nil
}

// readConfig reads and decodes an image config blob; nil, nil when it is
// absent, too large or not JSON (an artifact's config).
func (s *Service) readConfig(ctx context.Context, repo string, d digest.Digest, size int64) (*imageConfigFile, error) {
	if size > maxConfigSize {
		return nil, nil
	}
	rc, _, err := s.OpenBlob(ctx, repo, d)
	if errors.Is(err, ErrBlobUnknown) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxConfigSize))
	if err != nil {
		return nil, err
	}
	var cfg imageConfigFile
	if json.Unmarshal(body, &cfg) != nil {
		return nil, nil
	}
	return &cfg, nil
}

func runtimeConfig(cfg *imageConfigFile) *ImageConfig {
	c := &ImageConfig{
		Entrypoint: cfg.Config.Entrypoint, Cmd: cfg.Config.Cmd, Env: cfg.Config.Env,
		Labels: cfg.Config.Labels, WorkingDir: cfg.Config.WorkingDir, User: cfg.Config.User,
	}
	for p := range cfg.Config.ExposedPorts {
		c.ExposedPorts = append(c.ExposedPorts, p)
	}
	slices.Sort(c.ExposedPorts)
	if cfg.Created != nil {
		c.Created = *cfg.Created
	}
	return c
}

// withHistory pairs history entries with layers: each entry that is not
// an empty layer produced the next layer, in order. Empty entries become
// rows without a digest, as Docker Hub lists them.
func withHistory(layers []Layer, cfg *imageConfigFile) []Layer {
	if len(cfg.History) == 0 {
		return layers
	}
	out := make([]Layer, 0, len(cfg.History))
	next := 0
	for _, h := range cfg.History {
		l := Layer{CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			l.Created = *h.Created
		}
		if !h.EmptyLayer && next < len(layers) {
			l.Digest, l.MediaType, l.Size = layers[next].Digest, layers[next].MediaType, layers[next].Size
			next++
		}
		out = append(out, l)
	}
	// Layers without history (an inconsistent config) are still shown.
	return append(out, layers[next:]...)
}

// viewManifest is GetManifest for people looking at a page: viewing a
// tag is not a pull, so it is not counted.
func (s *Service) viewManifest(ctx context.Context, repo, ref string) (*metadata.Manifest, error) {
	if IsDigestReference(ref) {
		return s.GetManifest(ctx, repo, ref)
	}
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	if err := ValidateTag(ref); err != nil {
		return nil, Errorf(ErrManifestUnknown, "%v", err)
	}
	m, err := s.meta.GetTaggedManifest(ctx, repo, ref)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, s.manifestUnknown(ctx, repo, ref)
	}
	return m, err
}
