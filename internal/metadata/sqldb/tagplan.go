package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.TagPlanner = (*DB)(nil)

// PutManifestPlanned stores m, points tags at it and applies plan's moves
// (if plan is not nil) in one transaction.
func (db *DB) PutManifestPlanned(ctx context.Context, m *metadata.Manifest, tags []string, plan metadata.TagPlan) error {
	annotations, err := encodeAnnotations(m)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *stmtTx) error {
		id, err := ensureRepo(ctx, tx, m.Repo)
		if err != nil {
			return err
		}
		var moves []metadata.TagMove
		if plan != nil {
			if moves, err = planTags(ctx, tx, id, plan); err != nil {
				return err
			}
		}
		if err := putManifest(ctx, tx, id, m, annotations, tags); err != nil {
			return err
		}
		return applyMoves(ctx, tx, id, m.Repo, moves)
	})
}

// DeleteManifestPlanned deletes manifest d (and its tags) and applies
// plan's moves in one transaction.
func (db *DB) DeleteManifestPlanned(ctx context.Context, repo string, d digest.Digest, plan metadata.TagPlan) error {
	return db.deletePlanned(ctx, repo, plan, "manifest "+d.String(),
		`DELETE FROM manifests WHERE repo_id = ? AND digest = ? RETURNING digest, ''`, d.String())
}

// DeleteTagPlanned deletes one tag and applies plan's moves in one
// transaction.
func (db *DB) DeleteTagPlanned(ctx context.Context, repo, tag string, plan metadata.TagPlan) error {
	return db.deletePlanned(ctx, repo, plan, "tag "+tag, `DELETE FROM tags WHERE repo_id = ? AND name = ? RETURNING digest, name`, tag)
}

func (db *DB) deletePlanned(ctx context.Context, repo string, plan metadata.TagPlan, what, del string, key string) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ?`, repo).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w", what, metadata.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("repository %s: %w", repo, err)
		}
		moves, err := planTags(ctx, tx, id, plan)
		if err != nil {
			return err
		}
		// del returns what went, for the delete event.
		var d, tag string
		if err := tx.QueryRowContext(ctx, del, id, key).Scan(&d, &tag); err != nil {
			return notFound(err, what)
		}
		if err := recordEvent(ctx, tx, metadata.Event{Action: metadata.EventDelete, Repo: repo, Digest: digest.Digest(d), Tag: tag}); err != nil {
			return err
		}
		return applyMoves(ctx, tx, id, repo, moves)
	})
}

// planTags runs plan on repository id's tags. On PostgreSQL it first
// locks the repository's row (FOR NO KEY UPDATE, which the foreign-key
// checks of other writes' inserts do not wait for), so that the planned
// writes of one repository run one at a time and each plan sees the
// moves of the one before; SQLite has one writer anyway.
func planTags(ctx context.Context, tx *stmtTx, id int64, plan metadata.TagPlan) ([]metadata.TagMove, error) {
	if tx.db.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT id FROM repositories WHERE id = ? FOR NO KEY UPDATE`, id); err != nil {
			return nil, fmt.Errorf("lock repository: %w", err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, digest FROM tags WHERE repo_id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("read tags: %w", err)
	}
	defer rows.Close()
	var tags []metadata.TagTarget
	for rows.Next() {
		var t metadata.TagTarget
		var d string
		if err := rows.Scan(&t.Name, &d); err != nil {
			return nil, fmt.Errorf("read tags: %w", err)
		}
		t.Digest = digest.Digest(d)
		tags = append(tags, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read tags: %w", err)
	}
	return plan(tags)
}

// applyMoves points or deletes the tags the plan moved, each with its
// event.
func applyMoves(ctx context.Context, tx *stmtTx, id int64, repo string, moves []metadata.TagMove) error {
	ts := tx.db.now()
	for _, m := range moves {
		ev := metadata.Event{Action: metadata.EventTag, Repo: repo, Digest: m.Digest, Tag: m.Name, Actor: m.PushedBy}
		if m.Digest == "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE repo_id = ? AND name = ?`, id, m.Name); err != nil {
				return fmt.Errorf("delete tag %s: %w", m.Name, err)
			}
			ev.Action = metadata.EventDelete
		} else if err := setTag(ctx, tx, id, m.Name, m.Digest, ts, m.PushedBy); err != nil {
			return err
		}
		if err := recordEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}
