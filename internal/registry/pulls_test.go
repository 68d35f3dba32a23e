package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/wharf/wharf/internal/metadata"
)

// pullStore records AddPulls; the other methods are not called.
type pullStore struct {
	metadata.Store
	mu      sync.Mutex
	batches [][]metadata.Pull
}

func (p *pullStore) AddPulls(_ context.Context, pulls []metadata.Pull) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, pulls)
	return nil
}

func TestFlushPulls_WritesOneBatchOfSums(t *testing.T) {
	store := &pullStore{}
	s := New(store, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				s.recordPull("a/b", fmt.Sprint("v", (g+i)%2))
			}
		})
	}
	wg.Wait()
	if err := s.FlushPulls(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(store.batches) != 1 {
		t.Fatalf("%d batches, want 1", len(store.batches))
	}
	total := map[string]int64{}
	for _, p := range store.batches[0] {
		if p.Repo != "a/b" || p.At.IsZero() {
			t.Errorf("pull = %+v", p)
		}
		total[p.Tag] += p.Count
	}
	if total["v0"] != 400 || total["v1"] != 400 {
		t.Errorf("counts = %v, want 400 each", total)
	}
	// A second flush has nothing new to write.
	if err := s.FlushPulls(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(store.batches[1]); n != 0 {
		t.Errorf("second flush wrote %d pulls, want none", n)
	}
}
