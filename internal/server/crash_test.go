package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/registrytest"
)

// crashWorld is a running registry and its blob store opened beside it, to
// do what the registry had done when the process or machine died.
type crashWorld struct {
	srv   *registrytest.Server
	store *fs.Store
}

func newCrashWorld(t *testing.T) *crashWorld {
	t.Helper()
	srv := registrytest.NewServer(t)
	store, err := fs.New(srv.Config.Storage.Filesystem.Root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &crashWorld{srv: srv, store: store}
}

// call sends a request and returns the status, the error code of a spec
// error body ("" otherwise), the headers and the body.
func (w *crashWorld) call(t *testing.T, method, path string, body []byte) (int, string, http.Header, []byte) {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = w.srv.URL + path
	}
	req, err := http.NewRequest(method, path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	code := ""
	if json.Unmarshal(b, &e) == nil && len(e.Errors) > 0 {
		code = e.Errors[0].Code
	}
	return resp.StatusCode, code, resp.Header, b
}

// startUpload opens a session in repo and sends it first, returning the
// session's location and id.
func (w *crashWorld) startUpload(t *testing.T, repo string, first []byte) (location, id string) {
	t.Helper()
	status, _, h, _ := w.call(t, "POST", "/v2/"+repo+"/blobs/uploads/", nil)
	if status != http.StatusAccepted {
		t.Fatalf("POST upload: %d", status)
	}
	location, id = h.Get("Location"), h.Get("Docker-Upload-UUID")
	if len(first) > 0 {
		if status, _, _, b := w.call(t, "PATCH", location, first); status != http.StatusAccepted {
			t.Fatalf("PATCH: %d %s", status, b)
		}
	}
	return location, id
}

// commitBehindTheRegistry does what an interrupted final PUT had done to
// the blob store before the crash: appended its last chunk and committed
// the upload as blob d. The metadata never heard of it.
func (w *crashWorld) commitBehindTheRegistry(t *testing.T, id string, offset int64, last []byte, d digest.Digest) {
	t.Helper()
	ctx := t.Context()
	wc, err := w.store.WriteUpload(ctx, id, offset, nil) // fs keeps its own state
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wc.Write(last); err != nil {
		t.Fatal(err)
	}
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.store.CommitUpload(ctx, id, nil, d, offset+int64(len(last))); err != nil {
		t.Fatal(err)
	}
}

func putURL(location string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(location, "?") {
		sep = "&"
	}
	return location + sep + "digest=" + d.String()
}

// A crash between the blob store's commit and the metadata's record of it
// leaves a live session without an upload file. The client, which got no
// answer, retries its PUT; the retry finishes the upload from the
// committed blob, and only when it carries the same bytes.
func TestCompleteUpload_RetryAfterCrashBetweenCommitAndRecord(t *testing.T) {
	// Half of it is over the small-blob limit: each PATCH's bytes go to
	// the blob store, whose commit the crash interrupts.
	content := bytes.Repeat([]byte("crash window "), 4000)
	d := digest.FromBytes(content)
	half := len(content) / 2

	t.Run("PUT without a body", func(t *testing.T) {
		w := newCrashWorld(t)
		location, id := w.startUpload(t, "team/app", content)
		w.commitBehindTheRegistry(t, id, int64(len(content)), nil, d)

		status, code, h, b := w.call(t, "PUT", putURL(location, d), nil)
		if status != http.StatusCreated || h.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("retried PUT = %d %s %s, digest %q; want 201 and %s", status, code, b, h.Get("Docker-Content-Digest"), d)
		}
		w.wantBlob(t, "team/app", d, content)
		if status, code, _, _ := w.call(t, "GET", location, nil); status != http.StatusNotFound || code != "BLOB_UPLOAD_UNKNOWN" {
			t.Errorf("session after the retry: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", status, code)
		}
	})

	t.Run("PUT with the last chunk", func(t *testing.T) {
		w := newCrashWorld(t)
		location, id := w.startUpload(t, "team/app", content[:half])
		w.commitBehindTheRegistry(t, id, int64(half), content[half:], d)

		status, code, h, b := w.call(t, "PUT", putURL(location, d), content[half:])
		if status != http.StatusCreated || h.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("retried PUT = %d %s %s, digest %q; want 201 and %s", status, code, b, h.Get("Docker-Content-Digest"), d)
		}
		w.wantBlob(t, "team/app", d, content)
	})

	t.Run("PUT with the whole blob into a session its POST never recorded", func(t *testing.T) {
		w := newCrashWorld(t)
		location, id := w.startUpload(t, "team/app", nil)
		// The interrupted PUT made the upload file (the POST did not), and
		// a failed attempt may leave one behind too.
		if _, err := w.store.StartUpload(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		w.commitBehindTheRegistry(t, id, 0, content, d)
		if _, err := w.store.StartUpload(t.Context(), id); err != nil {
			t.Fatal(err)
		}

		status, code, h, b := w.call(t, "PUT", putURL(location, d), content)
		if status != http.StatusCreated || h.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("retried PUT = %d %s %s, digest %q; want 201 and %s", status, code, b, h.Get("Docker-Content-Digest"), d)
		}
		w.wantBlob(t, "team/app", d, content)
		if status, code, _, _ := w.call(t, "GET", location, nil); status != http.StatusNotFound || code != "BLOB_UPLOAD_UNKNOWN" {
			t.Errorf("session after the retry: %d %s, want 404 BLOB_UPLOAD_UNKNOWN", status, code)
		}
	})

	t.Run("a retry with other bytes is refused", func(t *testing.T) {
		w := newCrashWorld(t)
		location, id := w.startUpload(t, "team/app", content[:half])
		w.commitBehindTheRegistry(t, id, int64(half), content[half:], d)

		other := bytes.ToUpper(content[half:])
		if status, code, _, _ := w.call(t, "PUT", putURL(location, d), other); status != http.StatusBadRequest || code != "DIGEST_INVALID" {
			t.Fatalf("PUT of other bytes = %d %s, want 400 DIGEST_INVALID", status, code)
		}
		if status, _, _, _ := w.call(t, "HEAD", "/v2/team/app/blobs/"+d.String(), nil); status != http.StatusNotFound {
			t.Errorf("HEAD blob after a refused retry = %d, want 404", status)
		}
	})

	t.Run("the committed blob was collected meanwhile", func(t *testing.T) {
		w := newCrashWorld(t)
		location, id := w.startUpload(t, "team/app", content)
		w.commitBehindTheRegistry(t, id, int64(len(content)), nil, d)
		if err := w.store.Delete(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		if status, code, _, _ := w.call(t, "PUT", putURL(location, d), nil); status != http.StatusNotFound || code != "BLOB_UPLOAD_UNKNOWN" {
			t.Fatalf("retried PUT = %d %s, want 404 BLOB_UPLOAD_UNKNOWN: the client must upload again", status, code)
		}
		if status, _, _, _ := w.call(t, "GET", location, nil); status != http.StatusNotFound {
			t.Errorf("session after the failed retry: %d, want 404 (ended)", status)
		}
		pushBlob(t, w.srv.URL, "team/app", content)
		w.wantBlob(t, "team/app", d, content)
	})
}

// wantBlob checks that repo serves content as blob d.
func (w *crashWorld) wantBlob(t *testing.T, repo string, d digest.Digest, content []byte) {
	t.Helper()
	status, _, _, b := w.call(t, "GET", "/v2/"+repo+"/blobs/"+d.String(), nil)
	if status != http.StatusOK || !bytes.Equal(b, content) {
		t.Fatalf("GET blob %s = %d, %d bytes; want 200 and its %d bytes", d, status, len(b), len(content))
	}
}
