package sqldb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.WebhookStore = (*DB)(nil)

// recordQuery inserts one event's delivery for every hook subscribed to
// it. It runs inside the writes that change a repository: with no hook it
// inserts nothing, so a registry without webhooks pays one read of an
// empty table per event. The prefix is compared in SQL (substr and length
// are spelled alike in SQLite and PostgreSQL) so that a hook created by
// another replica counts from its commit on. An event of no repository
// (a registry-wide report) reaches every hook subscribed to its action.
//
// The writes call it after their tag writes: the row lock of a tag orders
// concurrent writes of it on PostgreSQL, so the IDs (the delivery order)
// of one tag's events follow their commit order.
//
// The action is found in the hook's list with instr, not LIKE: SQLite
// prepares a statement again each time a LIKE pattern parameter is bound
// (the pattern might allow an index), and parsing this one again cost
// more than the rest of an event; a push under floating tags records
// several.
func (db *DB) recordQuery() string {
	return `INSERT INTO webhook_deliveries
	(hook_id, event_id, action, repo, digest, media_type, size, tag, actor, pulls, detail, created_at, next_at)
	SELECT h.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM webhooks h
	WHERE ` + db.fn("instr") + `(h.events, ?) > 0 AND (? = '' OR h.match_prefix = ? OR (NOT h.match_exact AND substr(?, 1, length(h.match_prefix)) = h.match_prefix))`
}

// eventSinks says whether a write's events have anywhere to go. Most
// registries have no webhook and no replication rule, and a push under
// semver floating tags records an event per moved tag: one query per
// write then replaces two inserts (that insert nothing) per event.
type eventSinks struct {
	hooks, rules bool
}

// sinksOf reads tx's eventSinks once per write.
func sinksOf(ctx context.Context, tx *stmtTx) (eventSinks, error) {
	if tx.sinks != nil {
		return *tx.sinks, nil
	}
	var s eventSinks
	err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM webhooks), EXISTS (SELECT 1 FROM replication_rules)`).Scan(&s.hooks, &s.rules)
	if err != nil {
		return s, fmt.Errorf("read event sinks: %w", err)
	}
	tx.sinks = &s
	return s, nil
}

// recordEvent records e's deliveries in tx.
func recordEvent(ctx context.Context, tx *stmtTx, e metadata.Event) error {
	sinks, err := sinksOf(ctx, tx)
	if err != nil {
		return err
	}
	ts := tx.db.now()
	if sinks.hooks {
		if _, err := tx.ExecContext(ctx, tx.db.recordQuery(),
			newEventID(), e.Action, e.Repo, e.Digest.String(), e.MediaType, e.Size, e.Tag, e.Actor, e.Count, e.Detail, ts, ts,
			","+e.Action+",", e.Repo, e.Repo, e.Repo); err != nil {
			return fmt.Errorf("record %s event of %s: %w", e.Action, e.Repo, err)
		}
	}
	if !sinks.rules {
		return nil
	}
	return recordReplication(ctx, tx, e, ts)
}

// newEventID names an event, the same for every hook and every retry, so
// that a receiver can drop a delivery it already has. Row IDs would not
// do: SQLite may hand a pruned row's ID out again.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}

// RecordEvents records the events' deliveries in one transaction.
func (db *DB) RecordEvents(ctx context.Context, events []metadata.Event) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		for _, e := range events {
			if err := recordEvent(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// hookMatch is how a pattern is compared in recordQuery.
func hookMatch(pattern string) (prefix string, exact bool) {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return p, false
	}
	return pattern, true
}

func joinEvents(events []string) string { return "," + strings.Join(events, ",") + "," }

func splitEvents(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' })
}

// CreateWebhook stores h.
func (db *DB) CreateWebhook(ctx context.Context, h *metadata.Webhook) (int64, error) {
	prefix, exact := hookMatch(h.Pattern)
	var id int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		return tx.QueryRowContext(ctx,
			`INSERT INTO webhooks (namespace, pattern, match_prefix, match_exact, url, events, format, secrets, created_by, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			h.Namespace, h.Pattern, prefix, exact, h.URL, joinEvents(h.Events), h.Format,
			strings.Join(h.Secrets, " "), h.CreatedBy, tx.db.now()).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("create webhook: %w", err)
	}
	return id, nil
}

