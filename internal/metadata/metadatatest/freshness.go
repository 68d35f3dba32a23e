package metadatatest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// tagResolver is the optional capability the registry's pull path uses
// when a store has it (a tag's digest without the manifest); stores
// without it are asked GetTaggedManifest.
type tagResolver interface {
	ResolveTag(ctx context.Context, repo, tag string) (digest.Digest, error)
}

// resolve answers what a manifest GET by tag asks the store.
func resolve(ctx context.Context, s metadata.Store, repo, tag string) (digest.Digest, error) {
	if r, ok := s.(tagResolver); ok {
		return r.ResolveTag(ctx, repo, tag)
	}
	m, err := s.GetTaggedManifest(ctx, repo, tag)
	if err != nil {
		return "", err
	}
	return m.Digest, nil
}

// testTagLookupsSeeEveryEarlierWrite holds the promise replicas rest on
// (a tag moved or deleted is seen by the very next request) while the
// tag is looked up without pause, as a pulled tag is: whatever a store
// keeps or shares between lookups, a lookup that begins after a write has
// returned sees that write or a later one. The writes move the tag,
// delete it, put it back and delete the repository.
func testTagLookupsSeeEveryEarlierWrite(t *testing.T, s metadata.Store) {
	const repo, tag, moves = "fresh/app", "latest", 50
	ctx := t.Context()
	ms := make([]*metadata.Manifest, moves)
	for i := range ms {
		ms[i] = newManifest(repo, fmt.Sprint("move ", i))
	}
	putManifest(t, s, ms[0], tag)

	// The states in the order they are written; step says which has
	// been written (its write returned), and a lookup begun at step i
	// must report state i or a later one.
	type state struct {
		digest digest.Digest // "" when the tag is gone
	}
	var states []state
	for _, m := range ms {
		states = append(states, state{m.Digest})
	}
	states = append(states, state{""}, state{ms[0].Digest}, state{""})
	var step atomic.Int64
	var stop atomic.Bool

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for !stop.Load() {
				begun := int(step.Load())
				d, err := resolve(ctx, s, repo, tag)
				if err != nil && !errors.Is(err, metadata.ErrNotFound) {
					t.Errorf("lookup %d: %v", g, err)
					return
				}
				ok := false
				for _, st := range states[begun:] {
					if st.digest == d {
						ok = true
						break
					}
				}
				if !ok {
					t.Errorf("lookup begun after write %d (tag at %q) saw %q, an earlier state", begun, states[begun].digest, d)
					return
				}
			}
		})
	}
	write := func(what string, err error) {
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("%s: %v", what, err)
		}
		step.Add(1)
	}
	for i := 1; i < moves; i++ {
		write("move the tag", s.PutManifest(ctx, ms[i], []string{tag}))
	}
	write("delete the tag", s.DeleteTag(ctx, repo, tag))
	write("tag again", s.PutManifest(ctx, ms[0], []string{tag}))
	write("delete the repository", s.DeleteRepository(ctx, repo))
	// A last round of lookups, each begun after every write.
	for range 16 {
		if d, err := resolve(ctx, s, repo, tag); !errors.Is(err, metadata.ErrNotFound) {
			t.Errorf("lookup after the repository was deleted = %q, %v; want ErrNotFound", d, err)
		}
	}
	stop.Store(true)
	wg.Wait()
}
