package registry_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

const leaseMiB = 1 << 20

// replica is one registry process of a shared deployment: its own
// connections to the one database and the one bucket.
type replica struct {
	h    http.Handler
	meta *sqldb.DB
}

// sharedReplicas starts two replicas over one PostgreSQL database and one
// versitygw bucket, reading one clock that the test moves.
func sharedReplicas(t *testing.T) (a, b replica, clock *clocktest.Clock) {
	t.Helper()
	dbURL := servicetest.StartPostgres(t).Database(t)
	srv := servicetest.StartS3(t)
	bucket := srv.Bucket(t)
	log := slog.New(slog.DiscardHandler)
	clock = clocktest.New()
	var rs [2]replica
	for i := range rs {
		meta, err := sqldb.OpenPostgres(t.Context(), dbURL, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = meta.Close() })
		blobs, err := s3.New(t.Context(), s3.Config{
			Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: 5 * leaseMiB,
		}, log)
		if err != nil {
			t.Fatal(err)
		}
		svc := registry.New(meta, blobs, log, registry.Options{Now: clock.Now})
		rs[i] = replica{h: distribution.New(svc, log), meta: meta}
	}
	return rs[0], rs[1], clock
}

func leaseBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = mrand.NewChaCha8([32]byte{seed, 'l'}).Read(b)
	return b
}

// patchAt sends body as the chunk starting at off, declared with
// Content-Range and Content-Length.
func patchAt(h http.Handler, loc string, off int64, body io.Reader, n int64) (int, http.Header, string) {
	hdr := http.Header{
		"Content-Type":  {"application/octet-stream"},
		"Content-Range": {fmt.Sprintf("%d-%d", off, off+n-1)},
	}
	rec := serve(h, http.MethodPatch, loc, hdr, body, n)
	return rec.Code, rec.Header(), rec.Body.String()
}

// want416 checks a refused chunk: 416, the spec's error body, and the
// Range the session holds.
func want416(t *testing.T, what string, code int, hdr http.Header, body string, offset int64) {
	t.Helper()
	if code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("%s: status %d, body %s; want 416", what, code, body)
	}
	if !bytes.Contains([]byte(body), []byte(`"code":"BLOB_UPLOAD_INVALID"`)) {
		t.Errorf("%s: body %s; want a BLOB_UPLOAD_INVALID error", what, body)
	}
	if want := rangeOf(offset); hdr.Get("Range") != want {
		t.Errorf("%s: Range %q; want %q", what, hdr.Get("Range"), want)
	}
}

// rangeOf is the Range header of a session holding offset bytes ("0-0"
// for none, as the distribution spec's examples have it).
func rangeOf(offset int64) string {
	if offset == 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(offset-1, 10)
}

// finishAndVerify completes the session on h with the digest of want and
// reads the blob back through other.
func finishAndVerify(t *testing.T, h, other http.Handler, repo, loc string, want []byte) {
	t.Helper()
	d := digest.FromBytes(want)
	rec := serve(h, http.MethodPut, loc+"?digest="+d.String(), nil, nil, 0)
	if rec.Code != http.StatusCreated {
		t.Fatalf("PUT to finish: status %d, body %s", rec.Code, rec.Body)
	}
	rec = serve(other, http.MethodGet, "/v2/"+repo+"/blobs/"+d.String(), nil, nil, 0)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET blob: status %d, body %s", rec.Code, rec.Body)
	}
	if got := digest.FromBytes(rec.Body.Bytes()); got != d {
		t.Fatalf("blob %s holds %d bytes with digest %s", d, rec.Body.Len(), got)
	}
}

// Two replicas PATCH different bytes at the same offset of one session,
// round after round, with chunks inside a part and across parts: each
// round exactly one chunk is taken and the other refused with 416, and
// the finished blob holds exactly the chunks taken.
func TestUploadLease_RacingPatchesOnTwoReplicas_OneWinsOneGets416(t *testing.T) {
	a, b, _ := sharedReplicas(t)
	const repo = "race/blob"
	loc := startSession(t, a.h, repo)
	var want []byte
	overlapped := 0
	for round := range 8 {
		n := 300<<10 + round
		if round%2 == 1 {
			n = 5*leaseMiB + 100<<10 // fills the part the short chunks began
		}
		off := int64(len(want))
		chunks := [2][]byte{leaseBytes(n, byte(2*round)), leaseBytes(n, byte(2*round+1))}
		var codes [2]int
		var hdrs [2]http.Header
		var bodies [2]string
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, r := range []replica{a, b} {
			wg.Go(func() {
				<-start
				codes[i], hdrs[i], bodies[i] = patchAt(r.h, loc, off, bytes.NewReader(chunks[i]), int64(n))
			})
		}
		close(start)
		wg.Wait()
		won := -1
		switch {
		case codes[0] == http.StatusAccepted && codes[1] != http.StatusAccepted:
			won = 0
		case codes[1] == http.StatusAccepted && codes[0] != http.StatusAccepted:
			won = 1
		default:
			t.Fatalf("round %d: statuses %v (bodies %q); want one 202 and one 416", round, codes, bodies)
		}
		lost := 1 - won
		if codes[lost] != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("round %d: loser's status %d, body %s; want 416", round, codes[lost], bodies[lost])
		}
		// The loser saw the session before or after the winner's advance.
		switch hdrs[lost].Get("Range") {
		case rangeOf(off):
			overlapped++ // refused while the winner held the session
		case rangeOf(off + int64(n)):
		default:
			t.Errorf("round %d: loser's Range %q; want the offset before or after the round", round, hdrs[lost].Get("Range"))
		}
		want = append(want, chunks[won]...)
	}
	t.Logf("%d of 8 rounds refused the loser while the winner wrote", overlapped)
	finishAndVerify(t, b.h, a.h, repo, loc, want)
}

