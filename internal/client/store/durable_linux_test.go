package store

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWriteIndex_RenameIsSynced: after index.json is renamed into place its
// directory is fsynced, before the write returns; otherwise a machine crash
// could bring back the old index.json and lose an image a pull or tag had
// reported stored. The write runs in a child test process under strace.
func TestWriteIndex_RenameIsSynced(t *testing.T) {
	if dir := os.Getenv("WHARF_STORE_STRACE_CHILD"); dir != "" {
		s := openStore(t, dir)
		put(t, s, newImage(t), "example.com/app:v1")
		return
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		// make test installs strace (test/e2e/setup.sh) and must run this;
		// a bare `go test ./...` may lack it.
		if os.Getenv("WHARF_TEST_SERVICES") == "require" {
			t.Fatal("strace is not installed: run `bash test/e2e/setup.sh`")
		}
		t.Skip("strace is not installed")
	}
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(strace, "-f", "-o", trace, "-e", "trace=openat,rename,renameat,renameat2,fsync",
		os.Args[0], "-test.run=^TestWriteIndex_RenameIsSynced$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WHARF_STORE_STRACE_CHILD="+root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace of the child process: %v: %s", err, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	// Each line: PID SYSCALL(ARGS) = RESULT, maybe split into
	// "<unfinished ...>" and "<... resumed>" halves.
	opened := regexp.MustCompile(`openat\(AT_FDCWD, "([^"]*)", [^)]*\) = (\d+)`)
	synced := regexp.MustCompile(`fsync\((\d+)`)
	var fds = map[string]string{} // fd -> path, as last opened
	renamed := false
	for _, line := range strings.Split(string(b), "\n") {
		if m := opened.FindStringSubmatch(line); m != nil {
			fds[m[2]] = m[1]
		}
		if strings.Contains(line, "rename") && strings.Contains(line, `"`+filepath.Join(root, indexFile)+`"`) {
			renamed = true
		}
		if m := synced.FindStringSubmatch(line); m != nil && renamed && fds[m[1]] == root {
			return
		}
	}
	if !renamed {
		t.Fatalf("the trace shows no rename of %s", filepath.Join(root, indexFile))
	}
	t.Errorf("%s was renamed into place and its directory never fsynced afterwards", indexFile)
}
