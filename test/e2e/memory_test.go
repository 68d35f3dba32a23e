//go:build e2e

package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestMemoryFlat pushes and pulls a 5 GiB blob through a real wharf and
// checks that the server's peak resident memory does not grow with it:
// blobs must stream, never be held whole.
func TestMemoryFlat(t *testing.T) {
	srv := startWharf(t)
	const small, big = 16 << 20, 5 << 30

	pushAndPull(t, srv, "mem/small", small, 1)
	baseline := peakRSS(t, srv)

	pushAndPull(t, srv, "mem/big", big, 2)
	peak := peakRSS(t, srv)

	t.Logf("server peak RSS: %d MiB after a 16 MiB blob, %d MiB after a 5 GiB blob", baseline>>20, peak>>20)
	fmt.Printf("e2e memory: peak RSS %d MiB after 16 MiB push+pull, %d MiB after 5 GiB push+pull\n", baseline>>20, peak>>20)
	if peak-baseline > 32<<20 {
		t.Errorf("peak RSS grew by %d MiB between a 16 MiB and a 5 GiB blob; memory must stay flat", (peak-baseline)>>20)
	}
	if peak > 128<<20 {
		t.Errorf("peak RSS %d MiB exceeds 128 MiB", peak>>20)
	}
}

// pushAndPull streams size pseudo-random bytes as one PATCH without
// Content-Range (the way docker pushes), completes the upload, then reads
// the blob back and compares digests.
func pushAndPull(t *testing.T, srv *wharfServer, repo string, size int64, seed uint64) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc := srv.URL + resp.Header.Get("Location")

	h := sha256.New()
	body := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), size), h)
	req, _ := http.NewRequest(http.MethodPatch, loc, io.NopCloser(body)) // no length: chunked
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH upload: %s", resp.Status)
	}
	if got, want := resp.Header.Get("Range"), "0-"+strconv.FormatInt(size-1, 10); got != want {
		t.Fatalf("Range after PATCH = %q, want %q", got, want)
	}
	d := digest.NewDigest(digest.SHA256, h)
	req, _ = http.NewRequest(http.MethodPut, srv.URL+resp.Header.Get("Location")+"?digest="+d.String(), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT upload: %s", resp.Status)
	}

	resp, err = http.Get(srv.URL + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
		t.Fatalf("GET blob: %s, length %d", resp.Status, resp.ContentLength)
	}
	v := d.Verifier()
	n, err := io.Copy(v, resp.Body)
	if err != nil || n != size || !v.Verified() {
		t.Fatalf("GET blob: read %d bytes (err %v), verified %v", n, err, v.Verified())
	}
}

// peakRSS reads the server process's high-water resident set (VmHWM).
func peakRSS(t *testing.T, srv *wharfServer) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("VmHWM not found")
	return 0
}
