package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// upstream is a real wharf playing the mirrored registry, behind a front
// that counts blob GETs and can hold or cut them.
type upstream struct {
	wharf *registrytest.Server
	front *httptest.Server
	host  string // as a client would name the registry

	blobGets atomic.Int64
	// hold, if set, stops a blob GET after half its body until closed.
	hold chan struct{}
	// cut aborts the next blob GET after half its body.
	cut atomic.Bool
}

func newUpstream(t *testing.T, host string) *upstream {
	t.Helper()
	u := &upstream{wharf: registrytest.NewServer(t), host: host}
	inner := u.wharf.Server.Config.Handler
	u.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As Docker Hub reports its pull allowance.
		w.Header().Set("RateLimit-Limit", "100;w=21600")
		w.Header().Set("RateLimit-Remaining", "97;w=21600")
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			inner.ServeHTTP(w, r)
			return
		}
		u.blobGets.Add(1)
		rec := &halfWriter{ResponseWriter: w}
		if u.hold != nil || u.cut.Load() {
			rec.stopAt = -1 // set on WriteHeader
		}
		rec.onHalf = func() {
			if u.cut.CompareAndSwap(true, false) {
				panic(http.ErrAbortHandler)
			}
			if u.hold != nil {
				<-u.hold
			}
		}
		inner.ServeHTTP(rec, r)
	}))
	t.Cleanup(u.front.Close)
	return u
}

// halfWriter calls onHalf once half of the declared body has gone out.
type halfWriter struct {
	http.ResponseWriter
	stopAt, written int64
	onHalf          func()
	fired           bool
}