// UpdateWebhook replaces what may change of hook h.ID.
func (db *DB) UpdateWebhook(ctx context.Context, h *metadata.Webhook) error {
	prefix, exact := hookMatch(h.Pattern)
	return db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE webhooks SET pattern = ?, match_prefix = ?, match_exact = ?, url = ?, events = ?, format = ?, secrets = ?
			 WHERE id = ?`,
			h.Pattern, prefix, exact, h.URL, joinEvents(h.Events), h.Format, strings.Join(h.Secrets, " "), h.ID)
		if err != nil {
			return fmt.Errorf("update webhook %d: %w", h.ID, err)
		}
		return expectOne(res, fmt.Sprintf("webhook %d", h.ID))
	})
}

// DeleteWebhook removes hook id; its deliveries go by cascade.
func (db *DB) DeleteWebhook(ctx context.Context, id int64) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		// Explicitly, as well: the cascade needs SQLite's foreign keys on.
		if _, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE hook_id = ?`, id); err != nil {
			return fmt.Errorf("delete webhook %d: %w", id, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete webhook %d: %w", id, err)
		}
		return expectOne(res, fmt.Sprintf("webhook %d", id))
	})
}

const webhookColumns = `id, namespace, pattern, url, events, format, secrets, created_by, created_at`

func scanWebhook(sc interface{ Scan(...any) error }) (metadata.Webhook, error) {
	var h metadata.Webhook
	var events, secrets string
	var at int64
	if err := sc.Scan(&h.ID, &h.Namespace, &h.Pattern, &h.URL, &events, &h.Format, &secrets, &h.CreatedBy, &at); err != nil {
		return h, err
	}
	h.Events, h.Secrets, h.CreatedAt = splitEvents(events), strings.Fields(secrets), fromNanos(at)
	return h, nil
}

// GetWebhook returns hook id.
func (db *DB) GetWebhook(ctx context.Context, id int64) (*metadata.Webhook, error) {
	h, err := scanWebhook(db.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("webhook %d", id))
	}
	return &h, nil
}

