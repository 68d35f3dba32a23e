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

// holdLayersForConfigGET holds every blob GET but the config's until the
// config has been asked for, failing them if it is not within a bound.
type holdLayersForConfigGET struct {
	config string
	asked  chan struct{}
	once   sync.Once
	next   http.RoundTripper
}

func (h *holdLayersForConfigGET) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || !strings.Contains(req.URL.Path, "/blobs/") {
		return h.next.RoundTrip(req)
	}
	if strings.HasSuffix(req.URL.Path, "/blobs/"+h.config) {
		h.once.Do(func() { close(h.asked) })
		return h.next.RoundTrip(req)
	}
	select {
	case <-h.asked:
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("%s: the config was not fetched while the layers were", req.URL.Path)
	}
	return h.next.RoundTrip(req)
}

// TestPull_FetchesConfigBesideLayers: the config's round trip overlaps the
// layers' instead of following the last of them.
func TestPull_FetchesConfigBesideLayers(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	img := testImage(t, "pullconfig", 3)
	src := newStore(t)
	localImage(t, src, img, host+"/team/pullcfg:v1")
	if err := Push(ctx, src, host+"/team/pullcfg:v1", PushOptions{Remote: testRemote(t)}, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	r := testRemote(t)
	r.Transport = &holdLayersForConfigGET{config: cfg.String(), asked: make(chan struct{}), next: http.DefaultTransport}
	dst := newStore(t)
	if err := Pull(ctx, dst, host+"/team/pullcfg:v1", PullOptions{Remote: r}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !dst.HasBlob(cfg) {
		t.Error("config not stored")
	}
}
