package authtest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wharf/wharf/internal/auth"
)

// testVisibilityLookupsSeeEveryEarlierWrite holds what the pull gate
// needs when several replicas share the store: a repository made private
// on one replica is private to the very next request on any other, while
// its visibility is looked up without pause. Whatever a store keeps or
// shares between lookups, a lookup that begins after a write has returned
// sees that write or a later one. Each repository is made public, then
// private, and lookups ask about the one written last.
func testVisibilityLookupsSeeEveryEarlierWrite(t *testing.T, s auth.Store) {
	const repos = 25
	ctx := t.Context()
	repo := func(i int64) string { return fmt.Sprintf("alice/app%02d", i) }
	// step is 2i+1 once repository i was made public, 2i+2 once private.
	var step atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				st := step.Load()
				if st == 0 {
					continue
				}
				i := (st - 1) / 2
				got, err := s.GetVisibility(ctx, repo(i))
				if err != nil {
					t.Errorf("GetVisibility(%s) begun after step %d: %v", repo(i), st, err)
					return
				}
				if st%2 == 0 && got != auth.Private {
					t.Errorf("GetVisibility(%s) begun after it was made private = %q", repo(i), got)
					return
				}
			}
		})
	}
	for i := range int64(repos) {
		for _, v := range []auth.Visibility{auth.Public, auth.Private} {
			if err := s.SetVisibility(ctx, repo(i), v); err != nil {
				stop.Store(true)
				wg.Wait()
				t.Fatal(err)
			}
			step.Add(1)
		}
	}
	stop.Store(true)
	wg.Wait()
}
