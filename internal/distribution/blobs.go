package distribution

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registry"
)

func (a *API) getBlob(w http.ResponseWriter, r *http.Request, rt Route) {
	d, err := registry.ParseDigest(rt.Ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	setBlobHeaders(w, d)
	if r.Method == http.MethodHead {
		size, err := a.reg.StatBlob(r.Context(), rt.Name, d)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if etagMatches(r, d) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := a.reg.GetBlob(r.Context(), rt.Name, d)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if b.URL != "" {
		redirectBlob(w, r, d, b.URL)
		return
	}
	defer b.Body.Close()
	// ServeContent answers Range and If-None-Match. Its copy is not
	// used: for an *os.File it would sendfile, and for any other body (an
	// object store's response) copy 32 KiB at a time, a read and a write
	// system call for each, which held a GET from S3 below the store's
	// own pace. copyingWriter copies a file 256 KiB at a time and any
	// other body a MiB at a time: sendfile over TCP ran at 70-75% of such
	// copies on the 2-core VMs we measure on (loopback, Linux 6.18: 1.10-
	// 1.28 GB/s against 1.56-1.63, and more CPU: 1.1 s per GiB for client
	// and server against 0.93; copies of 32 KiB to 1 MiB did alike), and
	// a TLS connection copies anyway. A file's buffer is the smaller one
	// because a slow client holds it as long as it reads: a thousand
	// pulls hold 256 MiB.
	out := copyingWriter{w, &bigBufs}
	if _, isFile := b.Body.(*os.File); isFile {
		out.bufs = &fileBufs
	}
	http.ServeContent(out, r, "", time.Time{}, b.Body)
}

// The buffers copyingWriter copies through: large enough that system
// calls cost little next to the bytes they move.
var (
	bigBufs  = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}
	fileBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
)

// copyingWriter is a ResponseWriter whose ReadFrom copies through a
// buffer from bufs, instead of the connection's sendfile (for a file) or
// 32 KiB copy (for anything else).
type copyingWriter struct {
	http.ResponseWriter
	bufs *sync.Pool
}

func (w copyingWriter) ReadFrom(src io.Reader) (int64, error) {
	bp := w.bufs.Get().(*[]byte)
	defer w.bufs.Put(bp)
	// Only the Writer: through the ResponseWriter, CopyBuffer would call
	// this ReadFrom again.
	return io.CopyBuffer(struct{ io.Writer }{w.ResponseWriter}, src, *bp)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w copyingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// redirectBlob sends the client to fetch blob d from url, an object
// store's presigned URL. HEADs never get here: a client checking for a
// blob needs only its size, and a redirect would cost it a second round
// trip for that.
func redirectBlob(w http.ResponseWriter, r *http.Request, d digest.Digest, url string) {
	h := w.Header()
	// The bytes' headers come from the store; the URL expires, so no
	// cache may keep this answer as it may keep the bytes.
	h.Del("Content-Type")
	h.Del("Accept-Ranges")
	h.Set("Cache-Control", "no-store")
	if etagMatches(r, d) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// 307, as the reference registry answers: clients repeat the GET at
	// the store with their Range, which the store honours because the URL
	// signs no headers.
	h.Set("Location", url)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// etagMatches reports whether If-None-Match names d's ETag (or is "*").
func etagMatches(r *http.Request, d digest.Digest) bool {
	// The canonical key read directly: Header.Get would canonicalise it
	// again on every manifest GET and HEAD, which hardly ever carry it.
	var match string
	if v := r.Header["If-None-Match"]; len(v) > 0 {
		match = strings.TrimSpace(v[0])
	}
	return match == "*" || match != "" && strings.Contains(match, d.String())
}

func setBlobHeaders(w http.ResponseWriter, d digest.Digest) {
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "max-age=31536000")
}

func (a *API) deleteBlob(w http.ResponseWriter, r *http.Request, rt Route) {
	d, err := registry.ParseDigest(rt.Ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.reg.DeleteBlob(r.Context(), rt.Name, d); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

func (a *API) startUpload(w http.ResponseWriter, r *http.Request, rt Route) {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := registry.ParseDigest(mount)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		ok, err := a.reg.MountBlob(ctx, rt.Name, d, q.Get("from"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if ok {
			blobCreated(w, rt.Name, d)
			return
		}
		// Not mountable: the spec says to fall back to a new session.
	}
	if ds := q.Get("digest"); ds != "" {
		d, err := registry.ParseDigest(ds)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if _, err := a.reg.PutBlob(ctx, rt.Name, d, r.Body, r.ContentLength); err != nil {
			a.fail(w, r, err)
			return
		}
		blobCreated(w, rt.Name, d)
		return
	}
	alg := digest.Algorithm(q.Get("digest-algorithm"))
	if alg != "" && !alg.Available() {
		a.fail(w, r, &Error{Code: CodeDigestInvalid, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("digest algorithm %q is not supported (use sha256 or sha512)", alg)})
		return
	}
	up, err := a.reg.StartUpload(ctx, rt.Name, alg)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	uploadAccepted(w, http.StatusAccepted, up)
}

func (a *API) uploadStatus(w http.ResponseWriter, r *http.Request, rt Route) {
	up, err := a.reg.UploadStatus(r.Context(), rt.Name, rt.Ref)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	uploadAccepted(w, http.StatusNoContent, up)
}

func (a *API) patchUpload(w http.ResponseWriter, r *http.Request, rt Route) {
	start, length, err := chunkRange(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	up, err := a.reg.WriteUpload(r.Context(), rt.Name, rt.Ref, start, r.Body, length)
	if err != nil {
		a.failUpload(w, r, rt, err)
		return
	}
	uploadAccepted(w, http.StatusAccepted, up)
}

func (a *API) putUpload(w http.ResponseWriter, r *http.Request, rt Route) {
	ds := r.URL.Query().Get("digest")
	if ds == "" {
		a.fail(w, r, &Error{Code: CodeDigestInvalid, Status: http.StatusBadRequest,
			Message: "the digest query parameter is required to complete an upload"})
		return
	}
	d, err := registry.ParseDigest(ds)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	start, length, err := chunkRange(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if start >= 0 {
		if _, err := a.reg.WriteUpload(r.Context(), rt.Name, rt.Ref, start, r.Body, length); err != nil {
			a.failUpload(w, r, rt, err)
			return
		}
		length = 0
	}
	if _, err := a.reg.CompleteUpload(r.Context(), rt.Name, rt.Ref, d, r.Body, length); err != nil {
		a.failUpload(w, r, rt, err)
		return
	}
	blobCreated(w, rt.Name, d)
}

func (a *API) cancelUpload(w http.ResponseWriter, r *http.Request, rt Route) {
	if err := a.reg.CancelUpload(r.Context(), rt.Name, rt.Ref); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// failUpload adds what a client needs to resume: where the session is and
// how much of it the registry holds.
func (a *API) failUpload(w http.ResponseWriter, r *http.Request, rt Route, err error) {
	var de *registry.Error
	if errors.As(err, &de) && errors.Is(err, registry.ErrRangeInvalid) {
		w.Header().Set("Location", uploadLocation(rt.Name, rt.Ref))
		w.Header().Set("Range", rangeHeader(de.Offset))
		w.Header().Set("Docker-Upload-UUID", rt.Ref)
	}
	a.fail(w, r, err)
}

// chunkRange reads Content-Range ("start-end", optionally with a "bytes"
// prefix). Without it, start is -1 and length is the Content-Length (-1
// when the body is streamed).
func chunkRange(r *http.Request) (start, length int64, err error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, r.ContentLength, nil
	}
	spec := strings.TrimSpace(cr)
	spec = strings.TrimPrefix(spec, "bytes")
	spec = strings.TrimLeft(spec, " =")
	if i := strings.IndexByte(spec, '/'); i >= 0 {
		spec = spec[:i]
	}
	from, to, ok := strings.Cut(spec, "-")
	s, err1 := strconv.ParseInt(from, 10, 64)
	e, err2 := strconv.ParseInt(to, 10, 64)
	if !ok || err1 != nil || err2 != nil || s < 0 || e < s {
		return 0, 0, &Error{Code: CodeBlobUploadInvalid, Status: http.StatusRequestedRangeNotSatisfiable,
			Message: fmt.Sprintf("invalid Content-Range %q: want start-end", cr)}
	}
	length = e - s + 1
	if r.ContentLength >= 0 && r.ContentLength != length {
		return 0, 0, &Error{Code: CodeSizeInvalid, Status: http.StatusBadRequest,
			Message: fmt.Sprintf("Content-Range %q covers %d bytes but Content-Length is %d", cr, length, r.ContentLength)}
	}
	return s, length, nil
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func uploadAccepted(w http.ResponseWriter, status int, up *registry.Upload) {
	h := w.Header()
	h.Set("Location", uploadLocation(up.Repo, up.ID))
	h.Set("Docker-Upload-UUID", up.ID)
	h.Set("Range", rangeHeader(up.Offset))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

func uploadLocation(name, id string) string {
	return "/v2/" + name + "/blobs/uploads/" + id
}

// rangeHeader is the inclusive range of bytes received, "0-0" when none
// (as clients expect, though it reads as one byte).
func rangeHeader(offset int64) string {
	if offset <= 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(offset-1, 10)
}
