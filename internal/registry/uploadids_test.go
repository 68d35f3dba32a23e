package registry_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// signedRig is the distribution API over a Service that opens sessions
// unrecorded (it has a secret key), on real stores in a temporary
// directory, with a clock the test moves.
type signedRig struct {
	dir   string
	meta  *sqldb.DB
	blobs *fs.Store
	clock *clocktest.Clock
	key   []byte
	svc   *registry.Service
	h     http.Handler
}

const signedMaxAge = 24 * time.Hour

func newSignedRig(t *testing.T) *signedRig {
	t.Helper()
	dir, meta, blobs := realStores(t)
	r := &signedRig{dir: dir, meta: meta, blobs: blobs, clock: clocktest.New(), key: bytes.Repeat([]byte{7}, 32)}
	r.restart(r.key)
	return r
}

// restart replaces the Service by a new one over the same stores, as a
// restarted process (or another one holding key) would be.
func (r *signedRig) restart(key []byte) {
	log := slog.New(slog.DiscardHandler)
	r.svc = registry.New(r.meta, r.blobs, log, registry.Options{Now: r.clock.Now, UploadKey: key, UploadMaxAge: signedMaxAge})
	r.h = distribution.New(r.svc, log)
}

func (r *signedRig) do(t *testing.T, method, path string, header http.Header, body []byte, want int) *http.Response {
	t.Helper()
	rec := serve(r.h, method, path, header, bytes.NewReader(body), int64(len(body)))
	if rec.Code != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, rec.Code, want, rec.Body)
	}
	return rec.Result()
}

// uploadFiles lists the upload area.
func (r *signedRig) uploadFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(r.dir, "blobs", "uploads"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func idOf(loc string) string { return loc[strings.LastIndexByte(loc, '/')+1:] }

// A POST writes nothing: no session row, no upload file. Its session
// answers as a recorded one would, and the PUT that carries the whole
// blob finishes it; afterwards the id is unknown, like any ended session's.
func TestSignedUpload_PostWritesNothingAndPutFinishes(t *testing.T) {
	r := newSignedRig(t)
	loc := startSession(t, r.h, "app")
	id := idOf(loc)
	if ok, err := r.meta.UploadExists(t.Context(), id); err != nil || ok {
		t.Errorf("after the POST, UploadExists(%s) = %v, %v; want no row", id, ok, err)
	}
	if files := r.uploadFiles(t); len(files) != 0 {
		t.Errorf("after the POST, the upload area holds %q; want nothing", files)
	}
	resp := r.do(t, http.MethodGet, loc, nil, nil, http.StatusNoContent)
	if got := resp.Header.Get("Range"); got != "0-0" {
		t.Errorf("GET %s: Range %q, want 0-0", loc, got)
	}

	data := []byte("one small layer")
	d := digest.FromBytes(data)
	r.do(t, http.MethodPut, loc+"?digest="+d.String(), nil, data, http.StatusCreated)
	if size, err := r.meta.BlobSize(t.Context(), "app", d); err != nil || size != int64(len(data)) {
		t.Errorf("BlobSize after the PUT = %d, %v; want %d", size, err, len(data))
	}
	// Small: kept in the database with the link (smallblobs.go).
	if got, err := r.meta.SmallBlob(t.Context(), d); err != nil || !bytes.Equal(got, data) {
		t.Errorf("stored blob = %q, %v; want %q", got, err, data)
	}
	if files := r.uploadFiles(t); len(files) != 0 {
		t.Errorf("after the PUT, the upload area holds %q; want nothing", files)
	}
	for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete} {
		path := loc
		if m == http.MethodPut {
			path += "?digest=" + d.String()
		}
		r.do(t, m, path, nil, nil, http.StatusNotFound)
	}
}

