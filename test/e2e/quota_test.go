//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// randomTar is a tar of one file of n random (incompressible) bytes.
func randomTar(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, n)
	_, _ = rand.Read(data)
	if err := tw.WriteHeader(&tar.Header{Name: "blob.bin", Mode: 0o644, Size: int64(n)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCrane_QuotaRefusal: with quota=1MB on alice/*, crane's push of a
// 2 MB layer is refused with wharf's message before its bytes are stored
// (crane declares each chunk's length), a 600 kB image fits, a second
// one does not; another namespace is not bound by alice's quota.
func TestCrane_QuotaRefusal(t *testing.T) {
	crane := requireTool(t, "crane")
	srv := startWharf(t)
	cmd(wharfBin, "policy", "set", "alice/*", "quota=1MB", "--data-dir", srv.DataDir).mustRun(t)
	dir := t.TempDir()
	layer := func(name string, n int) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, randomTar(t, n), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	big, first, second := layer("big.tar", 2<<20), layer("first.tar", 600_000), layer("second.tar", 600_000)
	craneCmd := func(args ...string) command { return cmd(crane, append(args, "--insecure")...) }

	out, err := craneCmd("append", "-f", big, "-t", srv.Addr+"/alice/app:v1").run(t)
	if err == nil || !strings.Contains(out, "DENIED") || !strings.Contains(out, "namespace alice would be over its 1 MB quota: 0 B used, and this upload is 2.1 MB") {
		t.Errorf("the push over the quota: err=%v; output lacks wharf's message", err)
	}
	craneCmd("append", "-f", first, "-t", srv.Addr+"/alice/app:v2").mustRun(t)
	out, err = craneCmd("append", "-f", second, "-t", srv.Addr+"/alice/app:v3").run(t)
	if err == nil || !strings.Contains(out, "namespace alice would be over its 1 MB quota: 60") || !strings.Contains(out, "kB used, and this upload is") {
		t.Errorf("a second 600 kB image: err=%v; output lacks wharf's message", err)
	}
	craneCmd("append", "-f", big, "-t", srv.Addr+"/bob/app:v1").mustRun(t)
}

// TestDockerEngine_QuotaRefusal: the real docker engine pushing an image
// over its namespace's quota is refused, and docker prints wharf's
// message.
func TestDockerEngine_QuotaRefusal(t *testing.T) {
	srv, d, busybox := dockerWithWharf(t)
	cmd(wharfBin, "policy", "set", "quota/*", "quota=1MB", "--data-dir", srv.DataDir).mustRun(t)
	const base = "wharf-e2e/quota-base:1"
	ref := dockerRegistry + "/quota/app:v1"
	t.Cleanup(func() { _, _ = d("image", "rm", "-f", base, ref).run(t) })
	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)
	ctx := writeBuildContext(t, map[string]string{
		"Dockerfile": "FROM " + base + "\nCOPY blob.bin /blob.bin\n",
		"blob.bin":   string(randomTar(t, 2<<20)),
	})
	d("build", "--network", "none", "-t", ref, ctx).mustRun(t)
	out, err := d("image", "push", ref).run(t)
	t.Logf("docker push (over a 1 MB quota):\n%s", out)
	if err == nil || !strings.Contains(out, "namespace quota") || !strings.Contains(out, "1 MB quota") {
		t.Errorf("docker push over the quota: err=%v; output lacks wharf's message", err)
	}
}
