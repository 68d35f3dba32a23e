package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/secretkey"
)

// sealedStore keeps the hooks' signing secrets sealed with the registry's
// secret key in the database, and open in memory: whoever reads a copy of
// the database (a backup, a replica's dump) cannot forge deliveries.
// Secrets stored before a key was configured are plain ("whsec_…"); they
// are still read, and SealStored seals them.
type sealedStore struct {
	metadata.WebhookStore
	sealer *secretkey.Sealer
}

// hookAAD binds a sealed secret to its hook's namespace. The ID would be
// tighter, but a new hook has none until it is stored, and storing its
// secret plain first would leave it plain in the database's pages.
func hookAAD(h *Hook) string { return "webhook:" + h.Namespace }

// sealed returns a copy of h with its secrets sealed.
func (s *sealedStore) sealed(h *Hook) *Hook {
	c := *h
	c.Secrets = make([]string, len(h.Secrets))
	for i, sec := range h.Secrets {
		c.Secrets[i] = sec
		if !isSealed(sec) {
			c.Secrets[i] = s.sealer.Seal(sec, hookAAD(h))
		}
	}
	return &c
}

// open opens h's sealed secrets in place.
func (s *sealedStore) open(h *Hook) error {
	for i, sec := range h.Secrets {
		if !isSealed(sec) {
			continue
		}
		pt, err := s.sealer.Open(sec, hookAAD(h))
		if err != nil {
			return fmt.Errorf("webhook %d: %w", h.ID, err)
		}
		h.Secrets[i] = pt
	}
	return nil
}

// isSealed tells a sealed secret from a plain one, which always starts
// with whsec_.
func isSealed(secret string) bool { return !strings.HasPrefix(secret, secretPrefix) }

func (s *sealedStore) CreateWebhook(ctx context.Context, h *Hook) (int64, error) {
	return s.WebhookStore.CreateWebhook(ctx, s.sealed(h))
}

func (s *sealedStore) UpdateWebhook(ctx context.Context, h *Hook) error {
	return s.WebhookStore.UpdateWebhook(ctx, s.sealed(h))
}

func (s *sealedStore) GetWebhook(ctx context.Context, id int64) (*Hook, error) {
	h, err := s.WebhookStore.GetWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	return h, s.open(h)
}

func (s *sealedStore) ListWebhooks(ctx context.Context, namespace string) ([]Hook, error) {
	hs, err := s.WebhookStore.ListWebhooks(ctx, namespace)
	if err != nil {
		return nil, err
	}
	for i := range hs {
		if err := s.open(&hs[i]); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

// ErrNoSealer is SealStored called on a Service without a secret key.
var ErrNoSealer = errors.New("notify: no secret key to seal webhook secrets with")

// SealStored seals every hook secret still stored plain (from before a
// secret key was configured) and returns how many hooks it rewrote. Serve
// calls it at start, before it answers requests, so that no plain secret
// outlives a start with a key. Only an edit of the same hook by another
// replica in that instant could be undone by the rewrite.
func (s *Service) SealStored(ctx context.Context) (int, error) {
	ss, ok := s.store.(*sealedStore)
	if !ok {
		return 0, ErrNoSealer
	}
	hs, err := ss.WebhookStore.ListWebhooks(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range hs {
		h := &hs[i]
		plain := false
		for _, sec := range h.Secrets {
			plain = plain || !isSealed(sec)
		}
		if !plain {
			continue
		}
		if err := ss.UpdateWebhook(ctx, h); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return n, err
		}
		n++
	}
	if n > 0 {
		s.log.InfoContext(ctx, "webhook secrets sealed", "hooks", n)
	}
	return n, nil
}
