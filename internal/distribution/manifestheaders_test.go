package distribution

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestHeaderCache_KeysOnDigestTypeAndSize(t *testing.T) {
	var c headerCache
	d := digest.FromString("manifest")
	a := c.get(d, "application/vnd.oci.image.manifest.v1+json", 1234)
	want := [4]string{"application/vnd.oci.image.manifest.v1+json", d.String(), `"` + d.String() + `"`, "1234"}
	if a.vals != want {
		t.Fatalf("values %q, want %q", a.vals, want)
	}
	if again := c.get(d, "application/vnd.oci.image.manifest.v1+json", 1234); again != a {
		t.Error("the same manifest's values were built again")
	}
	// The same bytes stored under another type (in another repository)
	// answer with that type.
	if b := c.get(d, "application/vnd.docker.distribution.manifest.v2+json", 1234); b.vals[0] != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("Content-Type %q for the second type", b.vals[0])
	}
}

func TestHeaderCache_StartsOverWhenFull(t *testing.T) {
	var c headerCache
	for i := range headerCacheMax + 10 {
		c.get(digest.FromString(string(rune(i))), "t", i)
	}
	n := 0
	c.m.Range(func(_, _ any) bool { n++; return true })
	if n > headerCacheMax {
		t.Fatalf("%d entries, want at most %d", n, headerCacheMax)
	}
}
