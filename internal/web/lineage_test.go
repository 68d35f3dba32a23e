package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/server"
)

// setPolicy sets a policy as `wharf policy set` does: offline, on the
// server's database, which the server notices by its version counter.
func setPolicy(t *testing.T, srv *registrytest.Server, pattern, key, value string) {
	t.Helper()
	p, err := server.OpenPolicies(context.Background(), srv.Config, slog.New(slog.DiscardHandler))
	must(t, err)
	defer p.Close()
	must(t, p.Set(registry.WithActor(context.Background(), "admin"), pattern, map[string]string{key: value}))
}

// derivedFrom is base with one more random layer, as a Dockerfile FROM
// base with a COPY makes it.
func derivedFrom(t *testing.T, base v1.Image) v1.Image {
	t.Helper()
	l, err := random.Layer(128, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	must(t, err)
	img, err := mutate.AppendLayers(base, l)
	must(t, err)
	return img
}

// goldenWorld has golden/base:1.0 (tagged 1 too, public) with alice's
// private alice/app:v1 and bob's public bob/web:v1 built on it.
func goldenWorld(t *testing.T) (*registrytest.Server, v1.Image) {
	t.Helper()
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	seedAccounts(t, srv)
	setPolicy(t, srv, "golden/*", registry.KeyGolden, "true")
	ctx := context.Background()
	admin := remoteOpts("admin", adminPassword)
	base, err := random.Image(256, 1)
	must(t, err)
	push(t, srv, "golden/base:1.0", base, admin...)
	push(t, srv, "golden/base:1", base, admin...)
	must(t, srv.Auth.SetVisibility(ctx, "golden/base", auth.Public))
	push(t, srv, "alice/app:v1", derivedFrom(t, base), remoteOpts("alice", userPassword)...)
	must(t, srv.Auth.SetVisibility(ctx, "alice/app", auth.Private))
	push(t, srv, "bob/web:v1", derivedFrom(t, base), remoteOpts("bob", userPassword)...)
	must(t, srv.Auth.SetVisibility(ctx, "bob/web", auth.Public))
	return srv, base
}

type derivedPage struct {
	Count   int
	Results []struct {
		Repository, Tag string
		Base            struct {
			Name, Tag, Reason string
			Outdated          bool
		}
	}
}

func TestHubAPI_TagBaseAndDerived(t *testing.T) {
	srv, _ := goldenWorld(t)
	b := newBrowser(t, srv)
	alice := basic("alice", userPassword)

	var base struct {
		Name, Digest, Tag, Reason, Source string
		Outdated                          bool
		Newer                             *struct{ Tag, Digest string }
	}
	if code := b.getJSON("/v2/namespaces/alice/repositories/app/tags/v1/base", alice, &base); code != http.StatusOK {
		t.Fatalf("GET base = %d", code)
	}
	if base.Name != "golden/base" || base.Tag != "1.0" || base.Source != "layers" || base.Outdated || base.Newer != nil {
		t.Errorf("base of alice/app:v1 = %+v; want golden/base:1.0 by layers, current", base)
	}
	if code := b.getJSON("/v2/namespaces/alice/repositories/app/tags/v1/base", nil, &base); code != http.StatusNotFound {
		t.Errorf("anonymous GET base of a private repository = %d; want 404", code)
	}
	if code := b.getJSON("/v2/namespaces/golden/repositories/base/tags/1.0/base", nil, &base); code != http.StatusNotFound {
		t.Errorf("GET base of a base-less image = %d; want 404", code)
	}

	// Who sees what: anonymous only the public derived repository.
	for _, tc := range []struct {
		who    string
		header map[string]string
		want   int
	}{{"anonymous", nil, 1}, {"alice", alice, 2}, {"admin", basic("admin", adminPassword), 2}} {
		var page derivedPage
		if code := b.getJSON("/v2/namespaces/golden/repositories/base/derived", tc.header, &page); code != http.StatusOK || page.Count != tc.want {
			t.Errorf("%s: derived = %d, count %d; want 200, %d", tc.who, code, page.Count, tc.want)
		}
	}

	// golden/base:1.1 moves 1: both apps are outdated at once.
	base11, err := random.Image(256, 1)
	must(t, err)
	admin := remoteOpts("admin", adminPassword)
	push(t, srv, "golden/base:1.1", base11, admin...)
	push(t, srv, "golden/base:1", base11, admin...)
	var page derivedPage
	if code := b.getJSON("/v2/namespaces/golden/repositories/base/derived?page_size=1&page=2", alice, &page); code != http.StatusOK {
		t.Fatalf("derived page 2 = %d", code)
	}
	if page.Count != 2 || len(page.Results) != 1 || page.Results[0].Repository != "bob/web" || !page.Results[0].Base.Outdated ||
		!strings.Contains(page.Results[0].Base.Reason, "now points to 1.1") {
		t.Errorf("derived page 2 of 1 = %+v; want bob/web:v1, outdated by 1.1", page)
	}
	b.getJSON("/v2/namespaces/alice/repositories/app/tags/v1/base", alice, &base)
	if !base.Outdated || base.Newer == nil || base.Newer.Tag != "1.1" {
		t.Errorf("after 1 moved, base = %+v; want outdated, newer 1.1", base)
	}
	for tag, want := range map[string]int{"1.0": 2, "1.1": 0} {
		b.getJSON("/v2/namespaces/golden/repositories/base/derived?tag="+tag, alice, &page)
		if page.Count != want {
			t.Errorf("derived?tag=%s count = %d; want %d", tag, page.Count, want)
		}
	}
	if code := b.getJSON("/v2/namespaces/golden/repositories/none/derived", alice, &page); code != http.StatusNotFound {
		t.Errorf("derived of a missing repository = %d; want 404", code)
	}
	if code := b.getJSON("/v2/namespaces/golden/repositories/base/derived?tag=9.9", alice, &page); code != http.StatusNotFound {
		t.Errorf("derived?tag= of a missing tag = %d; want 404", code)
	}
}

func TestPages_UsedByBaseImageAndOutdatedFilter(t *testing.T) {
	srv, _ := goldenWorld(t)
	base11, err := random.Image(256, 1)
	must(t, err)
	push(t, srv, "golden/base:1.1", base11, remoteOpts("admin", adminPassword)...)
	push(t, srv, "golden/base:1", base11, remoteOpts("admin", adminPassword)...)

	anon := newBrowser(t, srv)
	b := newBrowser(t, srv)
	b.signIn("alice", userPassword)

	golden := text(b.get("/r/golden/base").body)
	wantContains(t, "golden/base as alice", golden, "Used by (2)", "alice/app:v1", "bob/web:v1", "golden/base:1.0", "outdated", "1 now points to 1.1")
	wantLacks(t, "golden/base anonymous", text(anon.get("/r/golden/base").body), "alice/app")

	app := text(b.get("/r/alice/app/tags/v1").body)
	wantContains(t, "alice/app:v1", app, "Base image", "golden/base:1.0", "outdated", "its layers")
	wantLacks(t, "golden/base:1.1", text(b.get("/r/golden/base/tags/1.1").body), "Base image")

	wantContains(t, "explore outdated as alice", text(b.get("/?outdated=1").body), "Images with outdated bases", "alice/app:v1", "bob/web:v1")
	out := text(anon.get("/?outdated=1").body)
	wantContains(t, "explore outdated anonymous", out, "bob/web:v1")
	wantLacks(t, "explore outdated anonymous", out, "alice/app")
}
