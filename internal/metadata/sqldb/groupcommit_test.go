package sqldb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// Writes that arrive while a transaction runs share the next one and its
// commit (one WAL sync for all of them); one that fails is undone alone,
// and each is answered only once its fate is settled.
func TestGroupCommit_WritesShareATransactionAndFailAlone(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "metadata.db")
	db := openSQLite(t, path)
	if err := db.LinkBlob(ctx, "app", digest.FromString("warm-up"), 1); err != nil {
		t.Fatal(err)
	}

	// Hold the token as a running batch would, queue the writes behind it.
	db.group.run <- struct{}{}
	before := db.group.batches.Load()
	const writers = 10
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if i == 3 {
				errs[i] = db.inTx(ctx, func(tx *stmtTx) error {
					if err := linkBlob(ctx, tx, "app", digest.FromString("undone"), 1); err != nil {
						return err
					}
					return errors.New("this write fails after a change")
				})
				return
			}
			errs[i] = db.LinkBlob(ctx, "app", digest.FromString(fmt.Sprint("blob ", i)), int64(i))
		})
	}
	for {
		db.group.mu.Lock()
		n := len(db.group.pending)
		db.group.mu.Unlock()
		if n == writers {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		default:
			runtime.Gosched()
		}
	}
	<-db.group.run
	wg.Wait()

	if got := db.group.batches.Load() - before; got != 1 {
		t.Errorf("%d concurrent writes ran in %d transactions, want 1", writers, got)
	}
	db = reopen(t, db, path)
	for i, err := range errs {
		if i == 3 {
			if err == nil {
				t.Error("the failing write reported success")
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
		if size, err := db.BlobSize(ctx, "app", digest.FromString(fmt.Sprint("blob ", i))); err != nil || size != int64(i) {
			t.Errorf("write %d after reopening: size %d, %v", i, size, err)
		}
	}
	if _, err := db.BlobSize(ctx, "app", digest.FromString("undone")); err == nil {
		t.Error("the failing write's change was committed")
	}
}

// A write whose caller gave up before it ran does not run.
func TestGroupCommit_CancelledWriteDoesNotRun(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d := digest.FromString("never")
	if err := db.LinkBlob(ctx, "app", d, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("LinkBlob with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := db.BlobSize(t.Context(), "app", d); err == nil {
		t.Error("the cancelled write was committed")
	}
}
