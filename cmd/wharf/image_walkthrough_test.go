package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
	"github.com/wharf/wharf/internal/registrytest"
)

// galleryImage stores a three-layer image as image-gallery:latest in the
// store at home, as a build would leave it, and returns its image ID.
func galleryImage(t *testing.T, home string) string {
	t.Helper()
	ctx := context.Background()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.WriteImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	named, err := ref.Parse("image-gallery")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(ctx, named, d); err != nil {
		t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestWalkthrough_SharingImages runs the "sharing images" tutorial with
// wharf in place of docker against an in-process wharf serve: login, tag
// under an account name, ls with both reference filters, push, push again,
// tag latest/2/2.1/2.1.106 and push --all-tags, pull into a fresh store,
// save and load.
func TestWalkthrough_SharingImages(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	repo := host + "/alice/image-gallery"
	home := wharfEnv(t)
	id := galleryImage(t, home)

	// login: the test server has no authentication, so /v2/ answers 200 to
	// anyone and any credentials pass the check; they are saved all the same.
	out, errOut, err := wharf(t, []byte("wonderland\n"), "login", host, "--username", "alice", "--password-stdin")
	if err != nil {
		t.Fatal(err)
	}
	if out != "Login Succeeded\n" {
		t.Errorf("login printed %q, want Login Succeeded", out)
	}
	if !strings.Contains(errOut, "WARNING! Your credentials are stored unencrypted in '"+filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json")+"'.") {
		t.Errorf("login's stderr %q lacks docker's warning about the unencrypted password", errOut)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, err := os.ReadFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Auths[host].Auth; got != "YWxpY2U6d29uZGVybGFuZA==" { // base64("alice:wonderland")
		t.Errorf("config.json auth for %s = %q, want alice:wonderland", host, got)
	}

	// Tag under the account name, as the tutorial does for Docker Hub
	// ($dockerId/image-gallery), and under this registry's host to push.
	mustWharf(t, "image", "tag", "image-gallery", "alice/image-gallery:v1")
	mustWharf(t, "image", "tag", "image-gallery", repo+":v1")

	// Both filters OR'd, matched as docker does: a glob's * does not cross
	// "/", so */image-gallery finds the account's repository but not the
	// one under HOST/alice/.
	lsFormat := "{{.Repository}}:{{.Tag}} {{.ID}}"
	out = mustWharf(t, "image", "ls", "--filter", "reference=image-gallery", "--filter", "reference=*/image-gallery", "--format", lsFormat)
	short := strings.TrimPrefix(id, "sha256:")[:12]
	if want := "alice/image-gallery:v1 " + short + "\nimage-gallery:latest " + short + "\n"; out != want {
		t.Errorf("image ls with both filters:\n%s\nwant:\n%s", out, want)
	}
	out = mustWharf(t, "image", "ls", "--filter", "reference=*/*/image-gallery", "--format", lsFormat)
	if want := repo + ":v1 " + short + "\n"; out != want {
		t.Errorf("image ls --filter reference=*/*/image-gallery:\n%s\nwant:\n%s", out, want)
	}
	out = mustWharf(t, "images", "--filter", "reference=image-gallery")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 ||
		strings.Join(strings.Fields(lines[0]), " ") != "REPOSITORY TAG IMAGE ID CREATED SIZE" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "image-gallery latest "+short+" ") {
		t.Errorf("images table:\n%s", out)
	}

	// Push, then push again: every layer is already there.
	out = mustWharf(t, "image", "push", repo+":v1")
	if !strings.HasPrefix(out, "The push refers to repository ["+repo+"]\n") {
		t.Errorf("push did not start with the repository:\n%s", out)
	}
	if n := layerLines(out, "Pushed"); n != 3 {
		t.Errorf("first push: %d layers Pushed, want 3:\n%s", n, out)
	}
	digests, _ := pushedDigests(t, out)
	digest := digests["v1"]
	if digest == "" {
		t.Fatalf("push printed no digest for v1:\n%s", out)
	}

	out = mustWharf(t, "push", repo+":v1")
	if n := layerLines(out, "Layer already exists"); n != 3 || layerLines(out, "Pushed") != 0 {
		t.Errorf("second push: %d layers already existed, want all 3 and none Pushed:\n%s", n, out)
	}
	if again, _ := pushedDigests(t, out); again["v1"] != digest {
		t.Errorf("second push digest %s, want %s", again["v1"], digest)
	}

	// One image, many tags, all pushed.
	for _, tag := range []string{"latest", "2", "2.1", "2.1.106"} {
		mustWharf(t, "tag", repo+":v1", repo+":"+tag)
	}
	out = mustWharf(t, "image", "push", "--all-tags", repo)
	all, order := pushedDigests(t, out)
	if want := []string{"2", "2.1", "2.1.106", "latest", "v1"}; !slices.Equal(order, want) {
		t.Errorf("push --all-tags pushed %v, want %v:\n%s", order, want, out)
	}
	for tag, d := range all {
		if d != digest {
			t.Errorf("push --all-tags: %s has digest %s, want %s", tag, d, digest)
		}
	}
	if strings.Count(out, "The push refers to repository") != 1 {
		t.Errorf("push --all-tags named the repository more than once:\n%s", out)
	}
	if got := strings.Fields(mustWharf(t, "repo", "tags", repo)); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"2", "2.1", "2.1.106", "latest", "v1"}) {
		t.Errorf("registry has tags %v", got)
	}

	archive := filepath.Join(t.TempDir(), "image-gallery.tar")
	mustWharf(t, "image", "save", "-o", archive, repo+":v1")

	// Pull into a fresh store: same manifest digest, same image ID.
	wharfEnv(t)
	out = mustWharf(t, "image", "pull", repo+":2.1.106")
	if m := pullDigestRe.FindStringSubmatch(out); m == nil || m[1] != digest {
		t.Errorf("pull into a fresh store printed digest %v, want %s:\n%s", m, digest, out)
	}
	if n := layerLines(out, "Pull complete"); n != 3 {
		t.Errorf("pull: %d layers Pull complete, want 3:\n%s", n, out)
	}
	if !strings.HasSuffix(out, "Status: Downloaded newer image for "+repo+":2.1.106\n"+repo+":2.1.106\n") {
		t.Errorf("pull did not end as docker's does:\n%s", out)
	}
	if got := mustWharf(t, "image", "inspect", "--format", "{{.Id}} {{index .RepoDigests 0}}", repo+":2.1.106"); got != id+" "+repo+"@"+digest+"\n" {
		t.Errorf("pulled image: %q, want %q", got, id+" "+repo+"@"+digest)
	}
	out = mustWharf(t, "pull", repo+":2.1.106")
	if !strings.Contains(out, "Status: Image is up to date for "+repo+":2.1.106\n") {
		t.Errorf("second pull is not up to date:\n%s", out)
	}

	// Load what was saved before into another fresh store.
	wharfEnv(t)
	out = mustWharf(t, "image", "load", "-i", archive)
	if out != "Loaded image: "+repo+":v1\n" {
		t.Errorf("load printed %q", out)
	}
	if got := mustWharf(t, "image", "inspect", "--format", "{{.Id}} {{.Descriptor.digest}}", repo+":v1"); got != id+" "+digest+"\n" {
		t.Errorf("loaded image: %q, want %q", got, id+" "+digest)
	}
}

