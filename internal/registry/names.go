package registry

import (
	"strings"

	"github.com/opencontainers/go-digest"
)

// The distribution spec's grammar, which validName and validTag implement
// by hand: every request by name passes here, and the regexps took longer
// than the rest of the handler's own Go code. names_internal_test.go checks
// them against the spec's regexps, by table and by fuzzing:
//
//	name: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
//	tag:  [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validName matches NameGrammar: '/'-separated components, each a run of
// lower-case alphanumerics joined by exactly one of ".", "_", "__" or a
// run of '-', so every separator sits between two alphanumerics.
func validName(s string) bool {
	i, n := 0, len(s)
	for {
		// A component: alphanumerics, then (separator, alphanumerics)*.
		if i >= n || !isLowerAlnum(s[i]) {
			return false
		}
		for i < n && isLowerAlnum(s[i]) {
			i++
		}
		for i < n && s[i] != '/' {
			switch s[i] {
			case '.':
				i++
			case '_':
				i++
				if i < n && s[i] == '_' {
					i++
				}
			case '-':
				for i < n && s[i] == '-' {
					i++
				}
			default:
				return false
			}
			if i >= n || !isLowerAlnum(s[i]) {
				return false
			}
			for i < n && isLowerAlnum(s[i]) {
				i++
			}
		}
		if i == n {
			return true
		}
		i++ // the '/'; a component must follow
	}
}

// validTag matches TagGrammar.
func validTag(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case (c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

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
	if !validName(name) {
		return Errorf(ErrNameInvalid, "invalid repository name %q: components must be lower-case letters and digits separated by '.', '_', '__', '-' or '/'", truncate(name, 80)).withDetail(map[string]any{"name": truncate(name, 80)})
	}
	return nil
}

// ValidateTag reports whether tag is a valid tag name.
func ValidateTag(tag string) error {
	if !validTag(tag) {
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
