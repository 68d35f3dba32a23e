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

	"github.com/wharf/wharf/internal/servicetest"
)

// TestCranePull_BlobRedirectsToS3: with blob redirects on, crane pulls a
// multi-platform image through wharf with every digest intact, and every
// blob it fetched came from versitygw through a 307, not through wharf.
func TestCranePull_BlobRedirectsToS3(t *testing.T) {
	crane := requireTool(t, "crane")
	run := func(args ...string) command { return cmd(crane, append(args, "--insecure")...) }
	s3 := servicetest.StartS3(t)
	// Another host name than wharf's 127.0.0.1, as a public store has.
	public := strings.Replace(s3.Endpoint, "//127.0.0.1:", "//localhost:", 1)
	srv := startWharfEnv(t, freeLoopbackAddr(t), s3.Env(), "--log-format=json",
		"--storage-url", s3.URL(s3.Bucket(t), "wharf"), "--s3-redirect", "--s3-public-endpoint", public)

	idx, _ := randomIndex(t)
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

	// Every config and layer of the index.
	want := map[string]bool{}
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
		want[m.Config.Digest.String()] = true
		for _, l := range m.Layers {
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
		if len(served) > 0 {
			t.Fatalf("blob GETs answered by wharf instead of redirected: %v", served)
		}
		if missing == 0 {
			t.Logf("all %d blobs of the pull were redirected to %s", len(want), public)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d blobs never answered 307 in the access log\n%s", missing, len(want), srv.logTail())
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
