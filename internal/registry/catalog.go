package registry

import (
	"context"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// The read model of the web UI and the Hub-style API. The store's types
// are re-exported so that handlers need not import the store package.
type (
	// RepositoryInfo summarises one repository.
	RepositoryInfo = metadata.RepositoryInfo
	// RepositoryQuery selects a page of repositories.
	RepositoryQuery = metadata.RepositoryQuery
	// VisibleTo limits a listing to what a viewer may pull.
	VisibleTo = metadata.VisibleTo
	// TagQuery selects a page of a repository's tags.
	TagQuery = metadata.TagQuery
)

// Listing orders.
const (
	SortByName       = metadata.SortByName
	SortByLastPushed = metadata.SortByLastPushed
	SortByRelevance  = metadata.SortByRelevance
)

// ErrDescriptionInvalid means a repository description or readme is too
// long.
var ErrDescriptionInvalid = errors.New("invalid repository description")

// Limits on what writers may store about a repository, as on Docker Hub.
const (
	MaxDescriptionLen = 100
	MaxReadmeLen      = 25000
)

// Platform is one image of a tag: the only one of an image manifest, or
// one entry of an index.
type Platform struct {
	OS           string
	Architecture string
	Variant      string
	Digest       digest.Digest
	MediaType    string
	// Size is the compressed size: the config and the layers.
	Size int64
}

// String is os/arch[/variant], as docker prints platforms.
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// TagDetail is a tag as the tags page and the Hub API show it.
type TagDetail struct {
	Name       string
	Digest     digest.Digest
	MediaType  string
	PushedAt   time.Time
	PushedBy   string
	LastPulled time.Time
	// Size is the compressed size of every platform together.
	Size int64
	// ArtifactType is set for an artifact (not an image) manifest.
	ArtifactType string
	Platforms    []Platform
}

// ListRepositoryInfo returns a page of repositories and how many match.
func (s *Service) ListRepositoryInfo(ctx context.Context, q RepositoryQuery) ([]RepositoryInfo, int, error) {
	return s.meta.ListRepositoryInfo(ctx, q)
}

// SearchRepositories returns a page of the repositories matching
// q.Search, best match first, and how many match. It is the one ranking
// of the registry: the web UI's search and docker search (/v1/search)
// both call it, so a term finds the same repositories in the same order
// in the browser and in the terminal. The rank itself is
// metadata.SortByRelevance, computed by the store so that a page never
// needs every match in memory.
func (s *Service) SearchRepositories(ctx context.Context, q RepositoryQuery) ([]RepositoryInfo, int, error) {
	q.Sort = SortByRelevance
	return s.meta.ListRepositoryInfo(ctx, q)
}

// RepositoryInfo returns one repository's summary and readme.
func (s *Service) RepositoryInfo(ctx context.Context, name string) (*RepositoryInfo, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	info, err := s.meta.GetRepositoryInfo(ctx, name)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, nameUnknown(name)
	}
	return info, err
}

func nameUnknown(name string) error {
	return Errorf(ErrNameUnknown, "repository %s not found", name).withDetail(map[string]any{"name": name})
}

// SetRepositoryDescription replaces a repository's one-line description
// and markdown readme.
func (s *Service) SetRepositoryDescription(ctx context.Context, name, description, readme string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if utf8.RuneCountInString(description) > MaxDescriptionLen {
		return Errorf(ErrDescriptionInvalid, "the description is longer than %d characters", MaxDescriptionLen)
	}
	if utf8.RuneCountInString(readme) > MaxReadmeLen {
		return Errorf(ErrDescriptionInvalid, "the readme is longer than %d characters", MaxReadmeLen)
	}
	err := s.meta.SetRepositoryDescription(ctx, name, description, readme)
	if errors.Is(err, metadata.ErrNotFound) {
		return nameUnknown(name)
	}
	return err
}

// DeleteRepository deletes a repository with all its tags and manifests.
// Blob bytes stay for garbage collection.
func (s *Service) DeleteRepository(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	err := s.meta.DeleteRepository(withChangeActor(ctx), name)
	if errors.Is(err, metadata.ErrNotFound) {
		return nameUnknown(name)
	}
	if err == nil {
		s.auditDelete(ctx, "repository", name, "")
	}
	return err
}

