package sqldb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// A lookup must see every commit made before it was asked, by this
// process's pool or another: handOff keeps finished read transactions
// open a little, and must never serve from them.
func TestPointLookupSeesEveryCommit(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "metadata.db")
	reader := openSQLite(t, path)
	writer := openSQLite(t, path) // another replica on the same database

	first := testManifest("app", "0")
	if err := writer.PutManifest(ctx, first, []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	// Background lookups keep transactions overlapping, as under load.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				// Not found while the loop below has the tag deleted.
				if _, err := reader.ResolveTag(ctx, "app", "latest"); err != nil && !errors.Is(err, metadata.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := 1; i <= 50; i++ {
		m := testManifest("app", fmt.Sprint(i))
		if err := writer.PutManifest(ctx, m, []string{"latest"}); err != nil {
			t.Fatal(err)
		}
		got, err := reader.ResolveTag(ctx, "app", "latest")
		if err != nil {
			t.Fatal(err)
		}
		if got != m.Digest {
			t.Fatalf("after moving the tag to %s a lookup returned %s", m.Digest, got)
		}
		if err := writer.DeleteTag(ctx, "app", "latest"); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.ResolveTag(ctx, "app", "latest"); err == nil {
			t.Fatal("a lookup found a deleted tag")
		}
		if err := writer.PutManifest(ctx, m, []string{"latest"}); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()

	// Once lookups stop, no read transaction stays open: a checkpoint
	// can copy the whole WAL back and truncate it.
	deadline := time.Now().Add(2 * time.Second)
	for {
		var busy, logFrames, done int
		err := writer.write.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
		if err != nil {
			t.Fatal(err)
		}
		if busy == 0 && logFrames == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint still blocked (busy %d, %d of %d frames) after lookups stopped", busy, done, logFrames)
		}
		time.Sleep(lingerMax)
	}
}

// Closing the database ends the transaction handOff left open, and a
// lookup after Close fails instead of reopening connections.
func TestPointLookupAfterClose(t *testing.T) {
	ctx := t.Context()
	db := resolvedOnce(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ResolveTag(ctx, "app", "latest"); err == nil {
		t.Fatal("lookup after Close succeeded")
	}
}
