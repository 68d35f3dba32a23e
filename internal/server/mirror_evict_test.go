package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/server"
)

func TestMirror_SizeCapEvictsLeastRecentlyPulledAndSparesLocalNamespaces(t *testing.T) {
	up := newUpstream(t, "docker.io")
	const layer = 100 << 10
	imgs := map[string]v1.Image{}
	want := map[string]v1.Hash{}
	for _, repo := range []string{"library/a", "library/b", "library/c"} {
		img, err := random.Image(layer, 1)
		must(t, err)
		imgs[repo] = img
		want[repo] = pushTo(t, up.wharf.Server, repo+":1", img)
	}
	clock := clocktest.New()
	// Room for two of the three images, not three.
	mirror := mirrorOf(t, []registrytest.Option{registrytest.WithClock(clock.Now), registrytest.WithConfig(func(c *config.Config) {
		c.Mirror.MaxSize = "250KiB"
		c.Mirror.TagTTL = 24 * time.Hour
	})}, up)
	// A local image has b's layer under its own config: eviction must
	// not take the layer.
	cf, err := imgs["library/b"].ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"team": "app"}
	local, err := mutate.ConfigFile(imgs["library/b"], cf)
	must(t, err)
	pushTo(t, mirror.Server, "team/app:v1", local)

	pull := func(repo string) {
		t.Helper()
		if got, err := pullAll(t, mirror.Server, repo+":1"); err != nil || got != want[repo] {
			t.Fatalf("pull %s = %s, %v; want %s", repo, got, err, want[repo])
		}
	}
	// Least recently pulled: b, then c, then a.
	for _, repo := range []string{"library/a", "library/b", "library/c", "library/a"} {
		pull(repo)
		clock.Advance(time.Minute)
	}
	mirror.Mirror.Wait()
	fetched := up.blobGets.Load()
	if fetched != 6 {
		t.Fatalf("three images fetched %d blobs upstream, want 6", fetched)
	}

	// Past the GC's grace, so that the links of what goes are pruned.
	clock.Advance(config.Default().GC.Grace + time.Minute)
	ctx := context.Background()
	rep, err := mirror.Mirror.Evict(ctx)
	must(t, err)
	if len(rep.Evicted) != 1 || rep.Evicted[0] != "library/b@"+want["library/b"].String() {
		t.Fatalf("evicted %v (usage %d, estimated %d), want library/b alone", rep.Evicted, rep.Usage, rep.Estimated)
	}
	// The GC reclaimed b's config; b's layer stays, as team/app links it.
	if rep.Collected.Blobs != 1 || rep.Collected.Links != 2 {
		t.Errorf("the collection after eviction removed %d blobs, want 1 (b's config) of 2 links: %+v", rep.Collected.Blobs, rep.Collected)
	}
	usage, err := mirror.Mirror.Usage(ctx)
	must(t, err)
	if usage > 250<<10 || usage == 0 {
		t.Errorf("after eviction and GC the mirror holds %d bytes, want at most 250KiB", usage)
	}
	if page := getBody(t, mirror.URL+"/mirror"); !strings.Contains(page, "of at most 256.00 kB") {
		t.Errorf("the mirror page does not show the size cap")
	}
	// Nothing more to do once under the cap.
	if again, err := mirror.Mirror.Evict(ctx); err != nil || len(again.Evicted) != 0 {
		t.Errorf("a second pass evicted %v, %v; want nothing", again.Evicted, err)
	}

	// a and c come from the cache; b is fetched again.
	pull("library/a")
	pull("library/c")
	if n := up.blobGets.Load(); n != fetched {
		t.Errorf("pulls of the kept images fetched %d blobs upstream, want none", n-fetched)
	}
	pull("library/b")
	mirror.Mirror.Wait()
	if n := up.blobGets.Load(); n != fetched+2 {
		t.Errorf("the pull of the evicted image fetched %d blobs upstream, want 2", n-fetched)
	}
	// The local image that shares b's layer is whole.
	if _, err := pullAll(t, mirror.Server, "team/app:v1"); err != nil {
		t.Errorf("the local image sharing an evicted layer: %v", err)
	}
}

func TestMirror_BadMaxSizeStopsTheServerStarting(t *testing.T) {
	cfg := config.Default()
	cfg.Auth.Mode = config.AuthNone
	cfg.DataDir = t.TempDir()
	cfg.Mirror.Upstreams = []config.Upstream{{Host: "docker.io", URL: "http://127.0.0.1:9", Namespaces: []string{"library"}}}
	cfg.Mirror.MaxSize = "lots"
	cfg.Resolve()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		srv.Close()
		t.Fatal("a server with mirror.max_size \"lots\" started")
	}
	if !strings.Contains(err.Error(), `mirror.max_size "lots"`) {
		t.Errorf("error = %v, want it to name mirror.max_size", err)
	}
}
