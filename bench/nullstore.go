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

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/registry"
)

// nullStore is the null registry's storing mode, the push rows' ceiling:
// the same work a registry must do for a blob and nothing else. Bodies are
// hashed with sha256 and written through wharf's own blobstore/fs upload
// writer (the same 1 MiB writes, sync_file_range every 8 MiB, a background
// fsync every 32 MiB, the final fsync, rename and directory fsync at
// commit), by wharf's own registry.HashCopy, which overlaps hashing and
// writing. What it leaves out is the registry: no metadata database, no
// sessions beyond a map in memory, no repository links, no access log.
type nullStore struct {
	store *fs.Store

	mu      sync.Mutex
	uploads map[string]*nullUpload
}

type nullUpload struct {
	h      hash.Hash
	offset int64
	state  blobstore.State // the driver's, recorded after each write
}

func newNullStore(dir string) (*nullStore, error) {
	st, err := fs.New(dir, nil)
	if err != nil {
		return nil, err
	}
	n := &nullStore{store: st, uploads: map[string]*nullUpload{}}
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
		st, err := n.store.StartUpload(ctx, id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n.mu.Lock()
		n.uploads[id] = &nullUpload{h: sha256.New(), state: st}
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
		if err := n.store.CommitUpload(ctx, id, u.state, got, u.offset); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// write streams body into the upload at its offset through wharf's own
// HashCopy: the ceiling is the best the machine does with the same work,
// so it reads, hashes and writes as wharf does, with the same overlap.
func (n *nullStore) write(ctx context.Context, id string, u *nullUpload, body io.Reader) error {
	wc, err := n.store.WriteUpload(ctx, id, u.offset, u.state)
	if err != nil {
		return err
	}
	k, rerr, werr := registry.HashCopy(wc, u.h, body)
	u.offset += k
	if err := errors.Join(werr, rerr, wc.Close()); err != nil {
		return err
	}
	u.state = wc.State()
	return nil
}