// ListTagDetails returns a page of repo's tags with their platforms and
// sizes, and how many tags match.
func (s *Service) ListTagDetails(ctx context.Context, repo string, q TagQuery) ([]TagDetail, int, error) {
	if err := ValidateName(repo); err != nil {
		return nil, 0, err
	}
	tags, total, err := s.meta.ListTagInfo(ctx, repo, q)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, 0, nameUnknown(repo)
	}
	if err != nil {
		return nil, 0, err
	}
	out := make([]TagDetail, 0, len(tags))
	for i := range tags {
		d, err := s.tagDetail(ctx, repo, &tags[i])
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *d)
	}
	return out, total, nil
}

// TagDetail returns one tag with its platforms and sizes.
func (s *Service) TagDetail(ctx context.Context, repo, tag string) (*TagDetail, error) {
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	if err := ValidateTag(tag); err != nil {
		return nil, Errorf(ErrManifestUnknown, "%v", err)
	}
	t, err := s.meta.GetTagInfo(ctx, repo, tag)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, s.manifestUnknown(ctx, repo, tag)
	}
	if err != nil {
		return nil, err
	}
	return s.tagDetail(ctx, repo, t)
}

func (s *Service) tagDetail(ctx context.Context, repo string, t *metadata.TagInfo) (*TagDetail, error) {
	d := &TagDetail{Name: t.Name, Digest: t.Digest, MediaType: t.MediaType, PushedAt: t.PushedAt,
		PushedBy: t.PushedBy, LastPulled: t.LastPulled}
	platforms, artifactType, err := s.platforms(ctx, repo, t.Digest, t.MediaType, t.Content)
	if err != nil {
		return nil, err
	}
	d.Platforms, d.ArtifactType = platforms, artifactType
	for _, p := range platforms {
		d.Size += p.Size
	}
	return d, nil
}

// imageConfigHead is the part of an image config that names its platform.
type imageConfigHead struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
}

// platforms lists the images a manifest stands for. An index's children
// are read from the store (a page of tags reads a few of them); children
// that are attestations, or were never pushed (sparse copies), are left
// out, as Docker Hub leaves them out.
func (s *Service) platforms(ctx context.Context, repo string, d digest.Digest, mediaType string, content []byte) ([]Platform, string, error) {
	var m manifest
	if err := json.Unmarshal(content, &m); err != nil {
		// Stored manifests were validated on push; say nothing rather than fail a page.
		return nil, "", nil
	}
	if !m.isIndex() {
		p := Platform{Digest: d, MediaType: mediaType, Size: imageSize(&m)}
		if !isImageConfig(&m) {
			return []Platform{p}, m.artifactType(), nil
		}
		// An image manifest names its platform only in its config blob.
		cfg, err := s.readConfig(ctx, repo, m.Config.Digest, m.Config.Size)
		if err != nil {
			return nil, "", err
		}
		if cfg != nil {
			p.OS, p.Architecture, p.Variant = cfg.OS, cfg.Architecture, cfg.Variant
		}
		return []Platform{p}, "", nil
	}
	out := []Platform{}
	for _, c := range m.Manifests {
		if c.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		p := Platform{Digest: c.Digest, MediaType: c.MediaType}
		if c.Platform != nil {
			p.OS, p.Architecture, p.Variant = c.Platform.OS, c.Platform.Architecture, c.Platform.Variant
		}
		child, err := s.meta.GetManifest(ctx, repo, c.Digest)
		if errors.Is(err, metadata.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		var cm manifest
		if json.Unmarshal(child.Content, &cm) == nil {
			p.Size = imageSize(&cm)
		}
		out = append(out, p)
	}
	return out, m.ArtifactType, nil
}

// imageSize is what an image costs to pull: config plus layers.
func imageSize(m *manifest) int64 {
	var n int64
	if m.Config != nil {
		n += m.Config.Size
	}
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// isImageConfig reports whether m is a container image rather than an
// artifact (a signature, an SBOM, a Helm chart…).
func isImageConfig(m *manifest) bool {
	if m.ArtifactType != "" || m.Config == nil {
		return false
	}
	switch m.Config.MediaType {
	case "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return true
	}
	return false
}
