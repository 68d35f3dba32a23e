// Package ref normalises image references exactly as docker does, on top of
// github.com/distribution/reference: docker.io is the default registry,
// one-part names live under library/, and the tag defaults to latest.
package ref

import (
	"fmt"

	"github.com/distribution/reference"
)

// Parse normalises s ("ubuntu", "localhost:5000/gallery/ui:v1",
// "alpine@sha256:…") into a fully qualified reference. A name without a tag
// or digest gets the tag "latest". Errors carry docker's wording
// (`"a b" is not a valid repository/tag: invalid reference format`) and wrap the
// reference package's sentinel errors where it returns one.
func Parse(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid repository/tag: %w", s, err)
	}
	return reference.TagNameOnly(named), nil
}

// ParseName normalises s as a repository name or reference without adding a
// default tag (what `image ls REPOSITORY` and `push --all-tags` need).
func ParseName(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid repository/tag: %w", s, err)
	}
	return named, nil
}

// Familiar returns the short form docker prints: "ubuntu:latest" for
// docker.io/library/ubuntu:latest, "localhost:5000/gallery/ui:v1" unchanged.
func Familiar(named reference.Named) string {
	return reference.FamiliarString(named)
}

// FamiliarName returns the short repository name without tag or digest.
func FamiliarName(named reference.Named) string {
	return reference.FamiliarName(named)
}

// Domain returns the registry host (and port): "docker.io", "localhost:5000".
func Domain(named reference.Named) string {
	return reference.Domain(named)
}

// Path returns the repository path inside the registry: "library/ubuntu".
func Path(named reference.Named) string {
	return reference.Path(named)
}