// TestImageImport_MakesAnImageToTag checks the first step a reader without
// a built image takes: import a filesystem tar under a name.
func TestImageImport_MakesAnImageToTag(t *testing.T) {
	wharfEnv(t)
	rootfs := rootfsTar(t, map[string]string{"etc/gallery": "hello\n"})
	out := mustWharfIn(t, rootfs, "image", "import", "-", "image-gallery")
	id := strings.TrimSpace(out)
	if _, err := v1.NewHash(id); err != nil {
		t.Fatalf("import printed %q, want an image ID: %v", out, err)
	}
	if got := mustWharf(t, "image", "inspect", "--format", "{{.Id}} {{json .RepoTags}} {{len .RootFS.Layers}}", "image-gallery"); got != id+` ["image-gallery:latest"] 1`+"\n" {
		t.Errorf("inspect after import: %q", got)
	}
}

// TestImageImport_ChangeAndPlatformFlags: docker import's -c and --platform
// reach the image config.
func TestImageImport_ChangeAndPlatformFlags(t *testing.T) {
	wharfEnv(t)
	rootfs := rootfsTar(t, map[string]string{"bin/sh": "#!"})
	mustWharfIn(t, rootfs, "import", "--platform", "linux/arm64", "-c", `CMD ["sh"]`, "--change", "WORKDIR /srv", "-", "base:1")
	got := mustWharf(t, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{.Config.WorkingDir}}", "base:1")
	if got != `linux/arm64 ["sh"] /srv`+"\n" {
		t.Errorf("inspect after import: %q", got)
	}
	if _, _, err := wharf(t, rootfs, "import", "-c", "RUN make", "-", "base:2"); err == nil || err.Error() != "RUN is not a valid change command" {
		t.Errorf("import -c 'RUN make': err = %v", err)
	}
}
