package sqldb

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

const resolveQueryMarker = "SELECT t.digest FROM tags t"

// memoized reports whether the memo holds an answer for repo's tag under
// the current WAL index version.
func memoized(t *testing.T, db *DB, repo, tag string) bool {
	t.Helper()
	w := db.point.wal.Load()
	if w == nil {
		t.Fatal("the WAL index is not mapped: lookups are never memoized")
	}
	ver, ok := w.version()
	if !ok {
		return false
	}
	g := db.point.memo.gen.Load()
	if g == nil || g.ver != ver {
		return false
	}
	found := false
	g.answers.Range(func(k, _ any) bool {
		mk := k.(memoKey)
		if strings.Contains(mk.query, resolveQueryMarker) && mk.a == repo && mk.b == tag {
			found = true
		}
		return !found
	})
	return found
}

// resolvedOnce opens a database holding app:latest and resolves the tag
// once, so that a lookup has run on the point path.
func resolvedOnce(t *testing.T) *DB {
	t.Helper()
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	if err := db.PutManifest(t.Context(), testManifest("app", "0"), []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ResolveTag(t.Context(), "app", "latest"); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMemo_ReusesAnswersUntilACommit(t *testing.T) {
	ctx := t.Context()
	db := resolvedOnce(t)
	if !memoized(t, db, "app", "latest") {
		t.Fatal("a lookup's answer was not memoized")
	}
	// A missing tag is an answer too.
	if _, err := db.ResolveTag(ctx, "app", "nope"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
	if !memoized(t, db, "app", "nope") {
		t.Fatal("a not-found answer was not memoized")
	}
	// Any commit, even one that touches no tag, retires every answer.
	if err := db.LinkBlob(ctx, "other", digest.FromString("x"), 1); err != nil {
		t.Fatal(err)
	}
	if memoized(t, db, "app", "latest") {
		t.Fatal("an answer survived a commit")
	}
}

// childEnv makes the test binary act as another wharf process writing to
// the database (see TestMemo_SeesOtherProcessesCommits).
const childEnv = "WHARF_SQLDB_WRITER"

// Another process moving and deleting a tag must be seen by the very next
// lookup, however warm the memo is: the WAL index is shared memory, and
// this is the case that an in-process counter would get wrong.
func TestMemo_SeesOtherProcessesCommits(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		runWriterChild(t, path)
		return
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "metadata.db")
	db := openSQLite(t, path)

	cmd := exec.Command(os.Args[0], "-test.run=^TestMemo_SeesOtherProcessesCommits$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	replies := bufio.NewScanner(stdout)
	ask := func(command string) string {
		t.Helper()
		fmt.Fprintln(stdin, command)
		for replies.Scan() {
			if line, ok := strings.CutPrefix(replies.Text(), "writer: "); ok {
				return line
			}
		}
		t.Fatalf("the writer process ended: %v", replies.Err())
		return ""
	}

	// Another process merely reading must not disturb the index: if this
	// process had lost its lock on the -shm file, the reader would think
	// itself first and rebuild the index, and the header would change.
	if _, err := db.ResolveTag(ctx, "app", "latest"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatal(err)
	}
	before, ok := db.point.wal.Load().version()
	ask("read")
	after, ok2 := db.point.wal.Load().version()
	if !ok || !ok2 || before != after {
		t.Fatalf("another process's read changed the WAL index header: %v (%v) -> %v (%v)", before, ok, after, ok2)
	}

	for i := range 30 {
		want := digest.Digest(ask(fmt.Sprint("put ", i)))
		for range 3 { // warm: the later lookups come from the memo
			got, err := db.ResolveTag(ctx, "app", "latest")
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("after another process moved the tag to %s, a lookup returned %s", want, got)
			}
		}
		if !memoized(t, db, "app", "latest") {
			t.Fatal("repeated lookups were not memoized")
		}
		ask("delete")
		if d, err := db.ResolveTag(ctx, "app", "latest"); !errors.Is(err, metadata.ErrNotFound) {
			t.Fatalf("after another process deleted the tag, a lookup returned %s, %v", d, err)
		}
	}
}

// runWriterChild serves the parent's commands: "put N" tags a new manifest
// latest and answers its digest, "delete" deletes the tag.
func runWriterChild(t *testing.T, path string) {
	ctx := t.Context()
	db := openSQLite(t, path)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch cmd := in.Text(); {
		case strings.HasPrefix(cmd, "put "):
			m := testManifest("app", strings.TrimPrefix(cmd, "put "))
			if err := db.PutManifest(ctx, m, []string{"latest"}); err != nil {
				t.Fatal(err)
			}
			fmt.Println("writer:", m.Digest)
		case cmd == "read":
			if _, err := db.ResolveTag(ctx, "app", "latest"); err != nil && !errors.Is(err, metadata.ErrNotFound) {
				t.Fatal(err)
			}
			fmt.Println("writer: read")
		case cmd == "delete":
			if err := db.DeleteTag(ctx, "app", "latest"); err != nil {
				t.Fatal(err)
			}
			fmt.Println("writer: deleted")
		default:
			t.Fatalf("unknown command %q", cmd)
		}
	}
}
