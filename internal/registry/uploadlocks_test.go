package registry_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/registry"
)

// uploadAPI is the distribution API over a Service on real stores in a
// temporary directory; the Service is returned for its lock map. With a
// key, its POSTs open sessions unrecorded (uploadids.go).
func uploadAPI(t *testing.T, key []byte) (*registry.Service, http.Handler) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	_, meta, blobs := realStores(t)
	svc := registry.New(meta, blobs, log, registry.Options{UploadKey: key, UploadMaxAge: time.Hour})
	return svc, distribution.New(svc, log)
}

// sessionKinds runs test with sessions recorded at their POST and with
// sessions opened unrecorded.
func sessionKinds(t *testing.T, test func(t *testing.T, key []byte)) {
	t.Run("recorded", func(t *testing.T) { test(t, nil) })
	t.Run("signed", func(t *testing.T) { test(t, bytes.Repeat([]byte{1}, 32)) })
}

// serve makes one request of h; length -1 sends body as a stream.
func serve(h http.Handler, method, path string, header http.Header, body io.Reader, length int64) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	req.ContentLength = length
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// startSession opens an upload session in repo and returns its Location.
func startSession(t *testing.T, h http.Handler, repo string) string {
	t.Helper()
	rec := serve(h, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil, 0)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST uploads: status %d, body %s", rec.Code, rec.Body)
	}
	return rec.Header().Get("Location")
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Upload ids come from URLs, so anyone who may push can send any number
// of them: ids that are not live sessions of the repository must cost no
// memory that outlives their request, however long they are.
func TestUploadLocks_BogusIDsLeaveNoState(t *testing.T) { sessionKinds(t, testBogusIDsLeaveNoState) }

