package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageBuildAndRebase_Commands runs the two commands as a person
// would: flags, SOURCE_DATE_EPOCH from the environment, the local store.
func TestImageBuildAndRebase_Commands(t *testing.T) {
	wharfEnv(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	for _, v := range []string{"1.0", "1.1"} {
		mustWharfIn(t, rootfsTar(t, map[string]string{"etc/version": v}), "image", "import", "-", "golden/base:"+v)
	}
	dir := t.TempDir()
	df := "ARG BASE=golden/base:1.0\nFROM $BASE\nARG GREETING\nLABEL greeting=$GREETING\nCOPY app.txt /app/\n"
	os.WriteFile(filepath.Join(dir, "app.Dockerfile"), []byte(df), 0o644)
	os.WriteFile(filepath.Join(dir, "app.txt"), []byte("app"), 0o644)
	build := func(tag string) string {
		return mustWharf(t, "image", "build", "-f", filepath.Join(dir, "app.Dockerfile"), "--build-arg", "GREETING=hi",
			"-t", tag, "--platform", "linux/amd64", dir)
	}
	first := build("web:1")
	if !strings.Contains(first, "Step 5/5 : COPY app.txt /app/") || !strings.Contains(first, "Successfully tagged web:1") {
		t.Errorf("build printed:\n%s", first)
	}
	if again := build("web:again"); strings.Split(first, "Successfully built ")[1][:12] != strings.Split(again, "Successfully built ")[1][:12] {
		t.Errorf("two builds with one SOURCE_DATE_EPOCH differ:\n%s\n%s", first, again)
	}
	if got := mustWharf(t, "image", "inspect", "--format", "{{.Config.Labels.greeting}} {{.Created}}", "web:1"); got != "hi 2026-01-01T00:00:00Z\n" {
		t.Errorf("inspect: %q", got)
	}
	out := mustWharf(t, "image", "rebase", "web:1", "--onto", "golden/base:1.1", "-t", "web:2")
	if !strings.Contains(out, "Rebased web:1 onto golden/base:1.1") {
		t.Errorf("rebase printed %q", out)
	}
	if _, _, err := wharf(t, nil, "image", "rebase", "web:2", "--onto", "golden/base:1.1", "--old-base", "golden/base:1.0"); err == nil ||
		!strings.Contains(err.Error(), "not built on the old base") {
		t.Errorf("rebase off the wrong base: %v", err)
	}
}
