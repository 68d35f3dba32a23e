//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/wharf/wharf/bench/reference"
)

// referenceRegistry is a running CNCF distribution registry with
// filesystem storage.
type referenceRegistry struct {
	Addr string
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startReference runs the reference registry (installed by setup.sh) on
// a free loopback port over the storage root, and waits until it answers.
func startReference(t *testing.T, root string) *referenceRegistry {
	t.Helper()
	return startReferenceAt(t, root, freeLoopbackAddr(t))
}

// startReferenceAt is startReference on a given address (a registry
// restarted where its clients know it).
func startReferenceAt(t *testing.T, root, addr string) *referenceRegistry {
	t.Helper()
	bin := reference.Path(reference.DefaultCacheDir())
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("reference registry %s missing (%v): run `bash test/e2e/setup.sh`", bin, err)
	}
	r := &referenceRegistry{Addr: addr, done: make(chan error, 1), log: filepath.Join(t.TempDir(), "registry.log")}
	cfg := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, root, r.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	r.cmd = exec.Command(bin, "serve", cfg)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() { r.stop(t) })
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(r.log)
			t.Fatalf("reference registry not ready: %v\n%s", err, log)
		}
		time.Sleep(readyPoll)
	}
}

// stop ends the registry (idempotent).
func (r *referenceRegistry) stop(t *testing.T) {
	if r.done == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(shutdownTimeout):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.done = nil
}

// importSummary matches the last line of `wharf import distribution`.
var importSummary = regexp.MustCompile(`Imported (\d+) repositories in \S+: blobs (\d+) imported \([^)]*\), (\d+) already present; ` +
	`manifests (\d+) imported, (\d+) already present; tags (\d+) set, (\d+) unchanged`)

// checkImport runs an import and compares its summary with want:
// repositories, blobs imported and present, manifests imported and
// present, tags set and unchanged.
func checkImport(t *testing.T, root, dataDir string, want [7]int) {
	t.Helper()
	out := cmd(wharfBin, "import", "distribution", root, "--data-dir", dataDir).mustRun(t)
	m := importSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in the import's output:\n%s", out)
	}
	var got [7]int
	for i := range got {
		got[i], _ = strconv.Atoi(m[i+1])
	}
	if got != want {
		t.Errorf("import: repositories, blobs imported/present, manifests imported/present, tags set/unchanged = %v, want %v\n%s", got, want, out)
	}
}

// TestImportDistribution moves what the real reference registry wrote to
// its filesystem storage into wharf: a first pass while it still serves,
// a final pass (beside a running wharf) for what was pushed since, and
// crane pulls every tag through wharf with the digests it pushed.
func TestImportDistribution(t *testing.T) {
	crane := requireTool(t, "crane")
	craneRun := func(args ...string) command { return cmd(crane, append(args, "--insecure")...) }
	root := t.TempDir()
	ref := startReference(t, root)

	// A multi-layer image, tagged twice, and a three-platform index.
	img, err := random.Image(256<<10, 4)
	if err != nil {
		t.Fatal(err)
	}
	imgDir := t.TempDir()
	if _, err := layout.Write(imgDir, empty.Index); err != nil {
		t.Fatal(err)
	}
	lp, _ := layout.FromPath(imgDir)
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	idx, children := randomIndex(t)
	idxDir := t.TempDir()
	lp, err = layout.Write(idxDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	craneRun("push", imgDir, ref.Addr+"/team/app:v1").mustRun(t)
	craneRun("tag", ref.Addr+"/team/app:v1", "stable").mustRun(t)
	craneRun("push", idxDir, ref.Addr+"/team/multi:latest").mustRun(t)
	want := map[string]string{
		"team/app:v1":       mustDigest(t, img).String(),
		"team/app:stable":   mustDigest(t, img).String(),
		"team/multi:latest": mustDigest(t, idx).String(),
	}

	// First pass, the old registry still serving. team/app: config and 4
	// layers; team/multi: the shared layer, 3 layers and 3 configs of its
	// own; manifests: 1 image, 3 children and the index.
	dataDir := t.TempDir()
	checkImport(t, root, dataDir, [7]int{2, 12, 0, 5, 0, 3, 0})

	srv := startWharf(t, "--data-dir", dataDir) // the later flag wins
	for ref, d := range want {
		checkDigest(t, craneRun("digest", srv.Addr+"/"+ref), d)
		craneRun("validate", "--remote", srv.Addr+"/"+ref).mustRun(t)
	}
	for _, p := range indexPlatforms {
		checkDigest(t, craneRun("digest", "--platform", p.String(), srv.Addr+"/team/multi:latest"), children[p.String()].String())
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	craneRun("pull", "--format=oci", srv.Addr+"/team/multi:latest", pulled).mustRun(t)
	checkPulledLayout(t, pulled, idx)

	// One more image and a moved tag reach the old registry before it
	// stops; the final pass, beside the running wharf, takes only those.
	img2, err := random.Image(128<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	img2Dir := t.TempDir()
	if _, err := layout.Write(img2Dir, empty.Index); err != nil {
		t.Fatal(err)
	}
	lp, _ = layout.FromPath(img2Dir)
	if err := lp.AppendImage(img2); err != nil {
		t.Fatal(err)
	}
	craneRun("push", img2Dir, ref.Addr+"/team/app:v2").mustRun(t)
	craneRun("tag", ref.Addr+"/team/app:v2", "stable").mustRun(t)
	ref.stop(t)
	want["team/app:v2"] = mustDigest(t, img2).String()
	want["team/app:stable"] = want["team/app:v2"]

	// Config and 2 layers new, 12 present; 1 manifest new, 5 present;
	// v2 and stable set, v1 and latest unchanged.
	checkImport(t, root, dataDir, [7]int{2, 3, 12, 1, 5, 2, 2})
	for ref, d := range want {
		checkDigest(t, craneRun("digest", srv.Addr+"/"+ref), d)
	}
	craneRun("validate", "--remote", srv.Addr+"/team/app:stable").mustRun(t)
	checkTags(t, craneRun("ls", srv.Addr+"/team/app"), "stable", "v1", "v2")
}
