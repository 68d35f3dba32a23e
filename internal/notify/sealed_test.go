package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/notify"
	"github.com/wharf/wharf/internal/registrytest"
)

// storedSecrets reads hook id's secrets as the database holds them, with
// the server stopped.
func storedSecrets(t *testing.T, dataDir string, id int64) []string {
	t.Helper()
	db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(dataDir, "wharf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, err := db.GetWebhook(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h.Secrets
}

// pushDelivered pushes ref and returns the one delivery it causes.
func pushDelivered(t *testing.T, w *world, ref string) received {
	t.Helper()
	w.push(t, ref)
	w.deliver(t)
	got := w.rc.take()
	if len(got) != 1 {
		t.Fatalf("receiver got %d deliveries, want 1", len(got))
	}
	return got[0]
}

func assertSealed(t *testing.T, stored []string, plain string) {
	t.Helper()
	if len(stored) == 0 {
		t.Fatal("no stored secrets")
	}
	for _, s := range stored {
		if strings.HasPrefix(s, "whsec_") || strings.Contains(s, strings.TrimPrefix(plain, "whsec_")) {
			t.Errorf("stored secret %q is plain", s)
		}
	}
}

func TestWebhookSecrets_SealedInTheDatabaseAndSignWhenOpened(t *testing.T) {
	w := newWorld(t, nil)
	h := w.createHook(t, "team", map[string]any{"events": []string{"push"}})
	// Rotating writes both secrets back: neither may land plain.
	var rotated hook
	w.api(t, http.MethodPost, fmt.Sprintf("/v2/namespaces/team/webhooks/%d/rotate", h.ID), nil, http.StatusOK, &rotated)
	got := pushDelivered(t, w, "team/app:v1")
	verify(t, h.Secrets[0], got, w.clock.Now())
	verify(t, rotated.Secrets[0], got, w.clock.Now())
	w.srv.Stop()
	stored := storedSecrets(t, w.srv.DataDir, h.ID)
	if len(stored) != 2 {
		t.Fatalf("stored %d secrets, want 2", len(stored))
	}
	assertSealed(t, stored[1:], h.Secrets[0])
	assertSealed(t, stored[:1], rotated.Secrets[0])
}

func TestWebhookSecrets_PlainOnesFromBeforeAKeyAreSealedAtStart(t *testing.T) {
	dir := t.TempDir()
	db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(dir, "wharf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t)
	// A service without a sealer stores secrets as wharf did before
	// they were sealed.
	plain := notify.New(db, slog.New(slog.DiscardHandler), notify.Options{AllowInternal: true})
	h, err := plain.Create(t.Context(), "team", notify.HookSpec{URL: rc.URL + "/hook", Events: []string{metadata.EventPush}})
	if err != nil {
		t.Fatal(err)
	}
	if got := storedSecrets(t, dir, h.ID); len(got) != 1 || got[0] != h.Secrets[0] {
		t.Fatalf("set-up stored %q, want the plain secret", got)
	}
	db.Close()

	clock := clocktest.New()
	srv := registrytest.NewServer(t, registrytest.WithDataDir(dir), registrytest.WithClock(clock.Now))
	w := &world{srv: srv, clock: clock, rc: rc}
	verify(t, h.Secrets[0], pushDelivered(t, w, "team/app:v1"), clock.Now())
	srv.Stop()
	assertSealed(t, storedSecrets(t, dir, h.ID), h.Secrets[0])
}
