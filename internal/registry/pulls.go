package registry

import (
	"context"
	"sync"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// pullFlushDelay is how long pulls wait in memory before one batch write.
// A manifest GET must not cost a database write: SQLite has one writer
// and manifest GETs are the registry's hottest path.
const pullFlushDelay = 5 * time.Second

// pullCounter counts pulls by tag in memory and writes them in batches.
// Its zero value is ready; a timer armed by the first pull after a flush
// writes the batch, so nothing runs while nobody pulls.
type pullCounter struct {
	mu      sync.Mutex
	pending map[pullKey]*metadata.Pull
	armed   bool
}

type pullKey struct{ repo, tag string }

// recordPull counts one pull of repo:tag. Only pulls by tag count, as a
// "docker pull" fetches a tag once and then its platform by digest.
func (s *Service) recordPull(repo, tag string) {
	c := &s.pulls
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil {
		c.pending = map[pullKey]*metadata.Pull{}
	}
	k := pullKey{repo, tag}
	p := c.pending[k]
	if p == nil {
		p = &metadata.Pull{Repo: repo, Tag: tag}
		c.pending[k] = p
	}
	p.Count++
	p.At = time.Now()
	if !c.armed {
		c.armed = true
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

// FlushPulls writes the pulls counted in memory. The server calls it at
// shutdown; otherwise a timer does, a few seconds after a pull. Counts
// that fail to be written are dropped: they are statistics, not data.
func (s *Service) FlushPulls(ctx context.Context) error {
	c := &s.pulls
	c.mu.Lock()
	batch := make([]metadata.Pull, 0, len(c.pending))
	for _, p := range c.pending {
		batch = append(batch, *p)
	}
	c.pending, c.armed = nil, false
	c.mu.Unlock()
	return s.meta.AddPulls(ctx, batch)
}
