package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registry"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		// The spec's grammar:
		// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
		{"a", true},
		{"0", true},
		{"library", true},
		{"a/b/c/d", true},
		{"a.b_c__d--e", true},
		{"a---b", true},
		{"team/app-api/v2.1_rc__1", true},
		{"v2/manifests/blobs", true},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a/", 127) + "a", true},

		{"", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a/", 127) + "ab", false},
		{"A", false},
		{"library/Ubuntu", false},
		{"-a", false},
		{"a-", false},
		{"_a", false},
		{"a_", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{"a___b", false},
		{"a.-b", false},
		{"a//b", false},
		{"/a", false},
		{"a/", false},
		{"../a", false},
		{"a/..", false},
		{"a/../b", false},
		{"./a", false},
		{"a/./b", false},
		{"a b", false},
		{"a:b", false},
		{"a@b", false},
		{"a\\b", false},
		{"a\x00b", false},
		{"ü", false},
	} {
		err := registry.ValidateName(tc.name)
		switch {
		case tc.ok && err != nil:
			t.Errorf("ValidateName(%q) = %v, want nil", tc.name, err)
		case !tc.ok && !errors.Is(err, registry.ErrNameInvalid):
			t.Errorf("ValidateName(%q) = %v, want ErrNameInvalid", tc.name, err)
		}
	}
}

func TestValidateTag(t *testing.T) {
	for _, tc := range []struct {
		tag string
		ok  bool
	}{
		// The spec's grammar: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
		{"latest", true},
		{"v1.2.3", true},
		{"V1", true},
		{"_", true},
		{"_internal", true},
		{"0", true},
		{"1.0-rc.1_build-7", true},
		{"a..b", true},
		{"a--", true},
		{strings.Repeat("t", 128), true},

		{"", false},
		{strings.Repeat("t", 129), false},
		{"-v1", false},
		{".v1", false},
		{"v1+build", false},
		{"v1:2", false},
		{"v1/2", false},
		{"v 1", false},
		{"v1\n", false},
		{"ü", false},
	} {
		err := registry.ValidateTag(tc.tag)
		switch {
		case tc.ok && err != nil:
			t.Errorf("ValidateTag(%q) = %v, want nil", tc.tag, err)
		case !tc.ok && !errors.Is(err, registry.ErrTagInvalid):
			t.Errorf("ValidateTag(%q) = %v, want ErrTagInvalid", tc.tag, err)
		}
	}
}

func TestParseDigest(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	hex128 := strings.Repeat("cd", 64)
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"sha256", "sha256:" + hex64, true},
		{"sha512", "sha512:" + hex128, true},
		{"computed sha256", digest.FromString("x").String(), true},
		{"computed sha512", digest.SHA512.FromString("x").String(), true},

		{"empty", "", false},
		{"no algorithm", hex64, false},
		{"no encoded part", "sha256:", false},
		{"no separator", "sha256" + hex64, false},
		{"sha256 too short", "sha256:" + hex64[:63], false},
		{"sha256 too long", "sha256:" + hex64 + "a", false},
		{"sha256 of sha512 length", "sha256:" + hex128, false},
		{"sha512 of sha256 length", "sha512:" + hex64, false},
		{"upper-case hex", "sha256:" + strings.ToUpper(hex64), false},
		{"non-hex", "sha256:" + strings.Repeat("g", 64), false},
		{"upper-case algorithm", "SHA256:" + hex64, false},
		{"unknown algorithm", "md5:" + strings.Repeat("a", 32), false},
		{"a tag", "latest", false},
		{"trailing newline", "sha256:" + hex64 + "\n", false},
		{"leading space", " sha256:" + hex64, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := registry.ParseDigest(tc.in)
			if !tc.ok {
				if !errors.Is(err, registry.ErrDigestInvalid) {
					t.Errorf("ParseDigest(%q) = %q, %v; want ErrDigestInvalid", tc.in, d, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDigest(%q): %v", tc.in, err)
			}
			if d.String() != tc.in {
				t.Errorf("ParseDigest(%q) = %q", tc.in, d)
			}
		})
	}
}

func TestIsDigestReference(t *testing.T) {
	for ref, want := range map[string]bool{
		"latest":                            false,
		"v1.0":                              false,
		"sha256:" + strings.Repeat("a", 64): true,
		"sha256:short":                      true, // a digest, if a malformed one
		"sha512:x":                          true,
	} {
		if got := registry.IsDigestReference(ref); got != want {
			t.Errorf("IsDigestReference(%q) = %v, want %v", ref, got, want)
		}
	}
}
