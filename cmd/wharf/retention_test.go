package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

// TestRetentionCommands previews and runs a retention policy offline on a
// server's data directory: the preview names what the run then deletes.
func TestRetentionCommands(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	srv := registrytest.NewServer(t, registrytest.WithDataDir(dir))
	for _, tag := range []string{"1.0.0", "1.0.1", "1.1.0"} {
		srv.PushRandom(t, "team/app", tag)
	}
	srv.Stop()
	run := offline(t, dir)
	if out := run("retention", "preview", "team/*"); !strings.Contains(out, "(nothing to delete)") {
		t.Errorf("preview without a policy:\n%s", out)
	}
	if _, _, err := runRootIn(ctx, "", "policy", "set", "team/*", "retention=semver-patches=1 keep=3", "--data-dir", dir); err == nil ||
		!strings.Contains(err.Error(), `retention="semver-patches=1 keep=3": rule 1 (semver-patches=1 keep=3): keep=3: unknown condition`) {
		t.Errorf("a bad rule: err = %v", err)
	}
	run("policy", "set", "team/*", "retention=semver-patches=1")
	preview := run("retention", "preview", "team/*")
	deleteLine := regexp.MustCompile(`(?m)^team/app\s+1\.0\.0\s+sha256:\S+\s+delete\s+kept by no rule: rule 1: the 2nd highest of line 1\.0`)
	if !deleteLine.MatchString(preview) || strings.Count(preview, "delete") != 1 {
		t.Errorf("preview:\n%s", preview)
	}
	if all := run("retention", "preview", "team/app", "--all"); strings.Count(all, " keep ") != 2 {
		t.Errorf("preview --all:\n%s", all)
	}
	out := run("retention", "run", "team/*")
	if !deleteLine.MatchString(out) || !strings.Contains(out, "deleted 1 tags and 0 manifests in 1 repositories, 0 failures") {
		t.Errorf("run:\n%s", out)
	}
	if out := run("retention", "preview", "team/*"); !strings.Contains(out, "(nothing to delete)") {
		t.Errorf("preview after the run:\n%s", out)
	}
	if runs := run("retention", "runs"); !regexp.MustCompile(`(?m)^1\s+\d{4}-\S+\s+\S+\s+manual\s+cli\s+team/\*\s+1\s+1\s+0\s+0$`).MatchString(runs) {
		t.Errorf("runs:\n%s", runs)
	}
}
