package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/migrate"
)

// sourceDataDir makes a data directory holding one imported image and one
// user, and returns it.
func sourceDataDir(t *testing.T) string {
	t.Helper()
	root, _ := distributionTree(t, "layer bytes")
	dir := filepath.Join(t.TempDir(), "source")
	mustWharf(t, "import", "distribution", root, "--data-dir", dir)
	mustWharfIn(t, []byte("correct horse battery\n"), "user", "add", "alice", "--password-stdin", "--data-dir", dir)
	return dir
}

func TestMigrate_CommandCopiesThenSkipsWhatIsThere(t *testing.T) {
	src := sourceDataDir(t)
	dst := filepath.Join(t.TempDir(), "new", "data")
	// The source as serve finds it, from the environment; the
	// destination from its flags only, whatever the environment says.
	t.Setenv("WHARF_DATA_DIR", src)
	t.Setenv("WHARF_DATABASE_URL", filepath.Join(src, "wharf.db"))

	out := mustWharf(t, "migrate", "--to-data-dir", dst, "--verify")
	t.Logf("first run:\n%s", out)
	for _, want := range []string{
		"from sqlite " + filepath.Join(src, "wharf.db") + " + filesystem " + filepath.Join(src, "blobs"),
		"  to sqlite " + filepath.Join(dst, "wharf.db") + " + filesystem " + filepath.Join(dst, "blobs"),
		"blobs: 2 copied (89 B), 0 already present (0 B); verify: 2 re-hashed at the destination (89 B), 0 copied again",
		"users: 1 added, 0 already there",
		"manifests: 1 added, 0 already there",
		"tags: 1 added, 0 already there",
		"Migrated in ",
		"; verified 2 blobs (89 B) and ",
		"1 users,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first run lacks %q", want)
		}
	}
	if ls := mustWharf(t, "user", "ls", "--data-dir", dst); !strings.Contains(ls, "alice") {
		t.Errorf("user ls at the destination:\n%s", ls)
	}

	out = mustWharf(t, "migrate", "--to-data-dir", dst)
	t.Logf("second run:\n%s", out)
	if !strings.Contains(out, "blobs: 0 copied (0 B), 2 already present (89 B)") || !strings.Contains(out, "records 0 added,") {
		t.Errorf("second run copied again")
	}
}

func TestMigrate_CommandRefusesUnclearEnds(t *testing.T) {
	src := sourceDataDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no destination", []string{"--from-data-dir", src}, "name the destination: --to-database-url and --to-storage-url, or --to-data-dir"},
		{"only a database", []string{"--from-data-dir", src, "--to-database-url", "postgres://u@h:5432/db"}, "name the destination"},
		{"the same database", []string{"--from-data-dir", src, "--to-data-dir", t.TempDir(), "--to-database-url", filepath.Join(src, "wharf.db")}, "the source and the destination are the same database"},
		{"the same blob store", []string{"--from-data-dir", src, "--to-data-dir", src + "/.", "--to-database-url", filepath.Join(t.TempDir(), "x.db")}, "the source and the destination are the same blob store"},
		{"a bad URL", []string{"--from-data-dir", src, "--to-data-dir", t.TempDir(), "--to-storage-url", "s3://b?nope=1"}, "destination: invalid configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := wharf(t, nil, append([]string{"migrate"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v; want %q", err, tc.want)
			}
		})
	}
	// A source that is not there is not created.
	missing := filepath.Join(t.TempDir(), "missing")
	if _, _, err := wharf(t, nil, "migrate", "--from-data-dir", missing, "--to-data-dir", t.TempDir()); err == nil {
		t.Error("migrate from a missing data directory succeeded")
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("migrate created the missing source: %v", err)
	}
}

func TestMigrate_CommandFailsOnConflictAndSaysHow(t *testing.T) {
	src := sourceDataDir(t)
	dst := t.TempDir()
	mustWharf(t, "migrate", "--from-data-dir", src, "--to-data-dir", dst)
	// The destination changes alice's password: her record differs.
	mustWharfIn(t, []byte("another password\n"), "user", "passwd", "alice", "--password-stdin", "--data-dir", dst)
	out, _, err := wharf(t, nil, "migrate", "--from-data-dir", src, "--to-data-dir", dst)
	if !errors.Is(err, migrate.ErrConflict) || !strings.Contains(err.Error(), "pass --replace") {
		t.Fatalf("err = %v; want ErrConflict naming --replace", err)
	}
	if !strings.Contains(out, "differs: users: alice") || !strings.Contains(out, "Stopped in") {
		t.Errorf("output:\n%s", out)
	}
	out = mustWharf(t, "migrate", "--from-data-dir", src, "--to-data-dir", dst, "--replace")
	if !strings.Contains(out, "users: 0 added, 0 already there, 1 replaced") {
		t.Errorf("--replace output:\n%s", out)
	}
}
