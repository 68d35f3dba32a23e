package s3

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestWrites_SurviveDirectoryRace runs many writers' put+delete cycles at
// once in one session's directory (uploads/<id>/: each writer stores its
// own tail, as writers racing for a session do, and cancels it), and
// start-up probes under .probe/, so that deletes keep emptying (and
// versitygw keeps removing) directories that other writes are putting
// into (versity/versitygw#1988). Every write must succeed.
func TestWrites_SurviveDirectoryRace(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	const writers, cycles, probers, probes = 4, 300, 4, 120
	var failed atomic.Int64
	var firstErr sync.Once
	fail := func(what string, err error) {
		failed.Add(1)
		firstErr.Do(func() { t.Errorf("%s: %v", what, err) })
	}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for c := range cycles {
				id := fmt.Sprintf("race-%d-%d", g, c)
				state, err := s.StartUpload(ctx, id)
				if err != nil {
					fail("StartUpload", err)
					continue
				}
				w, err := s.WriteUpload(ctx, id, 0, state)
				if err != nil {
					fail("WriteUpload", err)
					continue
				}
				if _, err := w.Write([]byte("tail bytes")); err != nil {
					fail("Write", err)
				}
				if err := w.Close(); err != nil {
					fail("Close (tail PUT)", err)
					continue
				}
				if err := s.CancelUpload(ctx, id, w.State()); err != nil {
					fail("CancelUpload", err)
				}
			}
		})
	}
	for range probers {
		wg.Go(func() {
			for range probes {
				if err := s.check(ctx); err != nil {
					fail("start-up probe", err)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d writes failed", n, writers*cycles+probers*probes)
	}
}
