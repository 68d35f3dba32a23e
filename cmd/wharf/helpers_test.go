package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as the wharf binary: with WHARF_TEST_MAIN_ARGS set
// (arguments separated by newlines) the test binary runs main() with them,
// so that tests can check what a person sees: exit code and stderr.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("WHARF_TEST_MAIN_ARGS"); ok {
		os.Args = append([]string{"wharf"}, strings.Split(args, "\n")...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// wharfEnv points the client at a fresh image store and docker config
// directory for the rest of the test, and returns the store directory.
func wharfEnv(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("WHARF_HOME", home)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	return home
}

// wharf runs one command in-process through NewRootCmd, as main does, with
// stdin as its input; it returns stdout, stderr and the command's error.
func wharf(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := NewRootCmd()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(bytes.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// mustWharf runs a command that must succeed and returns its stdout.
func mustWharf(t *testing.T, args ...string) string {
	t.Helper()
	return mustWharfIn(t, nil, args...)
}

// mustWharfIn is mustWharf with stdin.
func mustWharfIn(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, errOut, err := wharf(t, stdin, args...)
	if err != nil {
		t.Fatalf("wharf %s: %v\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// rootfsTar is a small filesystem tar, what `image import` takes.
func rootfsTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	// pushDigestRe is a push's closing "TAG: digest: sha256:… size: N" line.
	pushDigestRe = regexp.MustCompile(`(?m)^([\w][\w.-]*): digest: (sha256:[0-9a-f]{64}) size: [0-9]+$`)
	// pullDigestRe is a pull's "Digest: sha256:…" line.
	pullDigestRe = regexp.MustCompile(`(?m)^Digest: (sha256:[0-9a-f]{64})$`)
)

// pushedDigests returns tag → digest from a push's output, and the tags in
// the order they were printed.
func pushedDigests(t *testing.T, out string) (map[string]string, []string) {
	t.Helper()
	digests := map[string]string{}
	var order []string
	for _, m := range pushDigestRe.FindAllStringSubmatch(out, -1) {
		digests[m[1]] = m[2]
		order = append(order, m[1])
	}
	if len(order) == 0 {
		t.Fatalf("push printed no digest line:\n%s", out)
	}
	return digests, order
}

// layerLines counts the "ID: STATUS" lines of push or pull output with
// that status.
func layerLines(out, status string) int {
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^[0-9a-f]{12}: %s$`, regexp.QuoteMeta(status)))
	return len(re.FindAllString(out, -1))
}