func testBogusIDsLeaveNoState(t *testing.T, key []byte) {
	svc, h := uploadAPI(t, key)
	real := startSession(t, h, "app")
	realID := real[strings.LastIndexByte(real, '/')+1:]
	body := []byte("sixteen bytes!!!")
	put := "?digest=" + digest.FromBytes(body).String()
	ended := startSession(t, h, "app")
	if rec := serve(h, http.MethodPut, ended+put, nil, bytes.NewReader(body), int64(len(body))); rec.Code != http.StatusCreated {
		t.Fatalf("PUT %s: status %d", ended, rec.Code)
	}
	endedID := ended[strings.LastIndexByte(ended, '/')+1:]

	// bogus returns the i-th bogus id and its repository, in turn: a
	// well-formed id that no session has, a unique 10 KB one, a live
	// session's id in another repository, a finished session's id, and
	// a unique one shaped like a signed id (43 base64url characters).
	bogus := func(i int) (repo, id string) {
		switch i % 5 {
		case 0:
			return "app", uuid.NewString()
		case 1:
			return "app", uuid.NewString() + strings.Repeat("x", 10<<10-36)
		case 2:
			return "other", realID
		case 3:
			return "app", endedID
		default:
			return "app", base64.RawURLEncoding.EncodeToString([]byte(uuid.NewString()[:32]))
		}
	}
	request := func(i int) error {
		repo, id := bogus(i)
		path := "/v2/" + repo + "/blobs/uploads/" + id
		var rec *httptest.ResponseRecorder
		switch method := []string{http.MethodPatch, http.MethodPut, http.MethodGet, http.MethodDelete}[i/5%4]; method {
		case http.MethodPatch:
			rec = serve(h, method, path, nil, bytes.NewReader(body), int64(len(body)))
		case http.MethodPut:
			rec = serve(h, method, path+put, nil, bytes.NewReader(body), int64(len(body)))
		default:
			rec = serve(h, method, path, nil, nil, 0)
		}
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"BLOB_UPLOAD_UNKNOWN"`) {
			return fmt.Errorf("request %d (%s): status %d, body %.200s; want 404 BLOB_UPLOAD_UNKNOWN", i, path[:min(len(path), 80)], rec.Code, rec.Body)
		}
		if rec.Body.Len() > 1<<10 {
			return fmt.Errorf("request %d: a %d-byte error body echoes the id", i, rec.Body.Len())
		}
		return nil
	}

	// Warm up whatever the first requests set up once (statements, pools).
	for i := range 120 {
		if err := request(i); err != nil {
			t.Fatal(err)
		}
	}
	before := heapAfterGC()
	locksBefore := svc.UploadLockCount()

	const total, workers = 20000, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < total; i += workers {
				if err := request(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	after := heapAfterGC()
	locks := svc.UploadLockCount()
	growth := int64(after) - int64(before)
	t.Logf("%d requests with bogus upload ids: heap %d → %d bytes (%+d), lock map %d → %d entries",
		total, before, after, growth, locksBefore, locks)
	if locks != locksBefore {
		t.Errorf("lock map holds %d entries after %d bogus ids, had %d", locks, total, locksBefore)
	}
	if growth > 4<<20 {
		t.Errorf("heap grew by %d bytes over %d bogus ids, want under 4 MiB", growth, total)
	}

	// The live session is untouched by all that.
	if rec := serve(h, http.MethodGet, real, nil, nil, 0); rec.Code != http.StatusNoContent || rec.Header().Get("Range") != "0-0" {
		t.Errorf("GET %s: status %d, Range %q; want 204, 0-0", real, rec.Code, rec.Header().Get("Range"))
	}
}

// brokenBody yields data, then fails: a client whose connection broke.
type brokenBody struct{ data []byte }

func (b *brokenBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, errors.New("connection reset")
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// However an upload request ends (refused, failed, cut off, cancelled,
// finished, or left for later), it leaves no entry in the lock map.
func TestUploadLocks_EndedRequestsLeaveNoState(t *testing.T) {
	sessionKinds(t, testEndedRequestsLeaveNoState)
}

func testEndedRequestsLeaveNoState(t *testing.T, key []byte) {
	svc, h := uploadAPI(t, key)
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	good := "?digest=" + digest.FromBytes(data).String()
	wrong := "?digest=" + digest.FromString("something else").String()
	rng := func(from, to int) http.Header { return http.Header{"Content-Range": {fmt.Sprintf("%d-%d", from, to)}} }
	chunk := func(from, to int) io.Reader { return bytes.NewReader(data[from : to+1]) }

	loc := startSession(t, h, "app")
	steps := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   io.Reader
		length int64
		want   int
	}{
		{"first chunk", http.MethodPatch, loc, rng(0, 9), chunk(0, 9), 10, http.StatusAccepted},
		{"chunk out of order", http.MethodPatch, loc, rng(20, 29), chunk(20, 29), 10, http.StatusRequestedRangeNotSatisfiable},
		{"chunk shorter than declared", http.MethodPatch, loc, nil, chunk(10, 14), 10, http.StatusBadRequest},
		{"body broken mid-chunk", http.MethodPatch, loc, nil, &brokenBody{data[10:20]}, -1, http.StatusBadRequest},
		{"session of another repository", http.MethodPatch, strings.Replace(loc, "/app/", "/other/", 1), nil, chunk(10, 19), 10, http.StatusNotFound},
		{"final PUT with the wrong digest", http.MethodPut, loc + wrong, nil, chunk(10, 35), 26, http.StatusBadRequest},
		{"final PUT with a broken body", http.MethodPut, loc + good, nil, &brokenBody{data[10:20]}, -1, http.StatusBadRequest},
		{"status", http.MethodGet, loc, nil, nil, 0, http.StatusNoContent},
		{"final PUT", http.MethodPut, loc + good, nil, chunk(10, 35), 26, http.StatusCreated},
		{"PATCH after the end", http.MethodPatch, loc, nil, chunk(0, 9), 10, http.StatusNotFound},
	}
	for _, st := range steps {
		rec := serve(h, st.method, st.path, st.header, st.body, st.length)
		if rec.Code != st.want {
			t.Fatalf("%s: %s %s: status %d, want %d; body %s", st.name, st.method, st.path, rec.Code, st.want, rec.Body)
		}
		if n := svc.UploadLockCount(); n != 0 {
			t.Errorf("%s: the lock map holds %d entries after the request", st.name, n)
		}
	}

	// A cancelled session, and one abandoned after a chunk.
	cancelled, abandoned := startSession(t, h, "app"), startSession(t, h, "app")
	if rec := serve(h, http.MethodPatch, abandoned, nil, chunk(0, 9), 10); rec.Code != http.StatusAccepted {
		t.Fatalf("PATCH %s: status %d", abandoned, rec.Code)
	}
	if rec := serve(h, http.MethodDelete, cancelled, nil, nil, 0); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE %s: status %d", cancelled, rec.Code)
	}
	if n := svc.UploadLockCount(); n != 0 {
		t.Errorf("the lock map holds %d entries after a cancelled and an abandoned session", n)
	}

	// Writers racing on one session: one wins each offset, the rest are
	// told the range moved; none leaves an entry behind.
	racy := startSession(t, h, "app")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { serve(h, http.MethodPatch, racy, rng(0, 9), chunk(0, 9), 10) })
	}
	wg.Wait()
	if n := svc.UploadLockCount(); n != 0 {
		t.Errorf("the lock map holds %d entries after racing writers", n)
	}
}
