package proxy_test

import (
	"testing"

	"github.com/wharf/wharf/internal/proxy"
)

func TestMirrored_MapsNamesToUpstreams(t *testing.T) {
	hub := &proxy.Source{Host: "docker.io", Namespaces: []string{"library", "bitnami"}}
	ghcr := &proxy.Source{Host: "ghcr.io", Prefix: "ghcr"}
	m := proxy.New(nil, []*proxy.Source{hub, ghcr}, proxy.Options{})
	for _, tc := range []struct {
		name, ns      string
		want          *proxy.Source
		local, remote string
	}{
		{"library/busybox", "", hub, "library/busybox", "library/busybox"},
		{"busybox", "", hub, "library/busybox", "library/busybox"},
		{"bitnami/redis", "", hub, "bitnami/redis", "bitnami/redis"},
		{"ghcr/owner/tool", "", ghcr, "ghcr/owner/tool", "owner/tool"},
		{"owner/tool", "ghcr.io", ghcr, "ghcr/owner/tool", "owner/tool"},
		{"library/busybox", "docker.io", hub, "library/busybox", "library/busybox"},
		{"team/app", "", nil, "", ""},
		// Every one-component name is Docker Hub's once library is mirrored.
		{"ghcr", "", hub, "library/ghcr", "library/ghcr"},
		{"team/app", "docker.io", nil, "", ""},
		{"team/app", "registry.local:5000", nil, "", ""},
		{"", "", nil, "", ""},
	} {
		var got proxy.Target
		var ok bool
		if tc.ns != "" {
			got, ok = m.ForNamespace(tc.ns, tc.name)
		} else {
			got, ok = m.Mirrored(tc.name)
		}
		if ok != (tc.want != nil) || got.Source != tc.want || got.Local != tc.local || got.Remote != tc.remote {
			t.Errorf("%q ns=%q = %+v %v, want %v %q %q", tc.name, tc.ns, got, ok, tc.want, tc.local, tc.remote)
		}
	}
}
