//go:build e2e

package e2e

import (
	"bytes"
	"strings"
	"testing"
)

// TestDockerEngine_ImmutableTags: under immutable-tags=1.*, the real
// docker engine pushes 1.0 again (a retried CI job) without complaint,
// a different image under 1.0 is refused and docker prints wharf's
// message naming the tag and the rule, and the tag still names the first
// image; latest, which no glob matches, moves freely.
func TestDockerEngine_ImmutableTags(t *testing.T) {
	srv, d, busybox := dockerWithWharf(t)
	cmd(wharfBin, "policy", "set", "gallery/*", "immutable-tags=1.*", "--data-dir", srv.DataDir).mustRun(t)

	const (
		base = "wharf-e2e/immutable-base:1"
		repo = dockerRegistry + "/gallery/ui"
	)
	t.Cleanup(func() {
		_, _ = d("image", "rm", "-f", base, repo+":1.0", repo+":latest", repo+":other").run(t)
	})
	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)
	build := func(ref, content string) {
		ctx := writeBuildContext(t, map[string]string{
			"Dockerfile": "FROM " + base + "\nCOPY v.txt /v.txt\n",
			"v.txt":      content + "\n",
		})
		d("build", "--network", "none", "-t", ref, ctx).mustRun(t)
	}

	build(repo+":1.0", "one")
	first := checkPushDigest(t, d("image", "push", repo+":1.0").mustRun(t), "1.0", "")
	// A retried job pushes the same image again: accepted.
	checkPushDigest(t, d("image", "push", repo+":1.0").mustRun(t), "1.0", first)

	build(repo+":other", "two")
	d("image", "tag", repo+":other", repo+":1.0").mustRun(t)
	out, err := d("image", "push", repo+":1.0").run(t)
	const msg = `tag "1.0" is immutable in gallery/ui (policy immutable-tags=1.*, set on gallery/*)`
	if err == nil || !strings.Contains(out, msg) {
		t.Errorf("a different image under 1.0: err=%v, docker's output lacks wharf's message %q:\n%s", err, msg, out)
	}
	if got := manifestDigest(t, srv, "gallery/ui", "1.0"); got != first {
		t.Errorf("1.0 → %s after the refusal, want the first image %s", got, first)
	}

	// Tags no glob matches move as always.
	d("image", "tag", repo+":other", repo+":latest").mustRun(t)
	d("image", "push", repo+":latest").mustRun(t)
	build(repo+":latest", "three")
	d("image", "push", repo+":latest").mustRun(t)
}
