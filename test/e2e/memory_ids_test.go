//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/opencontainers/go-digest"
)

// TestMemoryBogusUploadIDs sends 20,000 upload requests with ids that are
// no session (well-formed ones and 10 KB ones; PATCH, PUT, GET, DELETE)
// to a real wharf and checks that its resident memory stays where it was:
// anyone who may push can send such ids, as many as they like.
func TestMemoryBogusUploadIDs(t *testing.T) {
	srv := startWharf(t)
	body := []byte("sixteen bytes!!!")
	put := "?digest=" + digest.FromBytes(body).String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	send := func(i int) error {
		id := uuid.NewString()
		if i%2 == 1 {
			id += strings.Repeat("x", 10<<10-len(id))
		}
		url := srv.URL + "/v2/mem/ids/blobs/uploads/" + id
		var req *http.Request
		switch method := []string{http.MethodPatch, http.MethodPut, http.MethodGet, http.MethodDelete}[i/2%4]; method {
		case http.MethodPatch:
			req, _ = http.NewRequest(method, url, bytes.NewReader(body))
		case http.MethodPut:
			req, _ = http.NewRequest(method, url+put, bytes.NewReader(body))
		default:
			req, _ = http.NewRequest(method, url, nil)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			return fmt.Errorf("%s with a bogus id: %s, want 404", req.Method, resp.Status)
		}
		return nil
	}
	run := func(n int) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					if err := send(i); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}

	// Warm up: the heap reaches its usual size for this traffic first.
	run(2000)
	before := procStatus(t, srv, "VmRSS")
	run(20000)
	after := procStatus(t, srv, "VmRSS")
	t.Logf("server RSS: %d KiB before, %d KiB after 20,000 requests with bogus upload ids (%+d KiB)", before>>10, after>>10, (after-before)>>10)
	fmt.Printf("e2e memory: RSS %d KiB before, %d KiB after 20,000 bogus upload ids\n", before>>10, after>>10)
	if after-before > 8<<20 {
		t.Errorf("server RSS grew by %d MiB over 20,000 bogus upload ids; want under 8 MiB", (after-before)>>20)
	}
}

// procStatus reads a size field ("VmRSS", "VmHWM") of the server process.
func procStatus(t *testing.T, srv *wharfServer, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("%s not found", field)
	return 0
}
