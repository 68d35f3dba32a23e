package sqldb

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// groupCommit shares write transactions between concurrent writers.
// With synchronous=FULL every commit waits for the disk, and SQLite has
// one writer: N pushes finishing at once would queue for N syncs. Instead
// the writes that arrive while a transaction runs wait for it and then
// run together in the next one, each in a savepoint of its own, and share
// its commit and its sync. A write is answered only after that commit, so
// an acknowledged write is as durable as if it had committed alone, and a
// failing one rolls back only its own changes.
type groupCommit struct {
	mu      sync.Mutex
	pending []*writeOp
	// run is a token: whoever holds it runs the next batch.
	run chan struct{}
	// batches counts the transactions run, for tests.
	batches atomic.Int64
}

type writeOp struct {
	ctx  context.Context
	fn   func(tx *stmtTx) error
	done chan error // buffered: the batch never waits for its writer
}

func newGroupCommit() groupCommit { return groupCommit{run: make(chan struct{}, 1)} }

// groupTx runs fn in a SQLite write transaction, shared with other
// writers (see groupCommit), and returns once fn's changes are committed or undone. fn
// must use tx's methods, which ignore the cancellation of their context:
// interrupting a statement could roll back the whole shared transaction.
// A write whose context is done before it runs fails with the context's
// error.
func (db *DB) groupTx(ctx context.Context, fn func(tx *stmtTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g := &db.group
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, op)
	g.mu.Unlock()
	select {
	case err := <-op.done:
		return err
	case g.run <- struct{}{}:
	}
	// This writer leads the next batch, unless the one that just ended
	// took its write.
	select {
	case err := <-op.done:
		<-g.run
		return err
	default:
	}
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	db.runBatch(batch)
	<-g.run
	return <-op.done
}

// runBatch runs the writes in one transaction and answers each of them.
func (db *DB) runBatch(batch []*writeOp) {
	db.group.batches.Add(1)
	errs := make([]error, len(batch))
	answer := func() {
		for i, op := range batch {
			op.done <- errs[i]
		}
	}
	failAll := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		answer()
	}
	ctx := context.Background()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		failAll(fmt.Errorf("begin: %w", err))
		return
	}
	stx := &stmtTx{Tx: tx, db: db}
	// One write alone needs no savepoint: its failure undoes the whole
	// transaction.
	alone := len(batch) == 1
	ok := 0
	for i, op := range batch {
		if err := op.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !alone {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
				_ = tx.Rollback()
				failAll(fmt.Errorf("savepoint: %w", err))
				return
			}
		}
		stx.sinks = nil // an earlier write may have added a hook
		errs[i] = op.fn(stx)
		if alone {
			break
		}
		end := `RELEASE w`
		if errs[i] != nil {
			end = `ROLLBACK TO w; RELEASE w`
		} else {
			ok++
		}
		if _, err := tx.ExecContext(ctx, end); err != nil {
			_ = tx.Rollback()
			failAll(fmt.Errorf("end savepoint: %w", err))
			return
		}
	}
	if alone && errs[0] != nil || !alone && ok == 0 {
		_ = tx.Rollback()
		answer()
		return
	}
	if err := tx.Commit(); err != nil {
		failAll(fmt.Errorf("commit: %w", err))
		return
	}
	if db.ckpt != nil {
		db.ckpt.committed()
	}
	for _, q := range stx.new {
		// Best effort: a query that cannot be prepared just stays unprepared.
		_, _ = db.prepared(ctx, &db.wstmts, db.write, q)
	}
	answer()
}
