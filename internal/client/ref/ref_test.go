package ref

import (
	"errors"
	"testing"

	"github.com/distribution/reference"
)

const dgst = "sha256:7a4dc41f1ff9a3ee4e4d8c0a0ea4b5b6a7d2a0e0c7e0e3a4f4f1f5a5f0a1b2c3"

func TestParse_NormalisesLikeDocker(t *testing.T) {
	tests := []struct {
		in, full, familiar, domain, path string
	}{
		{"ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu"},
		{"ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04", "docker.io", "library/ubuntu"},
		{"library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu"},
		{"docker.io/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu"},
		{"index.docker.io/library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest", "docker.io", "library/ubuntu"},
		{"dockerid/image-gallery:v1", "docker.io/dockerid/image-gallery:v1", "dockerid/image-gallery:v1", "docker.io", "dockerid/image-gallery"},
		{"registry.local:5000/gallery/ui:v1", "registry.local:5000/gallery/ui:v1", "registry.local:5000/gallery/ui:v1", "registry.local:5000", "gallery/ui"},
		{"localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost", "app"},
		{"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest", "localhost:5000", "app"},
		{"127.0.0.1:5000/a/b/c:2.1.106", "127.0.0.1:5000/a/b/c:2.1.106", "127.0.0.1:5000/a/b/c:2.1.106", "127.0.0.1:5000", "a/b/c"},
		{"ghcr.io/org/tool", "ghcr.io/org/tool:latest", "ghcr.io/org/tool:latest", "ghcr.io", "org/tool"},
		{"alpine@" + dgst, "docker.io/library/alpine@" + dgst, "alpine@" + dgst, "docker.io", "library/alpine"},
		{"alpine:3.20@" + dgst, "docker.io/library/alpine:3.20@" + dgst, "alpine:3.20@" + dgst, "docker.io", "library/alpine"},
		// "foo" before the first slash is a path, not a host: no dot, colon or localhost.
		{"foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest", "docker.io", "foo/bar"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := n.String(); got != tt.full {
				t.Errorf("String = %q, want %q", got, tt.full)
			}
			if got := Familiar(n); got != tt.familiar {
				t.Errorf("Familiar = %q, want %q", got, tt.familiar)
			}
			if got := Domain(n); got != tt.domain {
				t.Errorf("Domain = %q, want %q", got, tt.domain)
			}
			if got := Path(n); got != tt.path {
				t.Errorf("Path = %q, want %q", got, tt.path)
			}
		})
	}
}

func TestParse_RejectsLikeDocker(t *testing.T) {
	tests := []struct {
		in, msg string
		is      error
	}{
		{"a b", `"a b" is not a valid repository/tag: invalid reference format`, reference.ErrReferenceInvalidFormat},
		{"", `"" is not a valid repository/tag: invalid reference format`, reference.ErrReferenceInvalidFormat},
		{"ubuntu:", `"ubuntu:" is not a valid repository/tag: invalid reference format`, reference.ErrReferenceInvalidFormat},
		{"Ubuntu", `"Ubuntu" is not a valid repository/tag: invalid reference format: repository name (library/Ubuntu) must be lowercase`, nil},
		{"alpine@sha256:123", `"alpine@sha256:123" is not a valid repository/tag: invalid reference format`, reference.ErrReferenceInvalidFormat},
		{"7a4dc41f1ff9a3ee4e4d8c0a0ea4b5b6a7d2a0e0c7e0e3a4f4f1f5a5f0a1b2c3", `"7a4dc41f1ff9a3ee4e4d8c0a0ea4b5b6a7d2a0e0c7e0e3a4f4f1f5a5f0a1b2c3" is not a valid repository/tag: invalid repository name (7a4dc41f1ff9a3ee4e4d8c0a0ea4b5b6a7d2a0e0c7e0e3a4f4f1f5a5f0a1b2c3), cannot specify 64-byte hexadecimal strings`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.msg {
				t.Errorf("error = %q, want %q", err, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error does not wrap %v", tt.is)
			}
		})
	}
}

func TestParseName_KeepsNameOnly(t *testing.T) {
	n, err := ParseName("image-gallery")
	if err != nil {
		t.Fatal(err)
	}
	if got := n.String(); got != "docker.io/library/image-gallery" {
		t.Errorf("got %q", got)
	}
}
