package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// nullRegistryCmd is the hidden sub-command that turns this binary into the
// null registry: the bare net/http server whose figures are the loopback
// limits. It speaks just enough of the distribution API for the harness's
// own client code to drive it unchanged, and does no registry work: blobs
// and the manifest come from memory, and uploads are read and dropped or,
// with --data-dir, hashed and stored as a registry must (see nullStore).
const nullRegistryCmd = "null-registry"

func runNullRegistry(args []string) error {
	fs := flag.NewFlagSet(nullRegistryCmd, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:5999", "listen address")
	blobSize := fs.Int64("blob-size", 0, "length of every blob GET answer")
	manifestFile := fs.String("manifest", "", "file whose bytes answer every manifest GET")
	dataDir := fs.String("data-dir", "", "hash and store uploads here (the push ceiling) instead of dropping them")
	mirrorOf := fs.String("mirror-of", "", "serve blob GETs from this upstream as a pull-through cache would, spooled in --data-dir (the cold-pull ceiling)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Blob bytes come from the same 64 MiB pattern as the client's, not from a
	// small buffer that would stay in the CPU cache and flatter the limit.
	n := &nullRegistry{blobSize: *blobSize, body: pattern()}
	if *manifestFile != "" {
		b, err := os.ReadFile(*manifestFile)
		if err != nil {
			return err
		}
		n.setManifest(b)
	}
	n.bufs.New = func() any { return make([]byte, 1<<20) }
	switch {
	case *mirrorOf != "":
		if *dataDir == "" {
			return errors.New("--mirror-of needs --data-dir for its spool")
		}
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			return err
		}
		n.mirror = &nullMirror{upstream: *mirrorOf, spoolDir: *dataDir, client: &http.Client{}}
	case *dataDir != "":
		st, err := newNullStore(*dataDir)
		if err != nil {
			return err
		}
		n.store = st
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *addr, Handler: n, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// nullRequestID stands for the id a registry echoes on every answer.
const nullRequestID = "000000000000000000000000"

type nullRegistry struct {
	blobSize       int64
	body           []byte
	manifest       []byte
	manifestDigest string
	manifestETag   string
	bufs           sync.Pool
	store          *nullStore  // stores uploads when set
	mirror         *nullMirror // serves blob GETs from an upstream when set
}

// setManifest makes b the answer to every manifest GET.
func (n *nullRegistry) setManifest(b []byte) {
	n.manifest, n.manifestDigest = b, sha256Digest(b)
	n.manifestETag = `"` + n.manifestDigest + `"`
}

func (n *nullRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/readyz" || p == "/v2/":
		w.WriteHeader(http.StatusOK)
	case strings.Contains(p, "/blobs/uploads/") && n.store != nil:
		n.store.ServeHTTP(w, r)
	case strings.Contains(p, "/blobs/uploads/"):
		n.upload(w, r)
	case strings.Contains(p, "/manifests/"):
		// The same header lines as a registry's answer (wharf's, in length
		// and order): the ceiling is the machine's rate for these bytes on
		// the wire, and the headers are a tenth of them, which both ends
		// write and parse. The request id is a fixed one of wharf's length;
		// making a fresh one is the registry's work, not the wire's.
		h := w.Header()
		h.Set("Content-Type", v1.MediaTypeImageManifest)
		h.Set("Content-Length", strconv.Itoa(len(n.manifest)))
		h.Set("Docker-Content-Digest", n.manifestDigest)
		h.Set("Docker-Distribution-Api-Version", "registry/2.0")
		h.Set("Etag", n.manifestETag)
		h.Set("X-Request-Id", nullRequestID)
		if r.Method == http.MethodGet {
			_, _ = w.Write(n.manifest)
		}
	case strings.Contains(p, "/blobs/") && n.mirror != nil && r.Method == http.MethodGet:
		n.mirror.serveBlob(w, r)
	case strings.Contains(p, "/blobs/"):
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(n.blobSize, 10))
		if r.Method != http.MethodGet {
			return
		}
		for off := int64(0); off < n.blobSize; {
			i := off % int64(len(n.body))
			k, err := w.Write(n.body[i:min(i+1<<20, int64(len(n.body)), i+n.blobSize-off)])
			if err != nil {
				return
			}
			off += int64(k)
		}
	default:
		http.NotFound(w, r)
	}
}

// upload reads the request body in 1 MiB pieces and drops it.
func (n *nullRegistry) upload(w http.ResponseWriter, r *http.Request) {
	buf := n.bufs.Get().([]byte)
	var total int64
	for {
		k, err := r.Body.Read(buf)
		total += int64(k)
		if err != nil {
			break
		}
	}
	n.bufs.Put(buf)
	h := w.Header()
	switch r.Method {
	case http.MethodPost:
		h.Set("Location", r.URL.Path+"null")
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPatch:
		h.Set("Location", r.URL.Path)
		h.Set("Range", "0-"+strconv.FormatInt(max(total-1, 0), 10))
		w.WriteHeader(http.StatusAccepted)
	case http.MethodPut:
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
