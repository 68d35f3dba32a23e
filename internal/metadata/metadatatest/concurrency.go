package metadatatest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// race runs fn(i) for i in [0, n) in n goroutines released together and
// returns their errors, indexed by i.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func wantNoErrors(t *testing.T, call string, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s in goroutine %d: %v", call, i, err)
		}
	}
}

func testConcurrentPutSameTag(t *testing.T, s metadata.Store) {
	const n = 16
	ms := make([]*metadata.Manifest, n)
	for i := range ms {
		ms[i] = newManifest("race/repo", fmt.Sprint("m", i))
	}
	errs := race(n, func(i int) error {
		return s.PutManifest(t.Context(), ms[i], []string{"latest", fmt.Sprint("v", i)})
	})
	wantNoErrors(t, "PutManifest", errs)

	// Every manifest is stored, "latest" points at one of them, and each
	// goroutine's own tag at its manifest.
	winner, err := s.GetTaggedManifest(t.Context(), "race/repo", "latest")
	if err != nil {
		t.Fatalf("GetTaggedManifest(latest): %v", err)
	}
	found := false
	for i, m := range ms {
		wantGetManifest(t, s, m)
		wantTagged(t, s, fmt.Sprint("v", i), m)
		if winner.Digest == m.Digest {
			wantManifest(t, "GetTaggedManifest(latest)", winner, m)
			found = true
		}
	}
	if !found {
		t.Errorf("latest points at %s, which no goroutine pushed", winner.Digest)
	}
	tags, err := s.ListTags(t.Context(), "race/repo", "", 0)
	if err != nil || len(tags) != n+1 {
		t.Errorf("ListTags = %q, %v; want %d tags", tags, err, n+1)
	}
	wantRepos(t, s, "race/repo")
}

func testConcurrentPutSameManifest(t *testing.T, s metadata.Store) {
	const n = 16
	m := newManifest("race/repo", "same")
	m.Subject = digest.FromString("subject")
	m.ArtifactType = typeSig
	errs := race(n, func(i int) error {
		return s.PutManifest(t.Context(), m, []string{"latest"})
	})
	wantNoErrors(t, "PutManifest", errs)
	wantTagged(t, s, "latest", m)
	wantTags(t, s, "race/repo", "latest")
	wantRepos(t, s, "race/repo")
	// Stored once, so listed once.
	wantReferrers(t, s, "race/repo", m.Subject, "", m)
}

func testConcurrentLinkBlob(t *testing.T, s metadata.Store) {
	const n = 16
	d := blobDigest("racy")
	repos := []string{"race/a", "race/b"}
	errs := race(n, func(i int) error {
		return s.LinkBlob(t.Context(), repos[i%len(repos)], d, 512)
	})
	wantNoErrors(t, "LinkBlob", errs)
	for _, repo := range repos {
		wantBlobSize(t, s, repo, d, 512)
	}
	wantRepos(t, s, repos...)
	st, err := s.Stats(t.Context())
	if err != nil || st != (metadata.Stats{Blobs: 1, Bytes: 512}) {
		t.Errorf("Stats = %+v, %v; want {Blobs:1 Bytes:512}, nil", st, err)
	}
	// One link per repository: one unlink each removes it.
	for _, repo := range repos {
		if err := s.UnlinkBlob(t.Context(), repo, d); err != nil {
			t.Errorf("UnlinkBlob(%s): %v", repo, err)
		}
		wantNoBlob(t, s, repo, d)
	}
}

func testConcurrentAdvanceUpload(t *testing.T, s metadata.Store) {
	const n = 8
	u := newUpload(t, "race/repo")
	createUpload(t, s, u)
	// Each goroutine writes a chunk of a different length from offset 0.
	next := make([]*metadata.Upload, n)
	for i := range next {
		next[i] = advance(t, u, int64(100+i), timeAt(time.Duration(i)*time.Millisecond))
	}
	errs := race(n, func(i int) error {
		return s.AdvanceUpload(t.Context(), next[i], 0)
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("goroutines %d and %d both advanced from offset 0", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, metadata.ErrConflict):
			t.Errorf("AdvanceUpload in goroutine %d error = %v; want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no goroutine advanced the upload; errors: %v", errs)
	}
	wantUpload(t, s, next[winner])
}

func testCancelledContext(t *testing.T, s metadata.Store) {
	m := newManifest("repo", "m")
	putManifest(t, s, m, "latest")
	u := newUpload(t, "repo")
	createUpload(t, s, u)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"RepositoryExists", func() error { _, err := s.RepositoryExists(ctx, "repo"); return err }},
		{"ListRepositories", func() error { _, err := s.ListRepositories(ctx, "", 0); return err }},
		{"LinkBlob", func() error { return s.LinkBlob(ctx, "repo", blobDigest("x"), 1) }},
		{"BlobSize", func() error { _, err := s.BlobSize(ctx, "repo", blobDigest("x")); return err }},
		{"PutManifest", func() error { return s.PutManifest(ctx, newManifest("repo", "n"), []string{"latest"}) }},
		{"GetTaggedManifest", func() error { _, err := s.GetTaggedManifest(ctx, "repo", "latest"); return err }},
		{"DeleteManifest", func() error { return s.DeleteManifest(ctx, "repo", m.Digest) }},
		{"ListTags", func() error { _, err := s.ListTags(ctx, "repo", "", 0); return err }},
		{"Referrers", func() error { _, err := s.Referrers(ctx, "repo", m.Digest, ""); return err }},
		{"CreateUpload", func() error { return s.CreateUpload(ctx, newUpload(t, "repo")) }},
		{"AdvanceUpload", func() error { return s.AdvanceUpload(ctx, advance(t, u, 1, timeAt(0)), 0) }},
		{"Stats", func() error { _, err := s.Stats(ctx); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range calls {
		wantErr(t, c.name+" with a cancelled context", c.call(), context.Canceled)
	}
	// Nothing was written.
	wantTagged(t, s, "latest", m)
	wantUpload(t, s, u)
	wantNoBlob(t, s, "repo", blobDigest("x"))
}

func testPing(t *testing.T, s metadata.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
