package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/client/build"
	"github.com/wharf/wharf/internal/registrytest"
)

// buildContext writes a build context with a Dockerfile.
func buildContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["Dockerfile"] = dockerfile
	for n, body := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImageBuild_PullsTheBaseAndPushes(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	base := testImage(t, "golden", 2)
	baseRef, _ := name.ParseReference(host + "/golden/base:1")
	if err := remote.Write(baseRef, base, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	dir := buildContext(t, "FROM "+host+"/golden/base:1\nCOPY hello.txt /app/\nCMD [\"/app/hello.txt\"]\n",
		map[string]string{"hello.txt": "hello"})
	var out strings.Builder
	err := ImageBuild(ctx, st, dir, BuildOptions{Remote: testRemote(t), Tags: []string{host + "/apps/hello:1"}, Push: true,
		SourceDateEpoch: "1700000000"}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"Step 1/3 : FROM", "Successfully tagged " + host + "/apps/hello:1", "Mounted from golden/base", ": Pushed", "1: digest: sha256:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	local, _, err := st.Image(ctx, host+"/apps/hello:1")
	if err != nil {
		t.Fatal(err)
	}
	appRef, _ := name.ParseReference(host + "/apps/hello:1")
	pushed, err := remote.Image(appRef, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := local.Digest()
	pd, _ := pushed.Digest()
	if ld != pd {
		t.Errorf("pushed %s, stored %s", pd, ld)
	}
	m, _ := pushed.Manifest()
	bd, _ := base.Digest()
	if m.Annotations[build.AnnotationBaseName] != host+"/golden/base:1" || m.Annotations[build.AnnotationBaseDigest] != bd.String() {
		t.Errorf("annotations %v, want the base %s@%s", m.Annotations, host+"/golden/base:1", bd)
	}
	cf, _ := pushed.ConfigFile()
	if !cf.Created.Time.Equal(time.Unix(1700000000, 0)) || len(cf.RootFS.DiffIDs) != 3 {
		t.Errorf("created %v, %d layers", cf.Created, len(cf.RootFS.DiffIDs))
	}

	// The base is not in the local store unless pulled: a second build
	// with the same epoch gives the same digest.
	var again strings.Builder
	if err := ImageBuild(ctx, st, dir, BuildOptions{Remote: testRemote(t), Tags: []string{"again:1"}, SourceDateEpoch: "1700000000"}, &again); err != nil {
		t.Fatal(err)
	}
	_, d2, err := st.Image(ctx, "again:1")
	if err != nil || d2 != ld {
		t.Errorf("second build %s (%v), first %s", d2, err, ld)
	}
}

func TestImageBuild_RunIsRefused(t *testing.T) {
	dir := buildContext(t, "FROM scratch\nRUN make\n", map[string]string{})
	err := ImageBuild(context.Background(), newStore(t), dir, BuildOptions{Tags: []string{"x:1"}}, &strings.Builder{})
	if !errors.Is(err, build.ErrRunNotSupported) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v", err)
	}
}
