package sqldb

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// statsQuery reads the totals that countLink and uncountLinks keep, so
// that a /metrics scrape costs the same however much is stored.
const statsQuery = `SELECT blobs, bytes FROM blob_totals WHERE id = 1`

// Stats returns the number of distinct linked blobs and their bytes.
func (db *DB) Stats(ctx context.Context) (metadata.Stats, error) {
	var st metadata.Stats
	if err := db.queryRow(ctx, statsQuery).Scan(&st.Blobs, &st.Bytes); err != nil {
		return st, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

// countLink records, in the transaction that inserted it, one new
// repo_blobs row for d. The first link of a digest adds it to the totals.
func countLink(ctx context.Context, tx *stmtTx, d digest.Digest, size int64) error {
	var links int64
	err := tx.QueryRowContext(ctx,
		`INSERT INTO linked_blobs (digest, size, links) VALUES (?, ?, 1)
		 ON CONFLICT (digest) DO UPDATE SET links = linked_blobs.links + 1
		 RETURNING links`, d.String(), size).Scan(&links)
	if err != nil {
		return fmt.Errorf("count link of %s: %w", d, err)
	}
	if links > 1 {
		return nil
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE blob_totals SET blobs = blobs + 1, bytes = bytes + ? WHERE id = 1`, size); err != nil {
		return fmt.Errorf("count blob %s: %w", d, err)
	}
	return nil
}

// uncountLinks records, in the transaction that deleted it, that the
// link of d in repository id is gone. The last link of a digest takes it
// out of the totals, with the size it was counted with.
func uncountLinks(ctx context.Context, tx *stmtTx, id int64, d digest.Digest) error {
	return uncountRemoved(ctx, tx, map[link]int64{{id, d}: 1})
}

// uncountRemoved uncounts the links removed (rows per repository and
// digest). The linked_blobs rows are updated in digest order, then the
// usage rows (uncountLinkSet) and the one blob_totals row last, so that
// on a database that locks rows (PostgreSQL) every writer takes the locks
// in one order and none waits for another in a cycle.
func uncountRemoved(ctx context.Context, tx *stmtTx, removed map[link]int64) error {
	perDigest := map[digest.Digest]int64{}
	for l, n := range removed {
		perDigest[l.digest] += n
	}
	var blobs, bytes int64
	for _, d := range slices.Sorted(maps.Keys(perDigest)) {
		var links, size int64
		err := tx.QueryRowContext(ctx,
			`UPDATE linked_blobs SET links = links - ? WHERE digest = ? RETURNING links, size`, perDigest[d], d.String()).Scan(&links, &size)
		if err != nil {
			return fmt.Errorf("uncount links of %s: %w", d, err)
		}
		if links > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM linked_blobs WHERE digest = ?`, d.String()); err != nil {
			return fmt.Errorf("uncount blob %s: %w", d, err)
		}
		blobs++
		bytes += size
	}
	if err := uncountLinkSet(ctx, tx, removed); err != nil {
		return err
	}
	if blobs == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE blob_totals SET blobs = blobs - ?, bytes = bytes - ? WHERE id = 1`, blobs, bytes); err != nil {
		return fmt.Errorf("uncount %d blobs: %w", blobs, err)
	}
	return nil
}

// deleteLinks runs a DELETE … RETURNING repo_id, digest on repo_blobs and uncounts
// what it removed, returning how many rows went.
func deleteLinks(ctx context.Context, tx *stmtTx, query string, args ...any) (int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	removed := map[link]int64{}
	var total int64
	for rows.Next() {
		var l link
		if err := rows.Scan(&l.repo, &l.digest); err != nil {
			rows.Close()
			return 0, err
		}
		removed[l]++
		total++
	}
	// All rows are read before the next statement: the DELETE has run to
	// its end only once its RETURNING rows are consumed.
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if err := uncountRemoved(ctx, tx, removed); err != nil {
		return 0, err
	}
	return total, nil
}
