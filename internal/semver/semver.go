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

	nums   [3]uint64
	hasPre bool
}

// Parse reads tag as a version; ok is false for any other tag (latest,
// 2.1, main, sha-abc…). It allocates nothing for a stable version: a
// push under floating-tags=semver reads every tag of its repository.
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
	for i := range v.nums {
		part := core
		if i < 2 {
			dot := strings.IndexByte(core, '.')
			if dot < 0 {
				return Version{}, false
			}
			part, core = core[:dot], core[dot+1:]
		}
		n, ok := number(part)
		if !ok {
			return Version{}, false
		}
		v.nums[i] = n
		if i == 0 {
			v.Major = part
		} else if i == 1 {
			v.Minor = part
		}
	}
	// SemVer's pre-release grammar, checked by the library on a stand-in
	// version.
	if hasPre && !modsemver.IsValid("v0.0.0-"+pre) {
		return Version{}, false
	}
	v.Tag, v.Pre, v.hasPre = tag, pre, hasPre
	return v, true
}

// number reads a decimal number without leading zeros.
func number(s string) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' || n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// Stable reports whether v is a release, not a pre-release.
func (v Version) Stable() bool { return v.Tag != "" && !v.hasPre }

// Compare returns -1, 0 or +1 as a has lower, equal or higher precedence
// than b. Build metadata does not count.
func Compare(a, b Version) int {
	for i := range a.nums {
		if a.nums[i] != b.nums[i] {
			if a.nums[i] < b.nums[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case !a.hasPre && !b.hasPre:
		return 0
	case !a.hasPre:
		return 1
	case !b.hasPre:
		return -1
	}
	return modsemver.Compare("v0.0.0-"+a.Pre, "v0.0.0-"+b.Pre)
}

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
	if f == Latest {
		return true
	}
	rest, ok := strings.CutPrefix(f, v.Prefix+v.Major)
	return ok && (rest == "" || rest == "."+v.Minor)
}

// Numbers returns v's major, minor and patch numbers, for ranking versions
// by line (retention keeps the highest minor lines).
func (v Version) Numbers() (major, minor, patch uint64) {
	return v.nums[0], v.nums[1], v.nums[2]
}
