package server_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestMirror_FirstClientThatStopsReadingHoldsNoOtherClient(t *testing.T) {
	up := newUpstream(t, "docker.io")
	blob := make([]byte, 12<<20)
	_, _ = rand.NewChaCha8([32]byte{13}).Read(blob)
	d := pushBlob(t, up.wharf.URL, "library/slow", blob).String()
	mirror := mirrorOf(t, nil, up)

	// The first client starts the fetch (it has its headers), so it is
	// the one lent the fetch's buffers, and then reads nothing for now.
	first, err := http.Get(mirror.URL + "/v2/library/slow/blobs/" + d)
	must(t, err)
	defer first.Body.Close()
	// A second client gets the whole blob meanwhile: the fetch does not
	// wait for the first.
	resp, err := http.Get(mirror.URL + "/v2/library/slow/blobs/" + d)
	must(t, err)
	defer resp.Body.Close()
	wantBlob(t, "second client", resp.Body, blob)
	// The first, reading at last, gets the blob whole: what it was lent,
	// then what it missed, from the spool.
	wantBlob(t, "first client", first.Body, blob)
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("upstream blob GETs = %d, want 1", n)
	}
}

func TestMirror_BlobThatDoesNotMatchItsDigestNeverReachesAClientWhole(t *testing.T) {
	up := newUpstream(t, "docker.io")
	blob := make([]byte, 3<<20)
	_, _ = rand.NewChaCha8([32]byte{17}).Read(blob)
	d := digest.FromBytes(blob).String()
	// The upstream sends the blob's length in other bytes: the last one
	// differs.
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 0xff
	inner := up.wharf.Server.Config.Handler
	release := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+d) {
			inner.ServeHTTP(w, r)
			return
		}
		// All but the last byte, then that once the client is reading.
		w.Header().Set("Content-Length", strconv.Itoa(len(bad)))
		_, _ = w.Write(bad[:len(bad)-1])
		w.(http.Flusher).Flush()
		<-release
		_, _ = w.Write(bad[len(bad)-1:])
	}))
	t.Cleanup(front.Close)
	mirror := mirrorOf(t, nil, &upstream{wharf: up.wharf, front: front, host: up.host})

	resp, err := http.Get(mirror.URL + "/v2/library/bad/blobs/" + d)
	close(release)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: the fetch is under way when the answer starts", resp.StatusCode)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("a blob whose bytes do not match its digest reached the client whole (%d bytes)", len(got))
	}
	if len(got) >= len(bad) {
		t.Errorf("the client received %d bytes of %d before the error, want the last withheld", len(got), len(bad))
	}
}

// wantBlob reads r to its end and fails the test unless it was blob.
func wantBlob(t *testing.T, who string, r io.Reader, blob []byte) {
	t.Helper()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("%s = %d bytes, %v; want the blob", who, len(got), err)
	}
}

// One client alone is lent the fetch's chunks as they arrive and reads
// the rest from the spool: over many chunks, the two must join without a
// gap (a version that spooled on a goroutine of its own lent chunks ahead
// of the spool and failed here with a short read).
func TestMirror_LoneClientGetsAManyChunkBlobWhole(t *testing.T) {
	up := newUpstream(t, "docker.io")
	blob := make([]byte, 48<<20)
	_, _ = rand.NewChaCha8([32]byte{19}).Read(blob)
	d := pushBlob(t, up.wharf.URL, "library/many", blob).String()
	mirror := mirrorOf(t, nil, up)
	resp, err := http.Get(mirror.URL + "/v2/library/many/blobs/" + d)
	must(t, err)
	defer resp.Body.Close()
	wantBlob(t, "client", resp.Body, blob)
}
