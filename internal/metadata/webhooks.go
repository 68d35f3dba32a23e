package metadata

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// Event actions: what happened to a repository, as webhooks subscribe to
// it.
const (
	// EventPush is a manifest pushed, once per tag it was pushed with
	// (Tag "" for a push by digest).
	EventPush = "push"
	// EventDelete is a manifest, a tag or a whole repository deleted.
	EventDelete = "delete"
	// EventTag is a tag moved by the registry itself in a write's
	// transaction (a semver floating tag following a release).
	EventTag = "tag"
	// EventPull is a batch of pulls of one tag (Count of them).
	EventPull = "pull"
	// EventGC and EventRetention report a collection or retention run;
	// Detail holds its report.
	EventGC        = "gc"
	EventRetention = "retention"
	// EventBaseUpdated is a golden base tag moved: its derived images may
	// need a rebuild.
	EventBaseUpdated = "base.updated"
)

// Event is something that happened to a repository, recorded for the
// webhooks subscribed to it.
type Event struct {
	Action    string
	Repo      string
	Digest    digest.Digest
	MediaType string
	Size      int64
	Tag       string
	// Actor is the account that caused it, "" when unknown or anonymous.
	// A delete's actor is the write context's ChangeInfo actor (a user, or
	// the job that deleted: retention, gc).
	Actor string
	// Count is how many pulls an EventPull stands for.
	Count int64
	// Detail is a JSON object with what else the action reports (a run's
	// report), "" when none.
	Detail string
}

// Webhook is a subscription: the events of the repositories Pattern names
// are delivered to URL, signed with Secrets.
type Webhook struct {
	ID int64
	// Namespace owns the hook; Pattern lies inside it.
	Namespace string
	// Pattern is a repository name, or a name prefix followed by '*' that
	// matches every repository whose name starts with the prefix ("ns/*").
	// A store matches it inside a write's transaction.
	Pattern string
	URL     string
	// Events are the actions delivered.
	Events []string
	// Format is the payload format (internal/notify decides the names).
	Format string
	// Secrets sign each delivery, the newest first; during a rotation
	// there are two and each delivery carries both signatures.
	Secrets   []string
	CreatedBy string
	CreatedAt time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"
)

// Delivery is one event owed to one hook: a row of the outbox.
type Delivery struct {
	ID      int64
	HookID  int64
	EventID string
	Event
	CreatedAt time.Time
	State     string
	// Attempts counts the failed attempts so far.
	Attempts    int
	NextAttempt time.Time
	LastError   string
	DeliveredAt time.Time
}

// WebhookStore keeps webhooks and their outbox. A store that is a
// WebhookStore records, inside the transaction of each write that changes
// a repository (PutManifest, the deletes, a TagPlan's moves, AddPulls), a
// pending delivery for every hook whose Pattern matches the repository and
// whose Events hold the action: a write that commits has its deliveries,
// one that rolls back has none. A write with no hook subscribed writes no
// delivery.
//
// Workers claim deliveries with a lease, so that several processes can
// share the outbox and one that dies mid-delivery loses nothing: its
// claims lapse and another worker takes them. Times come from the
// caller's clock.
type WebhookStore interface {
	// CreateWebhook stores h and returns its new ID.
	CreateWebhook(ctx context.Context, h *Webhook) (int64, error)
	// UpdateWebhook replaces hook h.ID's pattern, URL, events, format and
	// secrets, or returns ErrNotFound.
	UpdateWebhook(ctx context.Context, h *Webhook) error
	// DeleteWebhook removes hook id and its deliveries, or returns
	// ErrNotFound.
	DeleteWebhook(ctx context.Context, id int64) error
	// GetWebhook returns hook id, or ErrNotFound.
	GetWebhook(ctx context.Context, id int64) (*Webhook, error)
	// ListWebhooks lists namespace's hooks ("": every hook) by ID.
	ListWebhooks(ctx context.Context, namespace string) ([]Webhook, error)

	// RecordEvents records deliveries of events (which no write of this
	// store records: a collection's report) for the hooks subscribed, in
	// one transaction. An event whose Repo is "" (a registry-wide report)
	// goes to every hook subscribed to its action.
	RecordEvents(ctx context.Context, events []Event) error

	// ClaimDeliveries leases up to n pending deliveries due at now to
	// worker until until, oldest first, skipping those another worker's
	// live lease holds. A delivery is due only when no earlier pending
	// delivery of the same hook and repository remains, so that each
	// repository's events reach a hook in order.
	ClaimDeliveries(ctx context.Context, worker string, now, until time.Time, n int) ([]Delivery, error)
	// FinishDelivery marks delivery id delivered at now if worker still
	// holds its lease; ErrConflict if it does not.
	FinishDelivery(ctx context.Context, id int64, worker string, now time.Time) error
	// FailDelivery records a failed attempt of delivery id by worker:
	// retried at next, or dead-lettered when dead. ErrConflict if worker
	// no longer holds its lease.
	FailDelivery(ctx context.Context, id int64, worker, reason string, next time.Time, dead bool) error
	// ListDeliveries lists up to n of hook's deliveries in state ("": any),
	// newest first.
	ListDeliveries(ctx context.Context, hookID int64, state string, n int) ([]Delivery, error)
	// Redeliver makes dead delivery id of hook pending again, due at now
	// with no attempts counted; ErrNotFound if hook has no such dead
	// delivery.
	Redeliver(ctx context.Context, hookID, id int64, now time.Time) error
	// PruneDeliveries removes deliveries delivered before `before`.
	PruneDeliveries(ctx context.Context, before time.Time) (int64, error)
}
