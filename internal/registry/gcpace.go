package registry

import (
	"context"
	"sync/atomic"
	"time"
)

// A collection on a busy registry yields to the pushes it serves. Its
// costs fall on the same resources as theirs: removing files fills the
// filesystem's journal, which the pushes' next fsyncs must then write
// (with online discard, trim the freed blocks first), and its write
// transactions take SQLite's one writer. Measured on the bench's load, a
// push's blob commit took ten times as long while a collection removed
// files at full speed. So between its steps a collection looks whether
// pushes began or are under way in this process since the step began,
// and if so waits gcYieldFactor times as long as the step took: the
// pushes then get most of the disk, and the collection, which nobody
// waits for, takes longer. Alone, it never waits.

// gcYieldFactor is how many times a step's length a collection waits
// after it while pushes go on: the collection then has at most a fifth of
// the time.
const gcYieldFactor = 4

// gcMaxYield bounds one wait, so that a step slowed by something else (a
// stalled disk) does not stall the collection for as long again fourfold.
const gcMaxYield = time.Second

// pushActivity counts the writes a push makes (chunks, blob commits,
// manifests, deletes) in this process, for collections to yield to.
type pushActivity struct {
	started  atomic.Int64
	inFlight atomic.Int64
}

// begin records a write starting; the returned func records its end.
func (a *pushActivity) begin() func() {
	a.started.Add(1)
	a.inFlight.Add(1)
	return func() { a.inFlight.Add(-1) }
}

// gcPacer paces one collection's steps behind the pushes.
type gcPacer struct {
	pushes *pushActivity
	mark   int64
	began  time.Time

	yields  int
	yielded time.Duration
}

func (s *Service) newGCPacer() *gcPacer {
	p := &gcPacer{pushes: &s.pushes}
	p.restart()
	return p
}

func (p *gcPacer) restart() {
	p.mark, p.began = p.pushes.started.Load(), time.Now()
}

// step ends a step of the collection: if pushes began or were under way
// since it began, it waits in proportion to the step's length. The next
// step begins when it returns.
func (p *gcPacer) step(ctx context.Context) error {
	busy := p.pushes.inFlight.Load() > 0 || p.pushes.started.Load() != p.mark
	if busy {
		d := min(gcYieldFactor*time.Since(p.began), gcMaxYield)
		p.yields++
		p.yielded += d
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
	p.restart()
	return nil
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
