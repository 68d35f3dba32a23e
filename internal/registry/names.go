package registry

import (
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// The distribution spec's grammar: path components of lower-case
// alphanumerics joined by '.', '_', '__' or runs of '-', separated by '/'.
var (
	nameRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRe  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// MaxNameLength bounds repository names, as Docker's clients do.
const MaxNameLength = 255

// ValidateName reports whether name is a valid repository name. Because
// every component is alphanumeric-led, no name can be "..", absolute, or
// otherwise reach outside the store.
func ValidateName(name string) error {
	if name == "" {
		return Errorf(ErrNameInvalid, "repository name must not be empty")
	}
	if len(name) > MaxNameLength {
		return Errorf(ErrNameInvalid, "repository name must not be longer than %d characters", MaxNameLength).withDetail(map[string]any{"name": truncate(name, 80)})
	}
	if !nameRe.MatchString(name) {
		return Errorf(ErrNameInvalid, "invalid repository name %q: components must be lower-case letters and digits separated by '.', '_', '__', '-' or '/'", truncate(name, 80)).withDetail(map[string]any{"name": truncate(name, 80)})
	}
	return nil
}

// ValidateTag reports whether tag is a valid tag name.
func ValidateTag(tag string) error {
	if !tagRe.MatchString(tag) {
		return Errorf(ErrTagInvalid, "invalid tag %q: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", truncate(tag, 80))
	}
	return nil
}

// ParseDigest parses and validates a digest of a supported algorithm.
func ParseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", Errorf(ErrDigestInvalid, "invalid digest %q: %v", truncate(s, 140), err).withDetail(map[string]any{"digest": truncate(s, 140)})
	}
	return d, nil
}

// IsDigestReference tells a manifest reference that is a digest from a tag:
// tags cannot contain ':'.
func IsDigestReference(ref string) bool { return strings.Contains(ref, ":") }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
