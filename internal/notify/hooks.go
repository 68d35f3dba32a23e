// Package notify delivers webhooks: it manages the hooks of a namespace
// and sends, from the outbox that the metadata store fills in each
// write's transaction, every event at least once, signed in the Standard
// Webhooks style, in the payload format each hook asks for. It speaks
// HTTP only as a client, to the receivers.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wharf/wharf/internal/egress"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/secretkey"
)

// Hook is a webhook as the store keeps it.
type Hook = metadata.Webhook

// Delivery is one event owed to one hook.
type Delivery = metadata.Delivery

// Errors of the Service, for handlers to map onto responses.
var (
	// ErrInvalid is a hook refused; the *Invalid error says why.
	ErrInvalid = errors.New("notify: invalid webhook")
	// ErrNotFound is no such hook in the namespace, or no such dead
	// delivery of the hook.
	ErrNotFound = errors.New("notify: not found")
)

// Invalid says what is wrong with a hook. It matches ErrInvalid.
type Invalid struct{ Message string }

func (e *Invalid) Error() string { return e.Message }

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *Invalid) Is(target error) bool { return target == ErrInvalid }

// Options configure a Service.
type Options struct {
	// MaxAttempts failed attempts dead-letter a delivery.
	MaxAttempts int
	// Backoff is the first retry's delay, doubled per retry up to an hour.
	Backoff time.Duration
	// Timeout bounds one attempt.
	Timeout time.Duration
	// RegistryURL prefixes links in payloads ("" for none).
	RegistryURL string
	// Client sends deliveries (default: one with Timeout, no redirects,
	// refusing internal addresses unless AllowInternal).
	Client *http.Client
	// AllowInternal lets hooks name, and deliveries reach, receivers on
	// this host or its private network (egress.Internal).
	AllowInternal bool
	// Now is the clock of retries and leases (default time.Now).
	Now func() time.Time
	// Sealer, when set, seals the hooks' secrets in the store (nil: they
	// are stored as they are, for a registry with no secret key).
	Sealer *secretkey.Sealer
}

// Service manages hooks and delivers their outbox.
type Service struct {
	store  metadata.WebhookStore
	log    *slog.Logger
	opts   Options
	client *http.Client
	render payloader
	// worker names this process's leases on deliveries.
	worker string
	// counts are this process's attempts by outcome, for metrics.
	counts Counts
}

// Counts are a process's delivery attempts by outcome since it started.
type Counts struct {
	// Delivered were answered 2xx; Failed were not and will be retried;
	// Dead were not and were dead-lettered.
	Delivered, Failed, Dead atomic.Int64
}

// Counts returns this process's counters of attempts.
func (s *Service) Counts() *Counts { return &s.counts }

