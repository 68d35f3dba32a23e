package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
	"strconv"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
)

// nullStore is the null registry's storing mode, the push rows' ceiling:
// the same work a registry must do for a blob and nothing else. Bodies are
// hashed with sha256 and written through wharf's own blobstore/fs upload
// writer (the same 1 MiB writes, sync_file_range every 8 MiB, a background
// fsync every 32 MiB, the final fsync, rename and directory fsync at
// commit), with hashing and writing overlapped as wharf overlaps them. What
// it leaves out is the registry: no metadata database, no sessions beyond
// a map in memory, no repository links, no access log.
type nullStore struct {
	store *fs.Store
	bufs  sync.Pool

	mu      sync.Mutex
	uploads map[string]*nullUpload
}

type nullUpload struct {
	h      hash.Hash
	offset int64
}

func newNullStore(dir string) (*nullStore, error) {
	st, err := fs.New(dir, nil)
	if err != nil {
		return nil, err
	}
	n := &nullStore{store: st, uploads: map[string]*nullUpload{}}
	n.bufs.New = func() any { b := make([]byte, 1<<20); return &b }
	return n, nil
}

// ServeHTTP answers POST (start), PATCH (append) and PUT (append the rest,
// check the digest, commit) under /v2/…/blobs/uploads/.
func (n *nullStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodPost {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if err := n.store.StartUpload(ctx, id); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n.mu.Lock()
		n.uploads[id] = &nullUpload{h: sha256.New()}
		n.mu.Unlock()
		w.Header().Set("Location", r.URL.Path+id)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	id := path.Base(r.URL.Path)
	n.mu.Lock()
	u := n.uploads[id]
	n.mu.Unlock()
	if u == nil {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	if err := n.write(ctx, id, u, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	switch r.Method {
	case http.MethodPatch:
		w.Header().Set("Location", r.URL.Path)
		w.Header().Set("Range", "0-"+strconv.FormatInt(max(u.offset-1, 0), 10))
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPut:
		n.mu.Lock()
		delete(n.uploads, id)
		n.mu.Unlock()
		want := r.URL.Query().Get("digest")
		got := digest.NewDigest(digest.SHA256, u.h)
		if got.String() != want {
			http.Error(w, fmt.Sprintf("digest %s, want %s", got, want), http.StatusBadRequest)
			return
		}
		if err := n.store.CommitUpload(ctx, id, got, u.offset); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// write streams body into the upload at its offset. As in wharf, a
// goroutine writes one buffer while the next is hashed and read: the
// ceiling is the best the machine does, so it gets the same overlap.
func (n *nullStore) write(ctx context.Context, id string, u *nullUpload, body io.Reader) error {
	wc, err := n.store.WriteUpload(ctx, id, u.offset)
	if err != nil {
		return err
	}
	a, b := n.bufs.Get().(*[]byte), n.bufs.Get().(*[]byte)
	defer n.bufs.Put(a)
	defer n.bufs.Put(b)
	cur, next := *a, *b
	done := make(chan error, 1)
	pending := false
	wait := func() error {
		if !pending {
			return nil
		}
		pending = false
		return <-done
	}
	var werr error
	for {
		k, rerr := io.ReadFull(body, cur)
		if k > 0 {
			if werr = wait(); werr != nil {
				break
			}
			chunk := cur[:k]
			pending = true
			go func() { _, err := wc.Write(chunk); done <- err }()
			u.h.Write(chunk)
			u.offset += int64(k)
			cur, next = next, cur
		}
		if rerr != nil {
			werr = wait()
			if !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
				werr = errors.Join(werr, rerr)
			}
			break
		}
	}
	return errors.Join(werr, wc.Close())
}
