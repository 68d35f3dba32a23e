package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
)

// nullMirror is the null registry as a pull-through cache: the ceiling of
// a cold pull through a mirror (row 10b). A blob GET is fetched from the
// upstream and each piece, as it arrives, is sent to the client, written
// to a spool file and hashed, the three side by side on goroutines of
// their own: the least work a mirror that caches what it serves can do,
// done as fast as this machine allows. It keeps nothing (the spool is
// removed at the end) and answers nothing else.
type nullMirror struct {
	upstream string
	spoolDir string
	client   *http.Client
}

// nullPiece is one read of the upstream, in flight to the three stages;
// the last to finish with it frees its buffer.
type nullPiece struct {
	buf  []byte
	left atomic.Int32
}

func (n *nullMirror) serveBlob(w http.ResponseWriter, r *http.Request) {
	resp, err := n.client.Get(n.upstream + r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		http.Error(w, "upstream: "+resp.Status, http.StatusBadGateway)
		return
	}
	spool, err := os.CreateTemp(n.spoolDir, "spool-*")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", resp.Header.Get("Content-Length"))

	const buffers = 4
	free := make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, 1<<20)
	}
	h := sha256.New()
	stages := []func([]byte) error{
		func(b []byte) error { _, err := w.Write(b); return err },
		func(b []byte) error { _, err := spool.Write(b); return err },
		func(b []byte) error { h.Write(b); return nil },
	}
	var wg sync.WaitGroup
	var failed atomic.Bool
	queues := make([]chan *nullPiece, len(stages))
	for i, stage := range stages {
		queues[i] = make(chan *nullPiece, buffers)
		wg.Go(func() {
			for p := range queues[i] {
				if !failed.Load() && stage(p.buf) != nil {
					failed.Store(true)
				}
				if p.left.Add(-1) == 0 {
					free <- p.buf[:cap(p.buf)]
				}
			}
		})
	}
	for !failed.Load() {
		buf := <-free
		k, err := resp.Body.Read(buf)
		if k > 0 {
			p := &nullPiece{buf: buf[:k]}
			p.left.Store(int32(len(stages)))
			for _, q := range queues {
				q <- p
			}
		} else {
			free <- buf
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			failed.Store(true)
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if want := fmt.Sprintf("sha256:%x", h.Sum(nil)); !failed.Load() && want != blobDigestOf(r.URL.Path) {
		log.Printf("null mirror: %s hashed to %s", r.URL.Path, want)
	}
}

// blobDigestOf is the digest at the end of a blob path.
func blobDigestOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}
