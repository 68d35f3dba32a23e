package client

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