// A session whose POST recorded nothing is resumed by chunks on a
// restarted process holding the same key, and only there.
func TestSignedUpload_ChunksAfterRestart(t *testing.T) {
	r := newSignedRig(t)
	loc := startSession(t, r.h, "app")
	data := []byte("0123456789abcdefghij")
	d := digest.FromBytes(data)

	r.restart(bytes.Repeat([]byte{8}, 32))
	r.do(t, http.MethodPatch, loc, nil, data[:10], http.StatusNotFound)

	r.restart(r.key)
	r.do(t, http.MethodPatch, loc, http.Header{"Content-Range": {"0-9"}}, data[:10], http.StatusAccepted)
	if ok, err := r.meta.UploadExists(t.Context(), idOf(loc)); err != nil || !ok {
		t.Errorf("after the first PATCH, UploadExists = %v, %v; want the session recorded", ok, err)
	}
	r.restart(r.key)
	resp := r.do(t, http.MethodGet, loc, nil, nil, http.StatusNoContent)
	if got := resp.Header.Get("Range"); got != "0-9" {
		t.Errorf("GET %s after a restart: Range %q, want 0-9", loc, got)
	}
	// The chunk must continue where the session is.
	r.do(t, http.MethodPatch, loc, http.Header{"Content-Range": {"0-9"}}, data[:10], http.StatusRequestedRangeNotSatisfiable)
	r.do(t, http.MethodPut, loc+"?digest="+d.String(), nil, data[10:], http.StatusCreated)
	if size, err := r.meta.BlobSize(t.Context(), "app", d); err != nil || size != int64(len(data)) {
		t.Errorf("BlobSize = %d, %v; want %d", size, err, len(data))
	}
	if ok, err := r.meta.UploadExists(t.Context(), idOf(loc)); err != nil || ok {
		t.Errorf("after the PUT, UploadExists = %v, %v; want the row gone", ok, err)
	}
	r.do(t, http.MethodGet, loc, nil, nil, http.StatusNotFound)
}

// A cancelled session is gone for good, recorded or not.
func TestSignedUpload_CancelEndsIt(t *testing.T) {
	r := newSignedRig(t)
	fresh, written := startSession(t, r.h, "app"), startSession(t, r.h, "app")
	r.do(t, http.MethodPatch, written, nil, []byte("some bytes"), http.StatusAccepted)
	for _, loc := range []string{fresh, written} {
		r.do(t, http.MethodDelete, loc, nil, nil, http.StatusNoContent)
		r.do(t, http.MethodGet, loc, nil, nil, http.StatusNotFound)
		r.do(t, http.MethodPatch, loc, nil, []byte("more"), http.StatusNotFound)
		r.do(t, http.MethodDelete, loc, nil, nil, http.StatusNotFound)
	}
	if files := r.uploadFiles(t); len(files) != 0 {
		t.Errorf("after the cancels, the upload area holds %q; want nothing", files)
	}
}

// A final PUT that fails (wrong digest) leaves the session as it was, so
// that the retry with the right digest succeeds.
func TestSignedUpload_FailedPutIsRetried(t *testing.T) {
	r := newSignedRig(t)
	loc := startSession(t, r.h, "app")
	data := []byte("the layer")
	d := digest.FromBytes(data)
	r.do(t, http.MethodPut, loc+"?digest="+digest.FromString("other").String(), nil, data, http.StatusBadRequest)
	r.do(t, http.MethodGet, loc, nil, nil, http.StatusNoContent)
	r.do(t, http.MethodPut, loc+"?digest="+d.String(), nil, data, http.StatusCreated)
	if size, err := r.meta.BlobSize(t.Context(), "app", d); err != nil || size != int64(len(data)) {
		t.Errorf("BlobSize = %d, %v; want %d", size, err, len(data))
	}
}

// An id expires with the upload purge age, and the janitor then forgets
// the records of ended ones: an expired id is refused either way.
func TestSignedUpload_ExpiresWithThePurgeAge(t *testing.T) {
	r := newSignedRig(t)
	idle, done := startSession(t, r.h, "app"), startSession(t, r.h, "app")
	data := []byte("x")
	r.do(t, http.MethodPut, done+"?digest="+digest.FromBytes(data).String(), nil, data, http.StatusCreated)
	r.clock.Advance(signedMaxAge - time.Minute)
	r.do(t, http.MethodGet, idle, nil, nil, http.StatusNoContent)
	if _, err := r.svc.PurgeStaleUploads(t.Context(), signedMaxAge); err != nil {
		t.Fatal(err)
	}
	r.do(t, http.MethodGet, done, nil, nil, http.StatusNotFound)

	r.clock.Advance(2 * time.Minute)
	r.do(t, http.MethodGet, idle, nil, nil, http.StatusNotFound)
	if _, err := r.svc.PurgeStaleUploads(t.Context(), signedMaxAge); err != nil {
		t.Fatal(err)
	}
	if ended, err := r.meta.UploadEnded(t.Context(), "app", idOf(done)); err != nil || ended {
		t.Errorf("UploadEnded of an expired id after the purge = %v, %v; want forgotten", ended, err)
	}
	r.do(t, http.MethodGet, done, nil, nil, http.StatusNotFound)
}