// ListWebhooks lists namespace's hooks, or all of them.
func (db *DB) ListWebhooks(ctx context.Context, namespace string) ([]metadata.Webhook, error) {
	q, args := `SELECT `+webhookColumns+` FROM webhooks`, []any{}
	if namespace != "" {
		q += ` WHERE namespace = ?`
		args = append(args, namespace)
	}
	rows, err := db.query(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	out := []metadata.Webhook{}
	for rows.Next() {
		h, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

const deliveryColumns = `id, hook_id, event_id, action, repo, digest, media_type, size, tag, actor, pulls, detail,
	created_at, state, attempts, next_at, last_error, delivered_at`

func scanDeliveries(rows *sql.Rows) ([]metadata.Delivery, error) {
	defer rows.Close()
	out := []metadata.Delivery{}
	for rows.Next() {
		var d metadata.Delivery
		var dg string
		var created, next, delivered int64
		if err := rows.Scan(&d.ID, &d.HookID, &d.EventID, &d.Action, &d.Repo, &dg, &d.MediaType, &d.Size, &d.Tag,
			&d.Actor, &d.Count, &d.Detail, &created, &d.State, &d.Attempts, &next, &d.LastError, &delivered); err != nil {
			return nil, err
		}
		d.Digest, d.CreatedAt, d.NextAttempt = digest.Digest(dg), fromNanos(created), fromNanos(next)
		if delivered != 0 {
			d.DeliveredAt = fromNanos(delivered)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimDeliveries leases the due deliveries. On PostgreSQL the candidates
// are locked with SKIP LOCKED, so that replicas claiming at once take
// different rows instead of queueing on each other; one statement, so it
// holds through PgBouncer's transaction pooling. SQLite has one writer.
func (db *DB) ClaimDeliveries(ctx context.Context, worker string, now, until time.Time, n int) ([]metadata.Delivery, error) {
	var out []metadata.Delivery
	err := db.inTx(ctx, func(tx *stmtTx) error {
		rows, err := tx.QueryContext(ctx, db.claimQuery("webhook_deliveries", "hook_id", "state = 'pending'", deliveryColumns),
			worker, until.UnixNano(), now.UnixNano(), now.UnixNano(), n)
		if err != nil {
			return err
		}
		out, err = scanDeliveries(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b metadata.Delivery) int { return int(a.ID - b.ID) })
	return out, nil
}

// claimQuery is the statement that leases the due rows of an outbox
// table (webhook deliveries, replication tasks) and returns their
// columns; its parameters are the worker, the lease's end, now (twice)
// and how many rows at most. A row is due when its next attempt is, no
// live lease holds it, and no earlier row of its queue (the same owner,
// a hook or a rule, and repository) is still to be worked: the queue's
// events go out in order. live ("" for every row) says which rows are
// still to be worked. The oldest due rows go first.
func (db *DB) claimQuery(table, owner, live, columns string) string {
	lock, liveD, liveE := "", "", ""
	if db.postgres {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	if live != "" {
		liveD, liveE = "d."+live+" AND ", "e."+live+" AND "
	}
	return `UPDATE ` + table + ` SET claimed_by = ?, claimed_until = ?
	 WHERE id IN (SELECT d.id FROM ` + table + ` d
	   WHERE ` + liveD + `d.next_at <= ? AND d.claimed_until <= ?
	   AND NOT EXISTS (SELECT 1 FROM ` + table + ` e
	     WHERE ` + liveE + `e.` + owner + ` = d.` + owner + ` AND e.repo = d.repo AND e.id < d.id)
	   ORDER BY d.id LIMIT ?` + lock + `)
	 RETURNING ` + columns
}

// leased runs an update of a leased row (a delivery, a replication task)
// that worker must still hold; what names the change and the row.
func (db *DB) leased(ctx context.Context, id int64, what, query string, args ...any) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("%s %d: %w", what, id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%s %d: lease lost: %w", what, id, metadata.ErrConflict)
		}
		return nil
	})
}

// FinishDelivery marks delivery id delivered.
func (db *DB) FinishDelivery(ctx context.Context, id int64, worker string, now time.Time) error {
	return db.leased(ctx, id, "finish delivery",
		`UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?, claimed_by = '', claimed_until = 0, last_error = ''
		 WHERE id = ? AND claimed_by = ? AND state = 'pending'`, now.UnixNano(), id, worker)
}

// FailDelivery records a failed attempt.
func (db *DB) FailDelivery(ctx context.Context, id int64, worker, reason string, next time.Time, dead bool) error {
	state := metadata.DeliveryPending
	if dead {
		state = metadata.DeliveryDead
	}
	return db.leased(ctx, id, "fail delivery",
		`UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?, next_at = ?, state = ?, claimed_by = '', claimed_until = 0
		 WHERE id = ? AND claimed_by = ? AND state = 'pending'`, reason, next.UnixNano(), state, id, worker)
}

// ListDeliveries lists hook's deliveries, newest first.
func (db *DB) ListDeliveries(ctx context.Context, hookID int64, state string, n int) ([]metadata.Delivery, error) {
	q, args := `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE hook_id = ?`, []any{hookID}
	if state != "" {
		q += ` AND state = ?`
		args = append(args, state)
	}
	if n <= 0 {
		n = -1
		if db.postgres {
			n = 1 << 62
		}
	}
	rows, err := db.query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, n)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Redeliver makes a dead delivery pending again.
func (db *DB) Redeliver(ctx context.Context, hookID, id int64, now time.Time) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = ?, claimed_by = '', claimed_until = 0
			 WHERE id = ? AND hook_id = ? AND state = 'dead'`, now.UnixNano(), id, hookID)
		if err != nil {
			return fmt.Errorf("redeliver %d: %w", id, err)
		}
		return expectOne(res, fmt.Sprintf("dead delivery %d", id))
	})
}

// PruneDeliveries removes what was delivered before `before`.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *stmtTx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM webhook_deliveries WHERE state = 'delivered' AND delivered_at < ?`, before.UnixNano())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	return n, nil
}
