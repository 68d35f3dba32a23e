package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/registrytest"
)

// requestLog counts the requests a client sends, by method and path.
type requestLog struct {
	mu   sync.Mutex
	seen map[string]int
	next http.RoundTripper
}

func (l *requestLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.seen[req.Method+" "+req.URL.Path]++
	l.mu.Unlock()
	return l.next.RoundTrip(req)
}

// TestPush_PingsOnceAndAsksAboutEachLayerOnce: every ping (GET /v2/, tried
// over https first on a plain-HTTP registry) and every HEAD is a round trip
// before the bytes move. The layers share one go-containerregistry pusher
// with the manifest push, so the pings do not grow with the layers, the
// manifest push does not ask again about layers just uploaded, and wharf
// does not ask before the pusher does.
func TestPush_PingsOnceAndAsksAboutEachLayerOnce(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	pings := map[int]int{}
	for _, n := range []int{1, 6} {
		st := newStore(t)
		img := testImage(t, fmt.Sprintf("requests%d", n), n)
		repo := fmt.Sprintf("team/req%d", n)
		localImage(t, st, img, host+"/"+repo+":v1")
		log := &requestLog{seen: map[string]int{}, next: http.DefaultTransport}
		r := testRemote(t)
		r.Transport = log
		if err := Push(ctx, st, host+"/"+repo+":v1", PushOptions{Remote: r}, io.Discard); err != nil {
			t.Fatal(err)
		}
		pings[n] = log.seen["GET /v2/"]
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			d, _ := l.Digest()
			// The pusher's before it uploads, which also tells "Layer
			// already exists"; not a second of wharf's own, nor a third
			// for the manifest.
			if got := log.seen["HEAD /v2/"+repo+"/blobs/"+d.String()]; got > 1 {
				t.Errorf("layer %s: %d HEAD requests, want at most 1", d, got)
			}
		}
	}
	if pings[6] != pings[1] {
		t.Errorf("pings: %d for 1 layer, %d for 6 layers; want the same", pings[1], pings[6])
	}
}

// holdLayersForConfig holds the final PUT of every blob but the config
// until the config's own PUT has gone through, failing them if it does
// not come within a bound.
type holdLayersForConfig struct {
	config string
	seen   chan struct{}
	once   sync.Once
	next   http.RoundTripper
}

func (h *holdLayersForConfig) RoundTrip(req *http.Request) (*http.Response, error) {
	d := req.URL.Query().Get("digest")
	if req.Method != http.MethodPut || d == "" {
		return h.next.RoundTrip(req)
	}
	if d == h.config {
		resp, err := h.next.RoundTrip(req)
		h.once.Do(func() { close(h.seen) })
		return resp, err
	}
	select {
	case <-h.seen:
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("layer %s: the config was not uploaded while the layers were", d)
	}
	return h.next.RoundTrip(req)
}

// TestPush_UploadsConfigBesideLayers: the config is uploaded while the
// layers are, not in round trips of its own after the last layer.
func TestPush_UploadsConfigBesideLayers(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	st := newStore(t)
	img := testImage(t, "configbeside", 3)
	localImage(t, st, img, host+"/team/cfg:v1")
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	r := testRemote(t)
	r.Transport = &holdLayersForConfig{config: cfg.String(), seen: make(chan struct{}), next: http.DefaultTransport}
	if err := Push(context.Background(), st, host+"/team/cfg:v1", PushOptions{Remote: r}, io.Discard); err != nil {
		t.Fatal(err)
	}
}
