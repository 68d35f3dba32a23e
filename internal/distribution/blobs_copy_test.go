package distribution_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharf/wharf/internal/registrytest"
)

// writeWatch records how a response's body reached the connection: the
// size of each Write, and whether ReadFrom was handed a file. Its ReadFrom
// does what net/http's does with a source that is not a file (a 32 KiB
// io.Copy), so that a handler relying on it is seen writing 32 KiB.
type writeWatch struct {
	mu       sync.Mutex
	maxWrite int
	fromFile bool
}

func (ww *writeWatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&watchedWriter{ResponseWriter: w, ww: ww}, r)
	})
}

type watchedWriter struct {
	http.ResponseWriter
	ww *writeWatch
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	w.ww.mu.Lock()
	w.ww.maxWrite = max(w.ww.maxWrite, len(p))
	w.ww.mu.Unlock()
	return w.ResponseWriter.Write(p)
}

func (w *watchedWriter) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			w.ww.mu.Lock()
			w.ww.fromFile = true
			w.ww.mu.Unlock()
		}
	}
	return io.Copy(struct{ io.Writer }{w}, src)
}

// getWatched GETs path from s through a writeWatch.
func getWatched(t *testing.T, s *registrytest.Server, path string) ([]byte, *writeWatch) {
	t.Helper()
	ww := &writeWatch{}
	s.Server.Config.Handler = ww.wrap(s.Server.Config.Handler)
	res, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v", path, res.StatusCode, err)
	}
	return body, ww
}

// A blob body that is not a file (an object store's response; here a
// manifest read by digest) is copied to the client in large writes, not
// in the 32 KiB that ServeContent's copy would make of it.
func TestBlobGet_NonFileBodyGoesOutInLargeWrites(t *testing.T) {
	s := registrytest.NewServer(t)
	mfPushImageBlobs(t, s, "big")
	m := mfManifestOfSize(3 << 20)
	d := mfPutManifest(t, s, "big", "v1", v1.MediaTypeImageManifest, m)
	got, ww := getWatched(t, s, blobPath("big", d))
	if !bytes.Equal(got, m) {
		t.Fatalf("GET returned %d bytes, not the %d of the manifest", len(got), len(m))
	}
	if ww.maxWrite < 1<<20 {
		t.Errorf("largest write %d bytes, want at least 1 MiB", ww.maxWrite)
	}
}

// A blob in a file goes out in large writes too (256 KiB: a slow client
// holds the buffer): not by sendfile, which ran at 70-75% of these copies
// on the machines we measure on.
func TestBlobGet_FileBodyGoesOutInLargeWrites(t *testing.T) {
	s := registrytest.NewServer(t)
	blob := make([]byte, 2<<20)
	rand.Read(blob)
	d := mfPushBlob(t, s, "big", blob)
	got, ww := getWatched(t, s, blobPath("big", d))
	if !bytes.Equal(got, blob) {
		t.Fatalf("GET returned %d bytes, not the blob's %d", len(got), len(blob))
	}
	if ww.fromFile {
		t.Error("the blob's file reached ReadFrom: net/http would sendfile it")
	}
	if ww.maxWrite < 256<<10 {
		t.Errorf("largest write %d bytes, want at least 256 KiB", ww.maxWrite)
	}
}
