package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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
		var current []metadata.TagTarget
		if plan != nil {
			if moves, current, err = planTags(ctx, tx, id, plan); err != nil {
				return err
			}
		}
		if err := putManifest(ctx, tx, id, m, annotations, tags); err != nil {
			return err
		}
		return applyMoves(ctx, tx, id, m.Repo, moves, current)
	})
}

// DeleteManifestPlanned deletes manifest d (and its tags) and applies
// plan's moves (if plan is not nil) in one transaction.
func (db *DB) DeleteManifestPlanned(ctx context.Context, repo string, d digest.Digest, plan metadata.TagPlan) error {
	what := "manifest " + d.String()
	return db.deletePlanned(ctx, repo, plan, what, func(tx *stmtTx, id int64, c change) error {
		if err := recordManifestDelete(ctx, tx, id, d, c); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM manifests WHERE repo_id = ? AND digest = ?`, id, d.String())
		if err != nil {
			return fmt.Errorf("delete %s: %w", what, err)
		}
		if err := expectOne(res, what); err != nil {
			return err
		}
		if err := deriveIndexesOf(ctx, tx, id, d.String()); err != nil {
			return err
		}
		return recordEvent(ctx, tx, metadata.Event{Action: metadata.EventDelete, Repo: repo, Digest: d, Actor: c.actor})
	})
}

// DeleteTagPlanned deletes one tag and applies plan's moves (if plan is
// not nil) in one transaction.
func (db *DB) DeleteTagPlanned(ctx context.Context, repo, tag string, plan metadata.TagPlan) error {
	return db.deletePlanned(ctx, repo, plan, "tag "+tag, func(tx *stmtTx, id int64, c change) error {
		old, err := deleteTag(ctx, tx, id, tag, c)
		if err != nil {
			return err
		}
		if old == "" {
			return fmt.Errorf("tag %s: %w", tag, metadata.ErrNotFound)
		}
		return recordEvent(ctx, tx, metadata.Event{Action: metadata.EventDelete, Repo: repo, Digest: digest.Digest(old), Tag: tag, Actor: c.actor})
	})
}

func (db *DB) deletePlanned(ctx context.Context, repo string, plan metadata.TagPlan, what string, del func(tx *stmtTx, id int64, c change) error) error {
	return db.inTx(ctx, func(tx *stmtTx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ?`, repo).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w", what, metadata.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("repository %s: %w", repo, err)
		}
		var moves []metadata.TagMove
		if plan != nil {
			if moves, _, err = planTags(ctx, tx, id, plan); err != nil {
				return err
			}
		}
		if err := del(tx, id, changeFor(ctx, tx, metadata.ViaDelete, "")); err != nil {
			return err
		}
		// The delete changed tags since the plan read them.
		return applyMoves(ctx, tx, id, repo, moves, nil)
	})
}

// planTags runs plan on repository id's tags, and returns its moves and
// the tags it ran on. On PostgreSQL it first
// locks the repository's row (FOR NO KEY UPDATE, which the foreign-key
// checks of other writes' inserts do not wait for), so that the planned
// writes of one repository run one at a time and each plan sees the
// moves of the one before; SQLite has one writer anyway.
func planTags(ctx context.Context, tx *stmtTx, id int64, plan metadata.TagPlan) ([]metadata.TagMove, []metadata.TagTarget, error) {
	if tx.db.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT id FROM repositories WHERE id = ? FOR NO KEY UPDATE`, id); err != nil {
			return nil, nil, fmt.Errorf("lock repository: %w", err)
		}
	}
	// One row for all the tags: a repository under semver floating tags
	// holds hundreds of versions, and each row fetched on its own cost
	// more than the push's other statements together. Neither a tag nor a
	// digest can hold a space.
	var all sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT `+tx.db.fn("group_concat")+`(name || ' ' || digest, ' ') FROM tags WHERE repo_id = ?`, id).Scan(&all); err != nil {
		return nil, nil, fmt.Errorf("read tags: %w", err)
	}
	tags := make([]metadata.TagTarget, 0, strings.Count(all.String, " ")/2+1)
	for rest := all.String; rest != ""; {
		var name, d string
		name, rest, _ = strings.Cut(rest, " ")
		d, rest, _ = strings.Cut(rest, " ")
		tags = append(tags, metadata.TagTarget{Name: name, Digest: digest.Digest(d)})
	}
	moves, err := plan(tags)
	return moves, tags, err
}

// applyMoves points or deletes the tags the plan moved, each with its
// event, recorded in the tag history as floating moves made for the
// move's PushedBy. current, when not nil, is what the moved tags pointed
// at: what the plan read, in this transaction, of tags no other statement
// of it wrote. On SQLite, the only writer, that spares a read per move;
// PostgreSQL reads each again, locking its row (currentTag).
func applyMoves(ctx context.Context, tx *stmtTx, id int64, repo string, moves []metadata.TagMove, current []metadata.TagTarget) error {
	var was map[string]string
	if len(moves) > 0 && current != nil && !tx.db.postgres {
		was = make(map[string]string, len(current))
		for _, t := range current {
			was[t.Name] = t.Digest.String()
		}
	}
	for _, m := range moves {
		ev := metadata.Event{Action: metadata.EventTag, Repo: repo, Digest: m.Digest, Tag: m.Name, Actor: m.PushedBy}
		c := changeFor(ctx, tx, metadata.ViaFloating, m.PushedBy)
		c.via, c.actor = metadata.ViaFloating, m.PushedBy
		var err error
		switch {
		case m.Digest == "":
			if c.actor == "" {
				c.actor = metadata.ChangeInfoOf(ctx).Actor
			}
			_, err = deleteTag(ctx, tx, id, m.Name, c)
			ev.Action, ev.Actor = metadata.EventDelete, c.actor
		case was != nil:
			err = setTagFrom(ctx, tx, id, m.Name, was[m.Name], m.Digest, m.PushedBy, c)
		default:
			err = setTag(ctx, tx, id, m.Name, m.Digest, m.PushedBy, c)
		}
		if err != nil {
			return err
		}
		if err := recordEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}
