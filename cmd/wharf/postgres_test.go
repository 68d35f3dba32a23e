package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/servicetest"
)

// The offline commands and the server share a PostgreSQL database named by
// --database-url: an account made by one is known to the other, and no
// SQLite file appears in the data directory.
func TestServe_OnPostgres(t *testing.T) {
	url := servicetest.StartPostgres(t).Database(t)
	dir := t.TempDir()
	out, errOut, err := runRootIn(t.Context(), "alice-password\n",
		"user", "add", "alice", "--admin", "--password-stdin", "--data-dir", dir, "--database-url", url)
	if err != nil {
		t.Fatalf("user add: %v\n%s%s", err, out, errOut)
	}

	t.Setenv("WHARF_DATABASE_URL", url) // the environment works as the flag does
	addr, stop, done := startServe(t, "--addr", "127.0.0.1:0", "--data-dir", dir)
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
	req.SetBasicAuth("alice", "alice-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ as alice = %d; want 200 (the account made offline)", resp.StatusCode)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wharf.db")); err == nil {
		t.Errorf("a SQLite database appeared in the data directory")
	}
	out, errOut, err = runRootIn(t.Context(), "", "user", "ls", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "alice") {
		t.Errorf("user ls = %q, %v (%s); want alice", out, err, errOut)
	}
}

// A database that cannot be reached stops serve with one line that says
// so, without the password.
func TestServe_UnreachablePostgresIsOneLine(t *testing.T) {
	_, err := runRoot(t.Context(), "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--database-url", "postgres://wharf:s3cret@127.0.0.1:1/wharf?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("serve started without its database")
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach the server") || strings.Contains(msg, "\n") || strings.Contains(msg, "s3cret") {
		t.Errorf("serve error = %q; want one line saying the server cannot be reached, without the password", msg)
	}
}
