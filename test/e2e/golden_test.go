//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDockerGoldenLineage is the chapter's golden-image story with the
// real docker engine: a golden base pushed as 1.0 and 1, an app built
// FROM golden/base:1 by docker (which sets no base annotations) and
// pushed, wharf finding the app's base by its layers, then 1.1 moving 1
// and the app becoming outdated in the API and on the base's page.
func TestDockerGoldenLineage(t *testing.T) {
	srv, d, busybox := dockerWithWharf(t)
	const (
		base = dockerRegistry + "/golden/base"
		app  = dockerRegistry + "/team/app:v1"
	)
	t.Cleanup(func() {
		_, _ = d("image", "rm", "-f", base+":1.0", base+":1.1", base+":1", app).run(t)
	})
	policy := cmd(wharfBin, append([]string{"policy", "set", "golden/*", "golden=true"}, srv.storeArgs...)...)
	policy.env = srv.env
	policy.mustRun(t)

	// golden/base:1.0, also tagged 1, from an imported busybox rootfs.
	pushBase := func(version string) {
		imp := d("import", "-", base+":"+version)
		imp.stdin = bytes.NewReader(withFile(t, busyboxRootfsTar(t, busybox), "etc/golden-version", version+"\n"))
		imp.mustRun(t)
		d("image", "tag", base+":"+version, base+":1").mustRun(t)
		d("image", "push", base+":"+version).mustRun(t)
		d("image", "push", base+":1").mustRun(t)
	}
	pushBase("1.0")

	buildCtx := writeBuildContext(t, map[string]string{
		"Dockerfile": "FROM " + base + ":1\nCOPY app.txt /app/app.txt\n",
		"app.txt":    "the app\n",
	})
	d("build", "--network", "none", "-t", app, buildCtx).mustRun(t)
	d("image", "push", app).mustRun(t)

	got := goldenBase(t, srv, "team", "app", "v1")
	if got.Name != "golden/base" || got.Source != "layers" || got.Outdated || got.Version != "1.0" {
		t.Fatalf("base of team/app:v1 = %+v; want golden/base 1.0 found by layers, current", got)
	}
	t.Logf("base of team/app:v1: %s:%s (%s), found by %s, outdated=%v", got.Name, got.Version, got.Digest, got.Source, got.Outdated)

	pushBase("1.1")
	got = goldenBase(t, srv, "team", "app", "v1")
	if !got.Outdated || got.Newer == nil || got.Newer.Tag != "1.1" || !strings.Contains(got.Reason, "1 now points to 1.1") {
		t.Errorf("after golden/base:1.1 moved 1, base = %+v; want outdated, newer 1.1", got)
	}
	t.Logf("after 1.1: outdated=%v: %s", got.Outdated, got.Reason)

	page := httpGet(t, srv.URL+"/r/golden/base")
	for _, want := range []string{"Used by (1)", "team/app:v1", "outdated", "1 now points to 1.1"} {
		if !strings.Contains(page, want) {
			t.Errorf("golden/base's page lacks %q", want)
		}
	}

	// The chapter's fix: rebase the app onto 1.1 in place, registry to
	// registry; the engine runs it on the new base, and it is current.
	wc := newWharfClient(t)
	wc.cmd("image", "rebase", "--insecure", app, "--onto", base+":1.1", "--old-base", base+":1.0", "-t", app).mustRun(t)
	d("image", "rm", "-f", app).mustRun(t)
	d("pull", app).mustRun(t)
	if out := d("run", "--rm", "--network", "none", app, "cat", "/etc/golden-version", "/app/app.txt").mustRun(t); out != "1.1\nthe app\n" {
		t.Errorf("the rebased app printed %q; want the new base's version and its own file", out)
	}
	got = goldenBase(t, srv, "team", "app", "v1")
	if got.Name != "golden/base" || got.Outdated || got.Version != "1.1" {
		t.Errorf("after the rebase, base = %+v; want golden/base 1.1, current", got)
	}
	t.Logf("after the rebase: %s:%s (%s), found by %s, outdated=%v", got.Name, got.Version, got.Digest, got.Source, got.Outdated)
}

type goldenBaseJSON struct {
	Name, Digest, Tag, Version, Source, Reason string
	Outdated                                   bool
	Newer                                      *struct{ Tag, Digest string }
}

// goldenBase asks wharf's JSON API for the base of ns/repo:tag.
func goldenBase(t *testing.T, srv *wharfServer, ns, repo, tag string) goldenBaseJSON {
	t.Helper()
	body := httpGet(t, srv.URL+"/v2/namespaces/"+ns+"/repositories/"+repo+"/tags/"+tag+"/base")
	var out goldenBaseJSON
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("base of %s/%s:%s: %v: %s", ns, repo, tag, err, body)
	}
	return out
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}
