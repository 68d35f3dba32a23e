package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/blobstore/fs"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// imageManifest is a distinct image manifest for seed. Its blobs are
// never pushed: the services here accept sparse manifests.
func imageManifest(seed string) []byte {
	return fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":3}]}`,
		ociManifest, digest.FromString(seed+" config"), digest.FromString(seed+" layer"))
}

func floatingService(t testing.TB, db *sqldb.DB) *registry.Service {
	t.Helper()
	blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := registry.New(db, blobs, slog.New(slog.DiscardHandler), registry.Options{SparseManifests: true})
	if err := svc.Policies().Set(registry.WithActor(context.Background(), "admin"), "team/*", map[string]string{registry.KeyFloatingTags: "semver"}); err != nil {
		t.Fatal(err)
	}
	return svc
}

type tagStory struct {
	t   *testing.T
	svc *registry.Service
	ctx context.Context
	// pushed maps a version to the digest of its manifest.
	pushed map[string]digest.Digest
}

func (s *tagStory) push(repo, tag, seed string) error {
	s.t.Helper()
	res, err := s.svc.PutManifest(s.ctx, repo, tag, ociManifest, imageManifest(seed), nil)
	if err == nil {
		s.pushed[tag] = res.Digest
	}
	return err
}

// want checks where tags point: a version names its manifest, "" no tag.
func (s *tagStory) want(step, repo string, want map[string]string) {
	s.t.Helper()
	for tag, version := range want {
		got, err := s.svc.TagTarget(s.ctx, repo, tag)
		switch {
		case version == "" && !errors.Is(err, registry.ErrManifestUnknown):
			s.t.Errorf("%s: %s → %s (%v), want no such tag", step, tag, got, err)
		case version != "" && (err != nil || got != s.pushed[version]):
			s.t.Errorf("%s: %s → %s (%v), want %s's %s", step, tag, got, err, version, s.pushed[version])
		}
	}
}

// TestFloatingTags_TheChaptersStory runs the book's tag story through the
// registry service on SQLite and PostgreSQL.
func TestFloatingTags_TheChaptersStory(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, db, _ *sqldb.DB) {
		s := &tagStory{t: t, svc: floatingService(t, db), ctx: registry.WithActor(t.Context(), "alice"), pushed: map[string]digest.Digest{}}
		const repo = "team/app"
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.push(repo, "2.1.106", "a"))
		s.want("2.1.106", repo, map[string]string{"2.1": "2.1.106", "2": "2.1.106", "latest": "2.1.106"})
		must(s.push(repo, "2.1.107", "b"))
		s.want("2.1.107", repo, map[string]string{"2.1": "2.1.107", "2": "2.1.107", "latest": "2.1.107"})
		must(s.push(repo, "3.0.0-rc.1", "rc"))
		s.want("3.0.0-rc.1", repo, map[string]string{"latest": "2.1.107", "3": "", "3.0": ""})
		must(s.push(repo, "3.0.0", "c"))
		s.want("3.0.0", repo, map[string]string{"latest": "3.0.0", "3": "3.0.0", "3.0": "3.0.0", "2": "2.1.107", "2.1": "2.1.107"})
		must(s.push(repo, "2.1.105", "old"))
		s.want("late 2.1.105", repo, map[string]string{"latest": "3.0.0", "2": "2.1.107", "2.1": "2.1.107", "2.1.105": "2.1.105"})

		// The registry moved latest, for alice.
		tag, err := s.svc.TagDetail(s.ctx, repo, "latest")
		if err != nil || tag.PushedBy != "wharf (for alice)" {
			t.Errorf("latest pushed by %q (%v), want wharf (for alice)", tag.PushedBy, err)
		}
		if tag, _ := s.svc.TagDetail(s.ctx, repo, "3.0.0"); tag.PushedBy != "alice" {
			t.Errorf("3.0.0 pushed by %q, want alice", tag.PushedBy)
		}

		// The same 2.1.106 again is fine; a different one is refused.
		must(s.push(repo, "2.1.106", "a"))
		err = s.push(repo, "2.1.106", "different")
		var de *registry.Error
		if !errors.Is(err, registry.ErrDenied) || !errors.As(err, &de) ||
			!strings.Contains(de.Message, "versions are immutable under the floating-tags=semver policy on team/*") {
			t.Errorf("a different 2.1.106 = %v, want DENIED naming the policy", err)
		}
		s.want("after the refusal", repo, map[string]string{"2.1.106": "2.1.106"})

		must(s.svc.DeleteManifest(s.ctx, repo, s.pushed["3.0.0"].String()))
		s.want("3.0.0 deleted", repo, map[string]string{"latest": "2.1.107", "3": "", "3.0": "", "2": "2.1.107", "3.0.0-rc.1": "3.0.0-rc.1"})
		must(s.svc.DeleteManifest(s.ctx, repo, "2.1.107"))
		s.want("tag 2.1.107 deleted", repo, map[string]string{"latest": "2.1.106", "2": "2.1.106", "2.1": "2.1.106"})
	})
}