// New returns the service over store.
func New(store metadata.WebhookStore, log *slog.Logger, opts Options) *Service {
	if opts.MaxAttempts < 1 {
		opts.MaxAttempts = 12
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		// A receiver's redirect is not followed: the signature was made
		// for the URL the hook names.
		opts.Client = &http.Client{Timeout: opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if !opts.AllowInternal {
			opts.Client.Transport = egress.Transport(http.DefaultTransport.(*http.Transport))
		}
	}
	if opts.Sealer != nil {
		store = &sealedStore{WebhookStore: store, sealer: opts.Sealer}
	}
	return &Service{store: store, log: log, opts: opts, client: opts.Client, render: newPayloader(opts.RegistryURL),
		worker: strings.TrimPrefix(newWorkerID(), secretPrefix)}
}

func newWorkerID() string { return NewSecret()[:24] }

// HookSpec is what a caller sets of a hook.
type HookSpec struct {
	// Repositories narrows the hook inside its namespace: "" for all of
	// them, a repository name ("app"), or a prefix ending in '*'
	// ("team/*").
	Repositories string
	URL          string
	Events       []string
	Format       string
	// Secret, if not "", is used instead of a generated one.
	Secret string
}

// repoPart is what a hook's repositories may be: path components of a
// repository name, the last of which may end in '*'.
var repoPart = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?:/?\*)?$|^\*$`)

// hookFrom validates spec for namespace ns into a hook, its URL against
// internal addresses unless they are allowed.
func (s *Service) hookFrom(ns string, spec HookSpec) (*Hook, error) {
	h, err := hookFrom(ns, spec)
	if err != nil || s.opts.AllowInternal {
		return h, err
	}
	if err := egress.CheckURL(spec.URL); err != nil {
		return nil, &Invalid{fmt.Sprintf("url %q: %v", spec.URL, err)}
	}
	return h, nil
}

// hookFrom validates spec for namespace ns into a hook.
func hookFrom(ns string, spec HookSpec) (*Hook, error) {
	h := &Hook{Namespace: ns, Pattern: ns + "/*", URL: spec.URL, Events: spec.Events, Format: spec.Format}
	if spec.Repositories != "" {
		if !repoPart.MatchString(spec.Repositories) {
			return nil, &Invalid{fmt.Sprintf("repositories %q: want a repository name inside %s, or a prefix ending in *", spec.Repositories, ns)}
		}
		h.Pattern = ns + "/" + spec.Repositories
	}
	u, err := url.Parse(spec.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &Invalid{fmt.Sprintf("url %q: want an http:// or https:// URL", spec.URL)}
	}
	if h.Format == "" {
		h.Format = FormatCNCF
	}
	if !slices.Contains(Formats(), h.Format) {
		return nil, &Invalid{fmt.Sprintf("format %q: want one of %s", h.Format, strings.Join(Formats(), ", "))}
	}
	if len(h.Events) == 0 {
		h.Events = []string{metadata.EventPush, metadata.EventDelete, metadata.EventTag}
	}
	for _, e := range h.Events {
		if !slices.Contains(Events(), e) {
			return nil, &Invalid{fmt.Sprintf("event %q: want some of %s", e, strings.Join(Events(), ", "))}
		}
	}
	h.Events = slices.Compact(slices.Sorted(slices.Values(h.Events)))
	if spec.Secret != "" {
		if _, err := secretKey(spec.Secret); err != nil {
			return nil, &Invalid{err.Error()}
		}
	}
	return h, nil
}

// Create adds a hook to namespace ns, made by the context's actor; it
// returns the hook with its secret.
func (s *Service) Create(ctx context.Context, ns string, spec HookSpec) (*Hook, error) {
	actor := registry.Actor(ctx)
	h, err := s.hookFrom(ns, spec)
	if err != nil {
		return nil, err
	}
	h.Secrets, h.CreatedBy = []string{cmpOr(spec.Secret, NewSecret())}, actor
	if h.ID, err = s.store.CreateWebhook(ctx, h); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "webhook created", "namespace", ns, "hook", h.ID, "url", h.URL, "user", actor)
	return s.Get(ctx, ns, h.ID)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Update replaces hook id's settings; its secrets stay.
func (s *Service) Update(ctx context.Context, ns string, id int64, spec HookSpec) (*Hook, error) {
	old, err := s.Get(ctx, ns, id)
	if err != nil {
		return nil, err
	}
	h, err := s.hookFrom(ns, spec)
	if err != nil {
		return nil, err
	}
	h.ID, h.Secrets = id, old.Secrets
	if spec.Secret != "" {
		h.Secrets = []string{spec.Secret}
	}
	if err := s.store.UpdateWebhook(ctx, h); err != nil {
		return nil, s.notFound(err)
	}
	s.log.InfoContext(ctx, "webhook changed", "namespace", ns, "hook", id, "url", h.URL, "user", registry.Actor(ctx))
	return s.Get(ctx, ns, id)
}

// Rotate starts a rotation of hook id's secret: a new one signs beside
// the current one until FinishRotation. It returns the hook.
func (s *Service) Rotate(ctx context.Context, ns string, id int64) (*Hook, error) {
	return s.setSecrets(ctx, ns, id, func(old []string) []string { return []string{NewSecret(), old[0]} })
}

// FinishRotation drops every secret of hook id but the newest.
func (s *Service) FinishRotation(ctx context.Context, ns string, id int64) (*Hook, error) {
	return s.setSecrets(ctx, ns, id, func(old []string) []string { return old[:1] })
}

func (s *Service) setSecrets(ctx context.Context, ns string, id int64, next func([]string) []string) (*Hook, error) {
	h, err := s.Get(ctx, ns, id)
	if err != nil {
		return nil, err
	}
	h.Secrets = next(h.Secrets)
	if err := s.store.UpdateWebhook(ctx, h); err != nil {
		return nil, s.notFound(err)
	}
	s.log.InfoContext(ctx, "webhook secrets changed", "namespace", ns, "hook", id, "secrets", len(h.Secrets), "user", registry.Actor(ctx))
	return h, nil
}

// Delete removes hook id of ns with its deliveries.
func (s *Service) Delete(ctx context.Context, ns string, id int64) error {
	if _, err := s.Get(ctx, ns, id); err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(ctx, id); err != nil {
		return s.notFound(err)
	}
	s.log.InfoContext(ctx, "webhook deleted", "namespace", ns, "hook", id, "user", registry.Actor(ctx))
	return nil
}

// Get returns hook id if it belongs to ns.
func (s *Service) Get(ctx context.Context, ns string, id int64) (*Hook, error) {
	h, err := s.store.GetWebhook(ctx, id)
	if err != nil {
		return nil, s.notFound(err)
	}
	if h.Namespace != ns {
		return nil, fmt.Errorf("webhook %d of %s: %w", id, ns, ErrNotFound)
	}
	return h, nil
}

// List lists ns's hooks.
func (s *Service) List(ctx context.Context, ns string) ([]Hook, error) {
	return s.store.ListWebhooks(ctx, ns)
}

// Deliveries lists up to n of hook id's deliveries in state ("": any),
// newest first.
func (s *Service) Deliveries(ctx context.Context, ns string, id int64, state string, n int) ([]Delivery, error) {
	if _, err := s.Get(ctx, ns, id); err != nil {
		return nil, err
	}
	return s.store.ListDeliveries(ctx, id, state, n)
}

// Redeliver queues dead delivery did of hook id again, due now.
func (s *Service) Redeliver(ctx context.Context, ns string, id, did int64) error {
	if _, err := s.Get(ctx, ns, id); err != nil {
		return err
	}
	if err := s.store.Redeliver(ctx, id, did, s.opts.Now()); err != nil {
		return s.notFound(err)
	}
	s.log.InfoContext(ctx, "webhook redelivery queued", "namespace", ns, "hook", id, "delivery", did, "user", registry.Actor(ctx))
	return nil
}

func (s *Service) notFound(err error) error {
	if errors.Is(err, metadata.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
