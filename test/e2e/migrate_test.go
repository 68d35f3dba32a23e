//go:build e2e

package e2e

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/wharf/wharf/internal/servicetest"
)

// migrateSummary matches the summary line of a successful, verified
// `wharf migrate`: blobs copied and present, records added and present,
// blobs and records verified.
var migrateSummary = regexp.MustCompile(`Migrated in \S+: blobs (\d+) copied \([^)]*\), (\d+) already present \([^)]*\); ` +
	`records (\d+) added, (\d+) already there, 0 replaced; verified (\d+) blobs \([^)]*\) and (\d+) records`)

// runMigrate runs `wharf migrate --verify` with args and returns the
// numbers of its summary; the transcript is in the test's log.
func runMigrate(t *testing.T, env []string, args ...string) [6]string {
	t.Helper()
	c := cmd(wharfBin, append([]string{"migrate", "--verify"}, args...)...)
	c.env = env
	out := c.mustRun(t)
	m := migrateSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in the migration's output:\n%s", out)
	}
	return [6]string(m[1:])
}

// TestMigrate moves an installation from the embedded stores to
// PostgreSQL + S3 (versitygw) and back: crane pushes to wharf on its
// defaults, wharf serves the same digests from PostgreSQL + S3 after
// `wharf migrate --verify`, and again from a fresh data directory after
// migrating back.
func TestMigrate(t *testing.T) {
	// As every e2e tool, the servers must be there: fail, never skip.
	t.Setenv("WHARF_TEST_SERVICES", "require")
	pg := servicetest.StartPostgres(t)
	s3 := servicetest.StartS3(t)
	dbURL := pg.Database(t)
	storageURL := s3.URL(s3.Bucket(t), "wharf")
	env := s3.Env()

	crane := requireTool(t, "crane")
	craneRun := func(args ...string) command { return cmd(crane, append(args, "--insecure")...) }

	img, err := random.Image(2<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	imgDir := t.TempDir()
	lp, err := layout.Write(imgDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
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

	src := startWharf(t)
	craneRun("push", imgDir, src.Addr+"/team/app:v1").mustRun(t)
	craneRun("tag", src.Addr+"/team/app:v1", "stable").mustRun(t)
	craneRun("push", idxDir, src.Addr+"/team/multi:latest").mustRun(t)
	want := map[string]string{
		"team/app:v1":       mustDigest(t, img).String(),
		"team/app:stable":   mustDigest(t, img).String(),
		"team/multi:latest": mustDigest(t, idx).String(),
	}
	src.stop(t)

	// team/app: a config and 3 layers; team/multi: a shared layer and,
	// per platform, a layer and a config of its own.
	blobs := 4 + 1 + 2*len(indexPlatforms)
	got := runMigrate(t, env, "--from-data-dir", src.DataDir, "--to-database-url", dbURL, "--to-storage-url", storageURL)
	if got[0] != strconv.Itoa(blobs) || got[1] != "0" || got[3] != "0" || got[4] != strconv.Itoa(blobs) || got[2] != got[5] {
		t.Errorf("to PostgreSQL + S3: blobs copied/present, records added/present, verified blobs/records = %v; want %d blobs copied and verified, every record added and verified", got, blobs)
	}

	shared := startWharfEnv(t, freeLoopbackAddr(t), env, "--database-url", dbURL, "--storage-url", storageURL)
	for ref, d := range want {
		checkDigest(t, craneRun("digest", shared.Addr+"/"+ref), d)
	}
	craneRun("validate", "--remote", shared.Addr+"/team/app:v1").mustRun(t)
	for _, p := range indexPlatforms {
		checkDigest(t, craneRun("digest", "--platform", p.String(), shared.Addr+"/team/multi:latest"), children[p.String()].String())
	}
	pulled := t.TempDir() + "/pulled"
	craneRun("pull", "--format=oci", shared.Addr+"/team/multi:latest", pulled).mustRun(t)
	checkPulledLayout(t, pulled, idx)
	checkTags(t, craneRun("ls", shared.Addr+"/team/app"), "stable", "v1")
	shared.stop(t)

	// And back, into a fresh data directory.
	back := t.TempDir() + "/back"
	got = runMigrate(t, env, "--from-database-url", dbURL, "--from-storage-url", storageURL, "--to-data-dir", back)
	if got[0] != strconv.Itoa(blobs) || got[1] != "0" || got[4] != strconv.Itoa(blobs) || got[2] != got[5] {
		t.Errorf("back to SQLite + directory: %v; want %d blobs copied and verified, every record verified", got, blobs)
	}
	// Run again: everything is there, nothing is copied.
	got = runMigrate(t, env, "--from-database-url", dbURL, "--from-storage-url", storageURL, "--to-data-dir", back)
	if got[0] != "0" || got[1] != strconv.Itoa(blobs) || got[2] != "0" {
		t.Errorf("second run back: %v; want nothing copied, %d blobs present", got, blobs)
	}

	home := startWharf(t, "--data-dir", back) // the later flag wins
	for ref, d := range want {
		checkDigest(t, craneRun("digest", home.Addr+"/"+ref), d)
	}
	craneRun("validate", "--remote", home.Addr+"/team/multi:latest").mustRun(t)
}
