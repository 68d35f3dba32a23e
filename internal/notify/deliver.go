package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// batch is how many deliveries one round claims: at most one per hook and
// repository is due at a time, so a round sends to many receivers at once.
const batch = 32

// maxBackoff caps the doubling of retry delays.
const maxBackoff = time.Hour

// lease is how long a claim lasts: an attempt's timeout with room to
// record its outcome. A replica that dies mid-delivery holds its claims
// that long; then another (or itself, restarted) sends them again.
func (s *Service) lease() time.Duration { return s.opts.Timeout + 5*time.Second }

// DeliverDue claims the deliveries due now and sends them, and reports how
// many it claimed. A failed attempt is retried after a delay that doubles
// each time; the MaxAttempts-th failure dead-letters the delivery.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	now := s.opts.Now()
	ds, err := s.store.ClaimDeliveries(ctx, s.worker, now, now.Add(s.lease()), batch)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	hooks := map[int64]*Hook{}
	for _, d := range ds {
		if _, ok := hooks[d.HookID]; ok {
			continue
		}
		h, err := s.store.GetWebhook(ctx, d.HookID)
		if errors.Is(err, metadata.ErrNotFound) {
			continue // deleted since: its deliveries went with it
		}
		if err != nil {
			return 0, err
		}
		hooks[d.HookID] = h
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i, d := range ds {
		h := hooks[d.HookID]
		if h == nil {
			continue
		}
		wg.Go(func() { errs[i] = s.attempt(ctx, h, d) })
	}
	wg.Wait()
	return len(ds), errors.Join(errs...)
}

// attempt sends d to h once and records the outcome. An error is the
// store's: the receiver's failures are the delivery's, recorded in it.
func (s *Service) attempt(ctx context.Context, h *Hook, d Delivery) error {
	sendErr := s.send(ctx, h, d)
	if ctx.Err() != nil {
		// Shutting down: the claim lapses and the delivery is sent again.
		return nil
	}
	now := s.opts.Now()
	if sendErr == nil {
		s.counts.Delivered.Add(1)
		err := s.store.FinishDelivery(ctx, d.ID, s.worker, now)
		if errors.Is(err, metadata.ErrConflict) {
			return nil // the lease lapsed and another worker has it: sent twice, which at-least-once allows
		}
		return err
	}
	dead := d.Attempts+1 >= s.opts.MaxAttempts
	if dead {
		s.counts.Dead.Add(1)
	} else {
		s.counts.Failed.Add(1)
	}
	delay := s.opts.Backoff << min(d.Attempts, 30)
	if delay <= 0 || delay > maxBackoff {
		delay = maxBackoff
	}
	s.log.WarnContext(ctx, "webhook delivery failed", "hook", h.ID, "delivery", d.ID, "attempt", d.Attempts+1,
		"dead", dead, "err", sendErr)
	err := s.store.FailDelivery(ctx, d.ID, s.worker, sendErr.Error(), now.Add(delay), dead)
	if errors.Is(err, metadata.ErrConflict) {
		return nil
	}
	return err
}

// send posts d to h's URL, signed; any 2xx answer is success.
func (s *Service) send(ctx context.Context, h *Hook, d Delivery) error {
	contentType, body, err := s.render.render(h.Format, d)
	if err != nil {
		return err
	}
	ts := s.opts.Now()
	sig, err := Sign(h.Secrets, d.EventID, ts, body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "wharf-webhooks")
	req.Header.Set(HeaderID, d.EventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// A receiver's answer is not ours to keep: read a little, so the
	// connection can be reused, and drop the rest.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// Run delivers until ctx ends: round after round while there is work,
// then every poll.
func (s *Service) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for {
			n, err := s.DeliverDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "webhook deliveries failed", "err", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune removes the record of deliveries made before before.
func (s *Service) Prune(ctx context.Context, before time.Time) (int64, error) {
	return s.store.PruneDeliveries(ctx, before)
}