// Without the policy nothing floats and versions move freely.
func TestFloatingTags_OffWithoutThePolicy(t *testing.T) {
	db := openSQLitePolicies(t)
	s := &tagStory{t: t, svc: floatingService(t, db), ctx: t.Context(), pushed: map[string]digest.Digest{}}
	if err := s.push("other/app", "1.0.0", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.push("other/app", "1.0.0", "b"); err != nil {
		t.Errorf("re-pushing 1.0.0 without the policy: %v", err)
	}
	s.want("no policy", "other/app", map[string]string{"latest": "", "1.0": "", "1": ""})
}

// Versions pushed at once end with each floating tag on the highest.
func TestFloatingTags_ConcurrentPushesEndOnTheHighest(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a, b *sqldb.DB) {
		// Two replicas on one database.
		svcs := []*registry.Service{floatingService(t, a), floatingService(t, b)}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		digests := make([]digest.Digest, n)
		for i := range n {
			wg.Go(func() {
				res, err := svcs[i%2].PutManifest(t.Context(), "team/race", fmt.Sprintf("1.%d.0", i), ociManifest, imageManifest(fmt.Sprint(i)), nil)
				errs[i] = err
				if err == nil {
					digests[i] = res.Digest
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("push 1.%d.0: %v", i, err)
			}
		}
		for _, tag := range []string{"latest", "1"} {
			if got, err := svcs[0].TagTarget(t.Context(), "team/race", tag); err != nil || got != digests[n-1] {
				t.Errorf("%s → %s (%v), want 1.%d.0's %s", tag, got, err, n-1, digests[n-1])
			}
		}
	})
}

// A refused version is 403 DENIED on the wire, with the rule's message.
func TestFloatingTags_RefusalIsDenied(t *testing.T) {
	h := distribution.New(floatingService(t, openSQLitePolicies(t)), slog.New(slog.DiscardHandler))
	put := func(seed string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPut, "/v2/team/app/manifests/v1.0.0", strings.NewReader(string(imageManifest(seed))))
		req.Header.Set("Content-Type", ociManifest)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := put("a"); rec.Code != http.StatusCreated {
		t.Fatalf("first push = %d %s", rec.Code, rec.Body)
	}
	if rec := put("a"); rec.Code != http.StatusCreated {
		t.Errorf("identical re-push = %d %s", rec.Code, rec.Body)
	}
	rec := put("b")
	var body struct {
		Errors []struct{ Code, Message string }
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusForbidden || len(body.Errors) != 1 || body.Errors[0].Code != "DENIED" ||
		!strings.Contains(body.Errors[0].Message, "tag v1.0.0 of team/app is a version") {
		t.Errorf("different re-push = %d %s, want 403 DENIED naming the tag", rec.Code, rec.Body)
	}
}
