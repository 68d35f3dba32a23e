//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDockerEngine_SemverFloatingTags is the chapter's tag story with the
// real docker engine, pushing only version tags to a repository under
// floating-tags=semver: 2.1.106 makes 2.1, 2 and latest appear; 2.1.107
// moves them; 3.0.0-rc.1 moves nothing; 3.0.0 moves latest and leaves 2;
// a late 2.1.105 moves nothing; deleting 3.0.0 brings latest back to
// 2.1.107; a different 2.1.106 is refused with wharf's message.
func TestDockerEngine_SemverFloatingTags(t *testing.T) {
	srv, d, busybox := dockerWithWharf(t)
	// Set beside the running server: it applies from the next push.
	cmd(wharfBin, "policy", "set", "gallery/*", "floating-tags=semver", "--data-dir", srv.DataDir).mustRun(t)

	const (
		base = "wharf-e2e/story-base:1"
		repo = dockerRegistry + "/gallery/story"
	)
	versions := []string{"2.1.106", "2.1.107", "3.0.0-rc.1", "3.0.0", "2.1.105"}
	t.Cleanup(func() {
		refs := []string{base, repo + ":other"}
		for _, v := range versions {
			refs = append(refs, repo+":"+v)
		}
		_, _ = d(append([]string{"image", "rm", "-f"}, refs...)...).run(t)
	})
	imp := d("import", "-", base)
	imp.stdin = bytes.NewReader(busyboxRootfsTar(t, busybox))
	imp.mustRun(t)
	// One image per version (and one more), each with its own file.
	build := func(ref, content string) {
		ctx := writeBuildContext(t, map[string]string{
			"Dockerfile":  "FROM " + base + "\nCOPY version.txt /version.txt\n",
			"version.txt": content + "\n",
		})
		d("build", "--network", "none", "-t", ref, ctx).mustRun(t)
	}
	digests := map[string]string{}
	push := func(version string) string {
		t.Helper()
		build(repo+":"+version, version)
		out := d("image", "push", repo+":"+version).mustRun(t)
		digests[version] = checkPushDigest(t, out, version, "")
		return out
	}
	want := func(step string, tags map[string]string) {
		t.Helper()
		for tag, version := range tags {
			got := manifestDigest(t, srv, "gallery/story", tag)
			if version == "" && got != "" {
				t.Errorf("%s: %s → %s, want no such tag", step, tag, got)
			} else if version != "" && got != digests[version] {
				t.Errorf("%s: %s → %q, want %s (%s)", step, tag, got, version, digests[version])
			}
		}
	}

	push("2.1.106")
	want("push 2.1.106", map[string]string{"2.1": "2.1.106", "2": "2.1.106", "latest": "2.1.106"})
	push("2.1.107")
	want("push 2.1.107", map[string]string{"2.1": "2.1.107", "2": "2.1.107", "latest": "2.1.107"})
	push("3.0.0-rc.1")
	want("push 3.0.0-rc.1", map[string]string{"2.1": "2.1.107", "2": "2.1.107", "latest": "2.1.107", "3": "", "3.0": ""})
	push("3.0.0")
	want("push 3.0.0", map[string]string{"latest": "3.0.0", "3": "3.0.0", "3.0": "3.0.0", "2": "2.1.107", "2.1": "2.1.107"})
	push("2.1.105")
	want("push a late 2.1.105", map[string]string{"latest": "3.0.0", "2": "2.1.107", "2.1": "2.1.107", "2.1.105": "2.1.105"})
	checkTagList(t, srv, "gallery/story", []string{"2.1.105", "2.1.106", "2.1.107", "3.0.0-rc.1", "3.0.0", "latest", "2", "2.1", "3", "3.0"})

	// The tags page says who moved latest: the registry, for the pusher
	// (anonymous on this open server).
	var tag struct {
		LastUpdaterUsername string `json:"last_updater_username"`
	}
	getJSON(t, srv.URL+"/v2/namespaces/gallery/repositories/story/tags/latest", &tag)
	if tag.LastUpdaterUsername != "wharf (for anonymous)" {
		t.Errorf("latest last updated by %q, want wharf (for anonymous)", tag.LastUpdaterUsername)
	}

	// Delete 3.0.0 (by its digest, as crane delete and the UI do).
	deleteManifest(t, srv, "gallery/story", digests["3.0.0"])
	want("delete 3.0.0", map[string]string{"latest": "2.1.107", "3": "", "3.0": "", "2": "2.1.107", "3.0.0-rc.1": "3.0.0-rc.1"})

	// The same 2.1.106 again is accepted; a different one is refused.
	out := d("image", "push", repo+":2.1.106").mustRun(t)
	checkPushDigest(t, out, "2.1.106", digests["2.1.106"])
	build(repo+":other", "something else")
	d("image", "tag", repo+":other", repo+":2.1.106").mustRun(t)
	out, err := d("image", "push", repo+":2.1.106").run(t)
	if err == nil || !strings.Contains(out, "versions are immutable under the floating-tags=semver policy on gallery/*") {
		t.Errorf("a different 2.1.106: err=%v, output lacks wharf's message:\n%s", err, out)
	}
	want("after the refusal", map[string]string{"2.1.106": "2.1.106", "latest": "2.1.107"})
}

// manifestDigest is the digest tag points at in repo, "" if none.
func manifestDigest(t *testing.T, srv *wharfServer, repo, tag string) string {
	t.Helper()
	resp := call(t, http.MethodHead, srv.URL+"/v2/"+repo+"/manifests/"+tag,
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	if resp.StatusCode == http.StatusNotFound {
		return ""
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s:%s = %s", repo, tag, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

func deleteManifest(t *testing.T, srv *wharfServer, repo, digest string) {
	t.Helper()
	if resp := call(t, http.MethodDelete, srv.URL+"/v2/"+repo+"/manifests/"+digest, ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE %s@%s = %s", repo, digest, resp.Status)
	}
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp := call(t, http.MethodGet, url, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s", url, resp.Status)
	}
	if err := json.Unmarshal(resp.body, into); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

type callResponse struct {
	*http.Response
	body []byte
}

func call(t *testing.T, method, url, accept string) callResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return callResponse{resp, b.Bytes()}
}
