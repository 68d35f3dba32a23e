package fs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/blobstoretest"
	"github.com/wharf/wharf/internal/blobstore/fs"
)

func TestStore_Contract(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstore.Store { return newStore(t, t.TempDir()) })
}

func newStore(tb testing.TB, root string) *fs.Store {
	tb.Helper()
	s, err := fs.New(root, nil)
	if err != nil {
		tb.Fatalf("New(%q): %v", root, err)
	}
	return s
}

func sha256Of(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:]))
}

// put writes b to a new upload id and commits it as its sha256 digest.
func put(t *testing.T, s *fs.Store, id string, b []byte) digest.Digest {
	t.Helper()
	if _, err := s.StartUpload(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	w, err := s.WriteUpload(t.Context(), id, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	d := sha256Of(b)
	if err := s.CommitUpload(t.Context(), id, nil, d, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	return d
}

// files lists the regular files under root, relative and slash-separated.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCommitUpload_UsesContentAddressedLayout(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	d := put(t, s, "u1", []byte("hello"))
	put(t, s, "u2", []byte("hello")) // deduplicated
	want := []string{"blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded()}
	if got := files(t, root); !slices.Equal(got, want) {
		t.Errorf("files after two commits = %q; want %q (no upload left behind)", got, want)
	}
}

func TestOpen_ReturnsOSFile(t *testing.T) {
	s := newStore(t, t.TempDir())
	d := put(t, s, "u", []byte("open me"))
	r, _, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("Open returned %T; want *os.File (a GET sizes its copy buffer for files by it)", r)
	}
}

func TestUploadIDs_CannotEscapeRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	s := newStore(t, root)
	for _, id := range []string{"../x", "../../x", "..", "a/b", "../root/blobs/x", root + "/x"} {
		if _, err := s.StartUpload(t.Context(), id); err == nil {
			t.Errorf("StartUpload(%q) succeeded; want an error", id)
		}
	}
	if got := files(t, parent); len(got) != 0 {
		t.Errorf("files created by rejected ids: %q", got)
	}
}

func TestDigests_OnlySHA256AndSHA512(t *testing.T) {
	// sha384 passes go-digest's Validate, but OCI registers only sha256 and
	// sha512 and the layout creates directories only for those.
	s := newStore(t, t.TempDir())
	d := digest.Digest("sha384:" + strings.Repeat("ab", 48))
	if err := d.Validate(); err != nil {
		t.Fatalf("test digest invalid: %v", err)
	}
	if _, err := s.Stat(t.Context(), d); err == nil || errors.Is(err, blobstore.ErrNotFound) {
		t.Errorf("Stat(%s) error = %v; want unsupported digest", d, err)
	}
}

func TestNew_RemovesStaleProbeFiles(t *testing.T) {
	root := t.TempDir()
	newStore(t, root)
	stale := filepath.Join(root, ".ping-123")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	newStore(t, root)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale probe %s still there after New (stat error %v)", stale, err)
	}
}

func TestNew_KeepsUploadsAcrossRestarts(t *testing.T) {
	root := t.TempDir()
	if _, err := newStore(t, root).StartUpload(t.Context(), "resumed"); err != nil {
		t.Fatal(err)
	}
	if _, err := newStore(t, root).UploadSize(t.Context(), "resumed"); err != nil {
		t.Errorf("UploadSize after reopening: %v", err)
	}
}

// The upload file is the upload's whole progress, so a second start of an
// id must not truncate it (moved here from the contract: a driver whose
// progress is in its caller's state cannot tell).
func TestStartUpload_ExistingIDFails(t *testing.T) {
	s := newStore(t, t.TempDir())
	if _, err := s.StartUpload(t.Context(), "kept"); err != nil {
		t.Fatal(err)
	}
	w, err := s.WriteUpload(t.Context(), "kept", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("kept")); err != nil || w.Close() != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := s.StartUpload(t.Context(), "kept"); err == nil {
		t.Fatal("second StartUpload succeeded; want an error")
	}
	if size, err := s.UploadSize(t.Context(), "kept"); err != nil || size != 4 {
		t.Errorf("UploadSize = %d, %v; want 4, nil", size, err)
	}
}

func TestPing_FailsWhenRootIsGone(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	s := newStore(t, root)
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping succeeded with the root removed; want an error")
	}
}

// plainReader hides bytes.Reader's WriteTo, as a hashing TeeReader over an
// HTTP body does, so io.Copy goes through the writer's ReadFrom.
type plainReader struct{ io.Reader }

func TestWriteUpload_MemoryStaysFlat(t *testing.T) {
	s := newStore(t, t.TempDir())
	if _, err := s.StartUpload(t.Context(), "big"); err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w, err := s.WriteUpload(t.Context(), "big", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, plainReader{io.LimitReader(zeros{}, size)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("writing %d bytes allocated %d bytes; want at most one copy buffer", size, alloc)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// BenchmarkCommit measures a 64 MiB push as the registry does it: one
// WriteUpload fed by io.Copy from a plain reader, then CommitUpload (fsync,
// rename, directory fsync). The store does not hash, so each iteration
// commits the same bytes under a made-up digest: a fresh one per iteration,
// or the same one every time for the deduplicated case.
func BenchmarkCommit(b *testing.B) {
	for _, tc := range []struct {
		name  string
		dedup bool
	}{
		{"64MiB", false},
		{"64MiB_Dedup", true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			payload := bytes.Repeat([]byte("wharf-benchmark!"), 64<<20/16)
			s := newStore(b, b.TempDir())
			ctx := b.Context()
			b.SetBytes(int64(len(payload)))
			var i uint64
			for b.Loop() {
				i++
				id := fmt.Sprintf("bench-%d", i)
				seed := i
				if tc.dedup {
					seed = 0
				}
				d := sha256Of(binary.BigEndian.AppendUint64(nil, seed))
				if _, err := s.StartUpload(ctx, id); err != nil {
					b.Fatal(err)
				}
				w, err := s.WriteUpload(ctx, id, 0, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(w, plainReader{bytes.NewReader(payload)}); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
				if err := s.CommitUpload(ctx, id, nil, d, int64(len(payload))); err != nil {
					b.Fatal(err)
				}
				if !tc.dedup {
					// Keep the disk footprint to one blob.
					if err := s.Delete(ctx, d); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