// While one replica streams a chunk, a chunk at the same offset on the
// other replica is refused at once with the recorded offset, and nothing
// of it is stored: the first chunk is taken and the blob is its bytes.
func TestUploadLease_ChunkOnOtherReplicaRefusedWhileFirstStreams(t *testing.T) {
	a, b, _ := sharedReplicas(t)
	const repo = "lease/streaming"
	loc := startSession(t, a.h, repo)
	first := leaseBytes(6*leaseMiB, 1)
	if code, _, body := patchAt(a.h, loc, 0, bytes.NewReader(first[:leaseMiB]), leaseMiB); code != http.StatusAccepted {
		t.Fatalf("first chunk: status %d, body %s", code, body)
	}

	chunk := first[leaseMiB:]
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		code, _, _ := patchAt(a.h, loc, leaseMiB, pr, int64(len(chunk)))
		done <- code
	}()
	// The handler reads the body only once it holds the session, so this
	// write returning means replica a has claimed it.
	if _, err := pw.Write(chunk[:2*leaseMiB]); err != nil {
		t.Fatal(err)
	}
	other := leaseBytes(len(chunk), 2)
	code, hdr, body := patchAt(b.h, loc, leaseMiB, bytes.NewReader(other), int64(len(other)))
	want416(t, "chunk on replica b while a streams", code, hdr, body, leaseMiB)

	if _, err := pw.Write(chunk[2*leaseMiB:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-done; code != http.StatusAccepted {
		t.Fatalf("streamed chunk on replica a: status %d", code)
	}
	finishAndVerify(t, b.h, a.h, repo, loc, first)
}

// A replica that dies mid-chunk leaves its claim; once the claim lapses
// the other replica continues the session from its recorded offset. If
// the first was only stalled and its body resumes, it stores nothing
// more and is refused, and the blob holds the second replica's bytes.
func TestUploadLease_DeadWritersSessionResumesOnOtherReplicaAfterTTL(t *testing.T) {
	a, b, clock := sharedReplicas(t)
	const repo = "lease/dead"
	loc := startSession(t, a.h, repo)
	head := leaseBytes(100<<10, 1)
	if code, _, body := patchAt(a.h, loc, 0, bytes.NewReader(head), int64(len(head))); code != http.StatusAccepted {
		t.Fatalf("first chunk: status %d, body %s", code, body)
	}
	off := int64(len(head))

	// Replica a's chunk sends a whole part to S3 and then stalls.
	stale := leaseBytes(8*leaseMiB, 2)
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		code, _, _ := patchAt(a.h, loc, off, pr, int64(len(stale)))
		// As a server does when the handler returns: the rest of the body
		// is not read.
		pr.CloseWithError(io.ErrClosedPipe)
		done <- code
	}()
	if _, err := pw.Write(stale[:6*leaseMiB]); err != nil {
		t.Fatal(err)
	}

	next := leaseBytes(7*leaseMiB, 3)
	code, hdr, body := patchAt(b.h, loc, off, bytes.NewReader(next), int64(len(next)))
	want416(t, "chunk on replica b within the claim", code, hdr, body, off)

	// Replica a may still be storing the bytes it read ahead of its
	// writes when the clock moves, and a write renews the claim: that is
	// a live writer, not a stalled one. Once those few MiB are stored it
	// reads nothing and renews nothing, so within a few lapses the claim
	// is free.
	for try := 1; ; try++ {
		clock.Advance(registry.UploadLeaseTTL)
		code, hdr, body := patchAt(b.h, loc, off, bytes.NewReader(next), int64(len(next)))
		if code == http.StatusAccepted {
			break
		}
		want416(t, "chunk on replica b while a stores what it read ahead", code, hdr, body, off)
		if try == 5 {
			t.Fatalf("chunk on replica b after the claim lapsed %d times: status %d, body %s", try, code, body)
		}
	}

	// Replica a wakes up: its claim is gone, and it stops reading.
	_, _ = pw.Write(stale[6*leaseMiB:])
	pw.Close()
	if code := <-done; code != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("stalled chunk on replica a after losing its claim: status %d; want 416", code)
	}
	finishAndVerify(t, a.h, b.h, repo, loc, append(head, next...))
}

// On SQLite, which one process writes, a chunk claims nothing: the
// in-process lock is the guard and the chunk costs one database write.
func TestUploadLease_SQLiteChunkClaimsNothing(t *testing.T) {
	_, meta, blobs := realStores(t)
	log := slog.New(slog.DiscardHandler)
	h := distribution.New(registry.New(meta, blobs, log, registry.Options{}), log)
	const repo = "lease/sqlite"
	loc := startSession(t, h, repo)
	id := loc[len(loc)-36:]
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		code, _, _ := patchAt(h, loc, 0, pr, 2*leaseMiB)
		done <- code
	}()
	if _, err := pw.Write(leaseBytes(leaseMiB, 1)); err != nil {
		t.Fatal(err)
	}
	u, err := meta.GetUpload(t.Context(), repo, id)
	if err != nil {
		t.Fatal(err)
	}
	if u.Writer != "" {
		t.Errorf("session streamed on SQLite has writer %q; want none", u.Writer)
	}
	if _, err := pw.Write(leaseBytes(leaseMiB, 2)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code := <-done; code != http.StatusAccepted {
		t.Fatalf("chunk: status %d", code)
	}
}
