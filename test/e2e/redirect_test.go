//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

// TestCranePull_BlobRedirectsToS3: with blob redirects on, crane pulls a
// multi-platform image through wharf with every digest intact, and every
// layer it fetched came from versitygw through a 307, not through wharf.
// The image configs, small enough for wharf to keep in its database
// (registry.DefaultSmallBlobMax), have no object to redirect to: wharf
// serves them.
func TestCranePull_BlobRedirectsToS3(t *testing.T) {
	crane := requireTool(t, "crane")
	run := func(args ...string) command { return cmd(crane, append(args, "--insecure")...) }
	s3 := servicetest.StartS3(t)
	// Another host name than wharf's 127.0.0.1, as a public store has.
	public := strings.Replace(s3.Endpoint, "//127.0.0.1:", "//localhost:", 1)
	srv := startWharfEnv(t, freeLoopbackAddr(t), s3.Env(), "--log-format=json",
		"--storage-url", s3.URL(s3.Bucket(t), "wharf"), "--s3-redirect", "--s3-public-endpoint", public)

	idx, _ := randomIndexOf(t, 4*registry.DefaultSmallBlobMax, 2*registry.DefaultSmallBlobMax)
	layoutDir := t.TempDir()
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	repo := srv.Addr + "/e2e/redirect"
	run("push", layoutDir, repo+":v1").mustRun(t)
	pulled := t.TempDir() + "/pulled"
	run("pull", "--format=oci", repo+":v1", pulled).mustRun(t)
	checkPulledLayout(t, pulled, idx)

	// Every layer of the index is redirected, every config served.
	want, configs := map[string]bool{}, map[string]bool{}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Config.Size > registry.DefaultSmallBlobMax {
			t.Fatalf("config of %d bytes: want one wharf keeps in its database", m.Config.Size)
		}
		configs[m.Config.Digest.String()] = true
		for _, l := range m.Layers {
			if l.Size <= registry.DefaultSmallBlobMax {
				t.Fatalf("layer of %d bytes: want one larger than wharf keeps in its database", l.Size)
			}
			want[l.Digest.String()] = true
		}
	}
	// The access log reaches the file within serve's flush interval.
	deadline := time.Now().Add(10 * time.Second)
	for {
		redirected, served := blobGets(t, srv.logPath)
		missing := 0
		for d := range want {
			if !redirected[d] {
				missing++
			}
		}
		for _, path := range served {
			if _, d, _ := strings.Cut(path, "/blobs/"); !configs[d] {
				t.Fatalf("blob GET answered by wharf instead of redirected: %s", path)
			}
		}
		for d := range configs {
			if redirected[d] {
				t.Fatalf("config %s was redirected; want it served from wharf's database", d)
			}
		}
		if missing == 0 && len(served) >= len(configs) {
			t.Logf("all %d layers of the pull were redirected to %s, its %d configs served by wharf", len(want), public, len(configs))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d layers never answered 307, %d GETs of %d configs answered 200 in the access log\n%s",
				missing, len(want), len(served), len(configs), srv.logTail())
		}
		time.Sleep(20 * time.Millisecond) // polling the log file for the flush
	}
}

// blobGets reads wharf's JSON access log: the digests of blob GETs that
// answered 307, and the paths of those that answered with bytes.
func blobGets(t *testing.T, logPath string) (redirected map[string]bool, served []string) {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	redirected = map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Msg, Method, Path string
			Status            int
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "request" || line.Method != "GET" {
			continue
		}
		_, d, ok := strings.Cut(line.Path, "/blobs/")
		if !ok || strings.HasPrefix(d, "uploads/") {
			continue
		}
		switch line.Status {
		case 307:
			redirected[d] = true
		case 200, 206:
			served = append(served, line.Path)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return redirected, served
}