func (h *halfWriter) WriteHeader(code int) {
	if h.stopAt < 0 {
		var n int64
		fmt.Sscan(h.Header().Get("Content-Length"), &n)
		h.stopAt = n / 2
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *halfWriter) Write(p []byte) (int, error) {
	if h.stopAt <= 0 || h.fired {
		return h.ResponseWriter.Write(p)
	}
	if room := h.stopAt - h.written; int64(len(p)) > room {
		n, err := h.ResponseWriter.Write(p[:room])
		h.written += int64(n)
		if err != nil {
			return n, err
		}
		h.ResponseWriter.(http.Flusher).Flush()
		h.fired = true
		h.onHalf()
		m, err := h.ResponseWriter.Write(p[room:])
		return n + m, err
	}
	n, err := h.ResponseWriter.Write(p)
	h.written += int64(n)
	return n, err
}

func (h *halfWriter) Flush() { h.ResponseWriter.(http.Flusher).Flush() }

// mirrorOf starts a wharf mirroring the upstreams: the first serves
// library/… (docker.io-style), the others under their host's first label.
func mirrorOf(t *testing.T, opts []registrytest.Option, ups ...*upstream) *registrytest.Server {
	t.Helper()
	var cfgs []config.Upstream
	for i, u := range ups {
		c := config.Upstream{Host: u.host, URL: u.front.URL}
		if i == 0 {
			c.Namespaces = []string{"library"}
		} else {
			c.Prefix, _, _ = strings.Cut(u.host, ".")
		}
		cfgs = append(cfgs, c)
	}
	return registrytest.NewServer(t, append([]registrytest.Option{registrytest.WithConfig(func(c *config.Config) {
		c.Mirror.Upstreams = cfgs
	})}, opts...)...)
}

func pushTo(t *testing.T, srv *httptest.Server, repo string, img v1.Image, opts ...remote.Option) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("push %s: %v", repo, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pullAll pulls ref fully (manifest, config, every layer's bytes) and
// returns the image digest.
func pullAll(t *testing.T, srv *httptest.Server, repo string, opts ...remote.Option) (v1.Hash, error) {
	t.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return v1.Hash{}, err
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return v1.Hash{}, err
		}
	}
	if _, err := img.RawConfigFile(); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

func TestMirror_TransparentPullCachesAndRefusesPush(t *testing.T) {
	up := newUpstream(t, "docker.io")
	img, err := random.Image(64<<10, 2)
	must(t, err)
	want := pushTo(t, up.wharf.Server, "library/busybox:latest", img)
	mirror := mirrorOf(t, nil, up)

	for _, repo := range []string{"library/busybox:latest", "busybox:latest"} {
		got, err := pullAll(t, mirror.Server, repo)
		if err != nil || got != want {
			t.Fatalf("pull %s through the mirror = %s, %v; want %s", repo, got, err, want)
		}
	}
	// Two layers and the config crossed once: busybox is cached as
	// library/busybox, and the second pull of either came from the cache.
	if n := up.blobGets.Load(); n != 3 {
		t.Errorf("pulls of library/busybox and busybox fetched %d blobs upstream, want 3", n)
	}

	// The UI and the metrics show it.
	page := getBody(t, mirror.URL+"/mirror")
	for _, want := range []string{"docker.io", "library/busybox", "Hit rate", "Bytes saved"} {
		if !strings.Contains(page, want) {
			t.Errorf("the mirror page lacks %q", want)
		}
	}
	metrics := getBody(t, mirror.URL+"/metrics")
	for _, want := range []string{`wharf_mirror_ratelimit_remaining{upstream="docker.io"} 97`, `wharf_mirror_ratelimit_limit{upstream="docker.io"} 100`,
		`wharf_mirror_hits_total{upstream="docker.io"}`, `wharf_mirror_saved_bytes_total{upstream="docker.io"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `wharf_mirror_saved_bytes_total{upstream="docker.io"} 0`) {
		t.Errorf("a warm pull saved no bytes in the metrics:\n%s", metrics)
	}

	// Pushing into the mirrored name is refused with a clear message.
	resp, err := http.Post(mirror.URL+"/v2/library/busybox/blobs/uploads/", "", nil)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte(`"DENIED"`)) || !bytes.Contains(body, []byte("read-only mirror of docker.io")) {
		t.Errorf("push to a mirrored name = %d %s, want 403 DENIED naming the upstream", resp.StatusCode, body)
	}
	// A local namespace pushes as always.
	pushTo(t, mirror.Server, "team/app:v1", img)
}

func TestMirror_ConcurrentPullsOfAnUncachedBlobFetchOnce(t *testing.T) {
	up := newUpstream(t, "docker.io")
	blob := make([]byte, 8<<20)
	rng := rand.NewChaCha8([32]byte{7})
	_, _ = rng.Read(blob)
	d := pushBlob(t, up.wharf.URL, "library/big", blob).String()
	mirror := mirrorOf(t, nil, up)

	// Every client gets its answer's headers while the upstream is held
	// halfway: all of them are reading the one fetch in flight.
	up.hold = make(chan struct{})
	const clients = 20
	var headers, done sync.WaitGroup
	headers.Add(clients)
	done.Add(clients)
	errs := make(chan error, clients)
	for range clients {
		go func() {
			defer done.Done()
			resp, err := http.Get(mirror.URL + "/v2/library/big/blobs/" + d)
			headers.Done()
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			if _, err := io.Copy(h, resp.Body); err != nil {
				errs <- err
				return
			}
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); resp.StatusCode != http.StatusOK || got != d {
				errs <- fmt.Errorf("got %d %s", resp.StatusCode, got)
			}
		}()
	}
	headers.Wait()
	close(up.hold)
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := up.blobGets.Load(); n != 1 {
		t.Errorf("%d concurrent pulls made %d upstream GETs, want 1", clients, n)
	}
}

func TestMirror_InterruptedFetchLeavesNothingAndTheNextPullWorks(t *testing.T) {
	up := newUpstream(t, "docker.io")
	blob := bytes.Repeat([]byte("wharf mirror "), 200_000)
	dg := pushBlob(t, up.wharf.URL, "library/cut", blob)
	d, hexd := dg.String(), dg.Encoded()
	mirror := mirrorOf(t, nil, up)

	up.cut.Store(true)
	resp, err := http.Get(mirror.URL + "/v2/library/cut/blobs/" + d)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a pull whose upstream fetch was cut off ended without an error")
	}
	// Nothing of the blob is on disk: not in the blob store, not spooled.
	_ = filepath.WalkDir(mirror.DataDir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && (strings.Contains(path, hexd) || strings.Contains(path, "mirror-spool")) {
			t.Errorf("after a cut-off fetch, %s is on disk", path)
		}
		return nil
	})
	resp, err = http.Get(mirror.URL + "/v2/library/cut/blobs/" + d)
	must(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, blob) {
		t.Fatalf("the pull after the cut = %d bytes, %v; want the blob", len(got), err)
	}
}

func TestMirror_TagRevalidatesAfterTTLAndServesStaleWhenUpstreamIsDown(t *testing.T) {
	up := newUpstream(t, "docker.io")
	v1img, err := random.Image(1024, 1)
	must(t, err)
	first := pushTo(t, up.wharf.Server, "library/app:latest", v1img)
	clock := clocktest.New()
	mirror := mirrorOf(t, []registrytest.Option{registrytest.WithClock(clock.Now)}, up)
	if got, err := pullAll(t, mirror.Server, "library/app:latest"); err != nil || got != first {
		t.Fatalf("first pull = %s, %v", got, err)
	}
	v2img, err := random.Image(1024, 1)
	must(t, err)
	second := pushTo(t, up.wharf.Server, "library/app:latest", v2img)
	if got, _ := pullAll(t, mirror.Server, "library/app:latest"); got != first {
		t.Errorf("within the TTL the tag = %s, want the cached %s", got, first)
	}
	clock.Advance(config.Default().Mirror.TagTTL + time.Second)
	if got, _ := pullAll(t, mirror.Server, "library/app:latest"); got != second {
		t.Errorf("after the TTL the tag = %s, want upstream's new %s", got, second)
	}

	up.front.Close()
	clock.Advance(config.Default().Mirror.TagTTL + time.Second)
	if got, err := pullAll(t, mirror.Server, "library/app:latest"); err != nil || got != second {
		t.Errorf("with the upstream down the cached tag = %s, %v; want %s served stale", got, err, second)
	}
	resp, err := http.Get(mirror.URL + "/v2/library/other/manifests/latest")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(body, []byte("upstream docker.io could not be asked")) {
		t.Errorf("an uncached tag with the upstream down = %d %s, want 502 naming the upstream", resp.StatusCode, body)
	}
}

func TestMirror_NamespaceParameterAndPrefix(t *testing.T) {
	hub := newUpstream(t, "docker.io")
	ghcr := newUpstream(t, "ghcr.test")
	img, err := random.Image(2048, 1)
	must(t, err)
	want := pushTo(t, ghcr.wharf.Server, "owner/tool:v1", img)
	mirror := mirrorOf(t, nil, hub, ghcr)

	// containerd's hosts.toml mirror: the upstream's name, ?ns=its host.
	resp, err := http.Get(mirror.URL + "/v2/owner/tool/manifests/v1?ns=ghcr.test")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != want.String() {
		t.Errorf("?ns=ghcr.test = %d %s, want %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), want)
	}
	// The same content under the configured prefix, now cached.
	if got, err := pullAll(t, mirror.Server, "ghcr/owner/tool:v1"); err != nil || got != want {
		t.Errorf("ghcr/owner/tool:v1 = %s, %v; want %s", got, err, want)
	}
	// A name this registry holds itself ignores ?ns= of a host not mirrored.
	pushTo(t, mirror.Server, "owner/tool:v1", img)
	resp, err = http.Get(mirror.URL + "/v2/owner/tool/manifests/v1?ns=registry.local:5000")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("local name with ?ns= of this registry = %d", resp.StatusCode)
	}
}

func TestMirror_AnonymousPullsOnlyWhenConfigured(t *testing.T) {
	for _, anonymous := range []bool{false, true} {
		t.Run(fmt.Sprintf("anonymous_pull=%v", anonymous), func(t *testing.T) {
			up := newUpstream(t, "docker.io")
			img, err := random.Image(1024, 1)
			must(t, err)
			want := pushTo(t, up.wharf.Server, "library/app:latest", img)
			mirror := mirrorOf(t, []registrytest.Option{registrytest.WithAuth("mirror-admin-pw"), registrytest.WithConfig(func(c *config.Config) {
				c.Mirror.AnonymousPull = anonymous
			})}, up)
			got, err := pullAll(t, mirror.Server, "library/app:latest")
			if anonymous && (err != nil || got != want) {
				t.Errorf("anonymous pull = %s, %v; want %s", got, err, want)
			}
			if !anonymous && err == nil {
				t.Error("anonymous pull through the mirror succeeded without anonymous_pull")
			}
			// An account that may pull (the admin) always can.
			admin := remote.WithAuth(&authn.Basic{Username: "admin", Password: "mirror-admin-pw"})
			if got, err := pullAll(t, mirror.Server, "library/app:latest", admin); err != nil || got != want {
				t.Errorf("admin pull = %s, %v; want %s", got, err, want)
			}
		})
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s", url, resp.Status)
	}
	return string(b)
}
