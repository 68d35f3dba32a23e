package registry

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// UploadLeaseTTL is how long a writer's claim on an upload session lasts
// unless renewed; the writer renews it every third of that while it
// streams. Long enough that a live writer renewing through a slow
// database round trip or a garbage-collection pause keeps it, short
// enough that a session whose replica died mid-chunk can be resumed
// elsewhere soon: clients retry within seconds to a minute, and until the
// claim lapses the retry is refused with 416 and the recorded offset.
const UploadLeaseTTL = 30 * time.Second

// errLeaseLost is a write that stopped because another writer took the
// session after this one's claim lapsed (or the session was deleted).
var errLeaseLost = errors.New("upload session claimed by another writer")

// uploadLease is a writer's claim on one upload session (see
// metadata.UploadLeaser). A nil *uploadLease is no claim, for stores that
// only this process writes, and all its methods do nothing.
type uploadLease struct {
	s      *Service
	leaser metadata.UploadLeaser
	// u is the session as the request sees it, for its offset when
	// claiming; repo, id and token are copied out of it, as keepAlive
	// reads them while the request changes u.
	u               *metadata.Upload
	repo, id, token string

	mu      sync.Mutex // renewals come from the reading and writing goroutines
	renewAt time.Time
	lost    error
}

// claimUpload claims session u for this request, before any of its bytes
// are written, when other processes may write the store's sessions. A
// claim that fails because another writer holds the session or its
// offset moved is ErrRangeInvalid with the session's current offset.
func (s *Service) claimUpload(ctx context.Context, u *metadata.Upload) (*uploadLease, error) {
	l, ok := s.meta.(metadata.UploadLeaser)
	if !ok || !l.SharedUploads() {
		// Only this process writes: lockUpload's in-process lock already
		// serialises the session's writers, at no database write.
		return nil, nil
	}
	lease := &uploadLease{s: s, leaser: l, u: u, repo: u.Repo, id: u.ID, token: uuid.NewString()}
	if err := lease.claim(ctx); err != nil {
		return nil, err
	}
	u.Writer = lease.token
	return lease, nil
}

// claim claims the session at the offset of u.
func (l *uploadLease) claim(ctx context.Context) error {
	now := l.s.opts.Now()
	err := l.leaser.ClaimUpload(ctx, l.repo, l.id, l.u.Offset, l.token, now, now.Add(UploadLeaseTTL))
	switch {
	case errors.Is(err, metadata.ErrConflict):
		return l.s.writtenElsewhere(ctx, l.u)
	case errors.Is(err, metadata.ErrNotFound):
		return uploadUnknown(l.u.ID)
	case err != nil:
		return err
	}
	l.mu.Lock()
	l.renewAt = now.Add(UploadLeaseTTL / 3)
	l.lost = nil // a renewal between the advance and this claim found none
	l.mu.Unlock()
	return nil
}

// reclaim claims the session again, at its new offset, after an advance
// that had to be recorded before the request's work was done ended the
// claim.
func (l *uploadLease) reclaim(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.claim(ctx)
}

// keep renews the claim once a third of it has passed, and reports
// errLeaseLost once another writer has taken the session: from then on
// this writer must store nothing more. Reads and writes of the body call
// it, so a writer keeps its claim while its body arrives, however slowly;
// one whose client sends nothing for the claim's length loses it to any
// other writer that asks.
func (l *uploadLease) keep(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	now := l.s.opts.Now()
	if now.Before(l.renewAt) {
		return nil
	}
	err := l.leaser.RenewUpload(ctx, l.repo, l.id, l.token, now.Add(UploadLeaseTTL))
	if errors.Is(err, metadata.ErrConflict) || errors.Is(err, metadata.ErrNotFound) {
		l.lost = errLeaseLost
		return l.lost
	}
	if err != nil {
		return err
	}
	l.renewAt = now.Add(UploadLeaseTTL / 3)
	return nil
}

// err is errLeaseLost once keep has found the claim taken.
func (l *uploadLease) err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// keepAlive renews the claim, every third of its length, until stop is
// called: for work that neither reads nor writes the body, so that keep
// is not called, but may outlast the claim (a commit that copies a large
// blob in the bucket).
func (l *uploadLease) keepAlive(ctx context.Context) (stop func()) {
	if l == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(UploadLeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if l.keep(ctx) != nil {
					return
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// release ends the claim after a failure, so that a retry need not wait
// for it to lapse. It is best effort: a claim not released lapses.
func (l *uploadLease) release(ctx context.Context) {
	if l == nil {
		return
	}
	if err := l.leaser.ReleaseUpload(context.WithoutCancel(ctx), l.repo, l.id, l.token); err != nil {
		l.s.log.WarnContext(ctx, "upload claim not released", "upload", l.id, "err", err)
	}
}

// writtenElsewhere is the error for a request that lost the session to
// another writer: 416 with the offset the session now has, so that the
// client can tell what the registry holds.
func (s *Service) writtenElsewhere(ctx context.Context, u *metadata.Upload) error {
	cur, err := s.meta.GetUpload(ctx, u.Repo, u.ID)
	if errors.Is(err, metadata.ErrNotFound) {
		return uploadUnknown(u.ID)
	}
	if err != nil {
		return err
	}
	e := Errorf(ErrRangeInvalid, "upload %s is being written by another request, or was: it now has %d bytes", u.ID, cur.Offset)
	e.Offset = cur.Offset
	return e
}

// leasedReader renews the claim as the body arrives and stops reading
// once the claim is lost.
type leasedReader struct {
	r     io.Reader
	ctx   context.Context
	lease *uploadLease
	// err is the claim's error that stopped the reading, if one did.
	err error
}

func (r *leasedReader) Read(p []byte) (int, error) {
	if err := r.lease.keep(r.ctx); err != nil {
		r.err = err
		return 0, err
	}
	return r.r.Read(p)
}

// leasedWriter checks the claim before each write to the blob store, so
// that a writer whose claim was taken while it was stalled stores nothing
// more (the blob store's own fencing covers a write already under way).
type leasedWriter struct {
	w     io.Writer
	ctx   context.Context
	lease *uploadLease
}

func (w *leasedWriter) Write(p []byte) (int, error) {
	if err := w.lease.keep(w.ctx); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// abortUpload gives up a writer without storing what it buffered, where
// the store can (else closing it is the best there is).
func abortUpload(w blobstore.UploadWriter) {
	if a, ok := w.(blobstore.Aborter); ok {
		a.Abort()
		return
	}
	_ = w.Close()
}
