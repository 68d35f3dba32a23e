package client

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/client/store"
	"github.com/wharf/wharf/internal/registrytest"
)

// TestPushPull_QuietPrintsOnlyTheReference: -q, and the default tag, as
// docker prints them.
func TestPushPull_QuietPrintsOnlyTheReference(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	localImage(t, st, testImage(t, "quiet", 2), host+"/team/app:latest")

	var out bytes.Buffer
	if err := Push(ctx, st, host+"/team/app", PushOptions{Remote: r, Quiet: true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != host+"/team/app:latest\n" {
		t.Errorf("push -q printed %q", out.String())
	}
	out.Reset()
	if err := Pull(ctx, newStore(t), host+"/team/app", PullOptions{Remote: r, Quiet: true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != host+"/team/app:latest\n" {
		t.Errorf("pull -q printed %q", out.String())
	}
	out.Reset()
	if err := Pull(ctx, newStore(t), host+"/team/app", PullOptions{Remote: r}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "Using default tag: latest\nlatest: Pulling from team/app\n") {
		t.Errorf("pull without a tag printed:\n%s", out.String())
	}
}

// TestPull_PlatformOfASinglePlatformImage: docker pulls a single-platform
// image whatever --platform says, and warns when it does not match.
func TestPull_PlatformOfASinglePlatformImage(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	r := testRemote(t)
	st := newStore(t)
	localImage(t, st, testImage(t, "single", 1), host+"/team/single:1")
	if err := Push(ctx, st, host+"/team/single:1", PushOptions{Remote: r}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	hostP := store.HostPlatform()
	other := "linux/s390x"
	if hostP.Architecture == "s390x" {
		other = "linux/amd64"
	}
	for _, tc := range []struct {
		platform string
		warn     bool
	}{{hostP.String(), false}, {other, true}} {
		var out bytes.Buffer
		if err := Pull(ctx, newStore(t), host+"/team/single:1", PullOptions{Remote: r, Platform: tc.platform}, &out); err != nil {
			t.Fatalf("pull --platform %s: %v", tc.platform, err)
		}
		want := "WARNING: image with reference " + host + "/team/single was found but does not match the specified platform: wanted " +
			tc.platform + ", actual: " + hostP.String() + "\n"
		if got := strings.Contains(out.String(), want); got != tc.warn {
			t.Errorf("pull --platform %s: warning shown = %v, want %v:\n%s", tc.platform, got, tc.warn, out.String())
		}
	}
}
