//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestGarbageCollection runs `wharf gc` beside a running `wharf serve`:
// the blobs of a deleted image go, the image still tagged stays whole for
// crane, and the deleted image's digest is gone.
func TestGarbageCollection(t *testing.T) {
	crane := requireTool(t, "crane")
	srv := startWharf(t)
	repo := srv.Addr + "/team/app"
	digests := map[string]string{}
	for _, tag := range []string{"keep", "drop"} {
		img, err := random.Image(64<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(repo+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = d.String()
	}
	cmd(crane, "delete", "--insecure", repo+"@"+digests["drop"]).mustRun(t)

	gc := func(args ...string) string {
		return cmd(wharfBin, append([]string{"gc", "--data-dir", srv.DataDir}, args...)...).mustRun(t)
	}
	// Each image is two 64 KiB layers, files in the blob store, and a
	// config that wharf keeps in its database (registry.DefaultSmallBlobMax).
	// "of N" counts the files walked and the records collected.
	if out := gc(); !strings.Contains(out, "Deleted 0 of 4 blobs") {
		t.Fatalf("gc within the default grace period:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond)
	if out := gc("--grace", "50ms", "--dry-run"); !strings.Contains(out, "Would delete 3 of 5 blobs") {
		t.Fatalf("gc --dry-run:\n%s", out)
	}
	out := gc("--grace", "50ms")
	if !strings.Contains(out, "Deleted 3 blob links no manifest uses") || !strings.Contains(out, "Deleted 3 of 5 blobs") {
		t.Fatalf("gc:\n%s", out)
	}
	t.Logf("wharf gc:\n%s", out)

	cmd(crane, "validate", "--insecure", "--remote", repo+":keep").mustRun(t)
	if out, err := cmd(crane, "manifest", "--insecure", repo+"@"+digests["drop"]).run(t); err == nil {
		t.Fatalf("the deleted image is still there:\n%s", out)
	}
	if out := gc("--grace", "50ms"); !strings.Contains(out, "Deleted 0 of 2 blobs") {
		t.Errorf("second gc:\n%s", out)
	}
}
