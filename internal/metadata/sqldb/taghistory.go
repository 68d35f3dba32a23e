package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

var _ metadata.TagHistory = (*DB)(nil)

// Every statement that moves or deletes a tag goes through setTag or
// deleteTag below, which record the change in the same transaction: a
// tag cannot move without its history row, and garbage collection (which
// holds the manifests history rows name, untaggedWhere) cannot see the
// tag gone before it sees the row.

// change is how the writes of one call are recorded.
type change struct {
	actor string
	via   string
	ts    int64
	keep  int64
}

// changeFor reads the ChangeInfo of ctx, with via and actor as the
// defaults of the calling write.
func changeFor(ctx context.Context, tx *stmtTx, via, actor string) change {
	info := metadata.ChangeInfoOf(ctx)
	c := change{actor: info.Actor, via: info.Via, ts: tx.db.now(), keep: int64(info.Keep)}
	if c.actor == "" {
		c.actor = actor
	}
	if c.via == "" {
		c.via = via
	}
	if c.keep <= 0 {
		c.keep = int64(metadata.DefaultTagHistory)
	}
	return c
}

// recordChange writes one history row.
func recordChange(ctx context.Context, tx *stmtTx, repoID int64, tag string, from, to string, c change) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO tag_history (repo_id, tag, from_digest, to_digest, actor, via, changed_at, keep_until)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		repoID, tag, from, to, c.actor, c.via, c.ts, c.ts+c.keep)
	if err != nil {
		return fmt.Errorf("record change of tag %s: %w", tag, err)
	}
	return nil
}

// currentTag returns what tag points at, "" if it does not exist. On
// PostgreSQL the row is locked, so that two writes of one tag record the
// moves in the order they happen.
func currentTag(ctx context.Context, tx *stmtTx, repoID int64, tag string) (string, error) {
	q := `SELECT digest FROM tags WHERE repo_id = ? AND name = ?`
	if tx.db.postgres {
		q += ` FOR UPDATE`
	}
	var d string
	err := tx.QueryRowContext(ctx, q, repoID, tag).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read tag %s: %w", tag, err)
	}
	return d, nil
}

// setTag points tag at d, recording when and by whom, and records the
// move unless the tag already pointed at d (an identical re-push).
func setTag(ctx context.Context, tx *stmtTx, repoID int64, tag string, d digest.Digest, by string, c change) error {
	old, err := currentTag(ctx, tx, repoID, tag)
	if err != nil {
		return err
	}
	return setTagFrom(ctx, tx, repoID, tag, old, d, by, c)
}

// setTagFrom is setTag for a tag known to point at old ("" if it does not
// exist).
func setTagFrom(ctx context.Context, tx *stmtTx, repoID int64, tag, old string, d digest.Digest, by string, c change) error {
	fresh, err := upsertTag(ctx, tx, repoID, tag, d.String(), c.ts, by)
	if err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	if old == d.String() {
		return nil
	}
	if err := deriveTag(ctx, tx, repoID, tag, old != "", fresh); err != nil {
		return err
	}
	return recordChange(ctx, tx, repoID, tag, old, d.String(), c)
}

// deleteTag deletes tag and records it; it returns the digest the tag
// pointed at, "" if it did not exist.
func deleteTag(ctx context.Context, tx *stmtTx, repoID int64, tag string, c change) (string, error) {
	old, err := currentTag(ctx, tx, repoID, tag)
	if err != nil || old == "" {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE repo_id = ? AND name = ?`, repoID, tag); err != nil {
		return "", fmt.Errorf("delete tag %s: %w", tag, err)
	}
	return old, recordChange(ctx, tx, repoID, tag, old, "", c)
}

// recordManifestDelete records the delete of every tag pointing at d,
// which the delete of manifest d is about to take with it (cascade).
func recordManifestDelete(ctx context.Context, tx *stmtTx, repoID int64, d digest.Digest, c change) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM tags WHERE repo_id = ? AND digest = ? ORDER BY name`, repoID, d.String())
	if err != nil {
		return fmt.Errorf("tags of %s: %w", d, err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("tags of %s: %w", d, err)
		}
		names = append(names, n)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tags of %s: %w", d, err)
	}
	for _, n := range names {
		if err := recordChange(ctx, tx, repoID, n, d.String(), "", c); err != nil {
			return err
		}
	}
	return nil
}

// TagChanges lists repo's recorded changes of tag ("" for all), newest
// first.
func (db *DB) TagChanges(ctx context.Context, repo, tag string, offset, n int) ([]metadata.TagChange, int, error) {
	id, err := db.repoID(ctx, repo)
	if err != nil {
		return nil, 0, err
	}
	where := `repo_id = ?`
	args := []any{id}
	if tag != "" {
		where += ` AND tag = ?`
		args = append(args, tag)
	}
	var total int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM tag_history WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count tag history: %w", err)
	}
	limit := n
	if limit <= 0 {
		limit = math.MaxInt32
	}
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, tag, from_digest, to_digest, actor, via, changed_at, keep_until FROM tag_history
		 WHERE `+where+` ORDER BY id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("read tag history: %w", err)
	}
	defer rows.Close()
	var out []metadata.TagChange
	for rows.Next() {
		c := metadata.TagChange{Repo: repo}
		var from, to string
		var at, keep int64
		if err := rows.Scan(&c.ID, &c.Tag, &from, &to, &c.Actor, &c.Via, &at, &keep); err != nil {
			return nil, 0, fmt.Errorf("read tag history: %w", err)
		}
		c.From, c.To = digest.Digest(from), digest.Digest(to)
		c.At, c.KeepUntil = fromNanos(at), fromNanos(keep)
		out = append(out, c)
	}
	return out, total, rows.Err()
}

// repoID returns the id of repository repo, or ErrNotFound.
func (db *DB) repoID(ctx context.Context, repo string) (int64, error) {
	var id int64
	err := db.read.QueryRowContext(ctx, `SELECT id FROM repositories WHERE name = ?`, repo).Scan(&id)
	if err != nil {
		return 0, notFound(err, "repository "+repo)
	}
	return id, nil
}

// PruneTagHistory deletes the rows kept until before now.
func (db *DB) PruneTagHistory(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM tag_history WHERE keep_until <= ?`, now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune tag history: %w", err)
	}
	return res.RowsAffected()
}
