package client

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/registrytest"
)

// TestPush_SemverMovesTheFloatingTagsOnAnyRegistry: against a registry
// without the policy, `push --semver` pushes the floating tags the rules
// call for, printing docker's line for each, and leaves the others.
func TestPush_SemverMovesTheFloatingTagsOnAnyRegistry(t *testing.T) {
	srv := registrytest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := t.Context()
	r := testRemote(t)
	st := newStore(t)
	repo := host + "/gallery/app"
	digests := map[string]v1.Hash{}
	push := func(version, seed string) string {
		t.Helper()
		digests[version] = localImage(t, st, testImage(t, seed, 1), repo+":"+version)
		var out bytes.Buffer
		if err := Push(ctx, st, repo+":"+version, PushOptions{Remote: r, Semver: true}, &out); err != nil {
			t.Fatalf("push --semver %s: %v\n%s", version, err, out.String())
		}
		return out.String()
	}
	want := func(step string, tags map[string]string) {
		t.Helper()
		for tag, version := range tags {
			nr, err := name.ParseReference(repo+":"+tag, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(nr)
			switch {
			case version == "" && err == nil:
				t.Errorf("%s: %s exists (%s), want none", step, tag, desc.Digest)
			case version != "" && (err != nil || desc.Digest != digests[version]):
				t.Errorf("%s: %s → %v (%v), want %s", step, tag, desc, err, version)
			}
		}
	}
	pushedLine := func(tag string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tag) + `: digest: sha256:[0-9a-f]{64} size: \d+$`)
	}

	out := push("2.1.106", "a")
	for _, tag := range []string{"2.1.106", "2.1", "2", "latest"} {
		if !pushedLine(tag).MatchString(out) {
			t.Errorf("push --semver 2.1.106 printed no line for %s:\n%s", tag, out)
		}
	}
	want("2.1.106", map[string]string{"2.1": "2.1.106", "2": "2.1.106", "latest": "2.1.106"})
	push("2.1.107", "b")
	want("2.1.107", map[string]string{"2.1": "2.1.107", "2": "2.1.107", "latest": "2.1.107"})
	out = push("3.0.0-rc.1", "rc")
	if pushedLine("latest").MatchString(out) {
		t.Errorf("a pre-release pushed latest:\n%s", out)
	}
	want("3.0.0-rc.1", map[string]string{"latest": "2.1.107", "3": "", "3.0": ""})
	push("3.0.0", "c")
	want("3.0.0", map[string]string{"latest": "3.0.0", "3": "3.0.0", "3.0": "3.0.0", "2": "2.1.107"})
	out = push("2.1.105", "old")
	if n := strings.Count(out, ": digest: "); n != 1 {
		t.Errorf("a late 2.1.105 pushed %d tags, want itself only:\n%s", n, out)
	}
	want("late 2.1.105", map[string]string{"latest": "3.0.0", "2": "2.1.107", "2.1": "2.1.107"})
}

func TestPush_SemverRefusesWhatIsNoVersion(t *testing.T) {
	st := newStore(t)
	for ref, want := range map[string]string{
		"registry.example/app:main": `tag "main" is not a version`,
		"registry.example/app:2.1":  `tag "2.1" is not a version`,
		"registry.example/app":      "--semver needs the version as the tag",
	} {
		err := Push(t.Context(), st, ref, PushOptions{Remote: testRemote(t), Semver: true}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("push --semver %s = %v, want %q", ref, err, want)
		}
	}
	err := Push(t.Context(), st, "registry.example/app", PushOptions{Remote: testRemote(t), Semver: true, AllTags: true}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--all-tags") {
		t.Errorf("push --semver --all-tags = %v", err)
	}
}
