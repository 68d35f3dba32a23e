// Package semver reads tags as semantic versions and holds the rules of
// floating tags (2.1.106 also tagged 2.1, 2 and latest), so that the
// registry (floating-tags=semver) and the client (wharf image push
// --semver) move the same tags for the same push.
//
// A version tag is MAJOR.MINOR.PATCH, optionally prefixed with v, with an
// optional pre-release (-rc.1) and optional build metadata. A tag cannot
// hold +, so the build metadata is written after _ (2.1.106_b7), as Helm
// does for charts; it is ignored when versions are compared. Precedence
// is SemVer 2.0's (golang.org/x/mod/semver compares).
package semver

import (
	"strconv"
	"strings"

	modsemver "golang.org/x/mod/semver"
)

// Latest is the floating tag of every stable version.
const Latest = "latest"

// Version is a tag read as a semantic version.
type Version struct {
	// Tag is the tag as written.
	Tag string
	// Prefix is "v" or "": floating tags keep the style (v2.1, v2).
	Prefix string
	// Major and Minor as written (no leading zeros).
	Major, Minor string
	// Pre is the pre-release without its dash, "" for a stable version.
	Pre string
	// canon is the v-prefixed version without build metadata, for
	// comparisons.
	canon string
}

// Parse reads tag as a version; ok is false for any other tag (latest,
// 2.1, main, sha-abc…).
func Parse(tag string) (v Version, ok bool) {
	rest := tag
	if r, found := strings.CutPrefix(tag, "v"); found {
		v.Prefix, rest = "v", r
	}
	if i := strings.IndexAny(rest, "_+"); i >= 0 {
		if i == len(rest)-1 {
			return Version{}, false
		}
		rest = rest[:i]
	}
	core, pre, hasPre := strings.Cut(rest, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Version{}, false
	}
	for _, p := range parts {
		if !number(p) {
			return Version{}, false
		}
	}
	v.Tag, v.Major, v.Minor = tag, parts[0], parts[1]
	v.canon = "v" + core
	if hasPre {
		v.Pre = pre
		v.canon += "-" + pre
	}
	if !modsemver.IsValid(v.canon) {
		return Version{}, false
	}
	return v, true
}

// number reports whether s is a decimal number without leading zeros.
func number(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// Stable reports whether v is a release, not a pre-release.
func (v Version) Stable() bool { return v.canon != "" && v.Pre == "" }

// Compare returns -1, 0 or +1 as a has lower, equal or higher precedence
// than b. Build metadata does not count.
func Compare(a, b Version) int { return modsemver.Compare(a.canon, b.canon) }

// Floating lists the floating tags a stable v belongs to, narrowest first:
// 2.1.106 → 2.1, 2, latest; v2.1.106 → v2.1, v2, latest. A pre-release
// belongs to none.
func (v Version) Floating() []string {
	if !v.Stable() {
		return nil
	}
	return []string{v.Prefix + v.Major + "." + v.Minor, v.Prefix + v.Major, Latest}
}

// inLine reports whether stable version v belongs to floating tag f.
func inLine(v Version, f string) bool {
	if !v.Stable() {
		return false
	}
	for _, g := range v.Floating() {
		if g == f {
			return true
		}
	}
	return false
}
