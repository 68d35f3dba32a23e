package registry

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// pullFlushDelay is how long pulls wait in memory before one batch write.
// A manifest GET must not cost a database write: SQLite has one writer
// and manifest GETs are the registry's hottest path.
const pullFlushDelay = 5 * time.Second

// pullCounter counts pulls by tag in memory and writes them in batches.
// Its zero value is ready. Counting takes no lock once a tag has an
// entry, so parallel GETs of one tag do not queue on a mutex; a timer
// armed by the first pull after a flush writes the batch, so nothing
// runs while nobody pulls.
type pullCounter struct {
	pending sync.Map // pullKey → *pullEntry
	armed   atomic.Bool
}

type pullKey struct{ repo, tag string }

type pullEntry struct {
	count atomic.Int64
	last  atomic.Int64 // unix nanoseconds
}

// recordPull counts one pull of repo:tag. Only pulls by tag count, as a
// "docker pull" fetches a tag once and then its platform by digest.
func (s *Service) recordPull(repo, tag string) {
	c := &s.pulls
	k := pullKey{repo, tag}
	v, ok := c.pending.Load(k)
	if !ok {
		v, _ = c.pending.LoadOrStore(k, &pullEntry{})
	}
	e := v.(*pullEntry)
	e.count.Add(1)
	e.last.Store(s.opts.Now().UnixNano())
	// Load first: a compare-and-swap takes the cache line for writing even
	// when it fails, and every pull on every core would then fight over it
	// while the timer is armed.
	if !c.armed.Load() && c.armed.CompareAndSwap(false, true) {
		time.AfterFunc(pullFlushDelay, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := s.FlushPulls(ctx); err != nil {
				// Info, not Warn: losing a few counts (at shutdown) is harmless.
				s.log.Info("pull counts not recorded", "err", err)
			}
		})
	}
}

// FlushPulls writes the pulls counted in memory. The server should call
// it at shutdown; otherwise a timer does, a few seconds after a pull.
// Counts that fail to be written are dropped, and so may be a pull counted
// in the instant its entry is flushed: they are statistics, and exact
// counts would cost every pull a lock.
func (s *Service) FlushPulls(ctx context.Context) error {
	c := &s.pulls
	c.armed.Store(false)
	var batch []metadata.Pull
	c.pending.Range(func(k, v any) bool {
		c.pending.Delete(k)
		e := v.(*pullEntry)
		key := k.(pullKey)
		if n := e.count.Swap(0); n > 0 {
			batch = append(batch, metadata.Pull{Repo: key.repo, Tag: key.tag, Count: n, At: time.Unix(0, e.last.Load()).UTC()})
		}
		return true
	})
	return s.meta.AddPulls(ctx, batch)
}
