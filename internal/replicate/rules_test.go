package replicate_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
	"github.com/wharf/wharf/internal/secretkey"
)

func TestService_RuleWithSealedPasswordReconcilesToAuthenticatedDestination(t *testing.T) {
	ctx := context.Background()
	src := registrytest.NewServer(t)
	const pw = "dest-admin-password-1"
	dest := registrytest.NewServer(t, registrytest.WithAuth(pw))
	dbPath := filepath.Join(t.TempDir(), "rules.db")
	db, err := sqldb.OpenSQLite(ctx, dbPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, keyErr := secretkey.LoadKey("", t.TempDir(), false)
	now := time.Unix(5000, 0)
	svc, err := replicate.NewService(db, key, keyErr, replicate.Endpoint{URL: src.URL}, replicate.Options{Now: func() time.Time { return now }, AllowInternal: true})
	if err != nil {
		t.Fatal(err)
	}

	img := push(t, src.Server, "team/app:1.0")
	push(t, src.Server, "other/app:1.0")
	id, err := svc.CreateRule(ctx, "team", replicate.RuleSpec{URL: dest.URL, DestPrefix: "mirror", Username: auth.AdminUser, Password: pw}, "alice")
	if err != nil {
		t.Fatal(err)
	}

	// The password is in the database, but not in clear.
	raw, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var stored string
	if err := raw.QueryRow(`SELECT password FROM replication_rules WHERE id = ?`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored == "" || strings.Contains(stored, pw) {
		t.Fatalf("stored password %q: want sealed", stored)
	}

	if err := svc.ReconcileAll(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(strings.TrimPrefix(dest.URL, "http://")+"/mirror/team/app:1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r, remote.WithAuth(&authn.Basic{Username: auth.AdminUser, Password: pw}))
	want, _ := img.Digest()
	if err != nil || d.Digest != want {
		t.Fatalf("destination has %v (%v), want %s", d, err, want)
	}
	other, _ := name.ParseReference(strings.TrimPrefix(dest.URL, "http://")+"/mirror/other/app:1.0", name.Insecure)
	if _, err := remote.Head(other, remote.WithAuth(&authn.Basic{Username: auth.AdminUser, Password: pw})); err == nil {
		t.Error("a repository outside the rule's namespace was replicated")
	}
	rule, err := db.GetReplicationRule(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !rule.LastOK.Equal(now) || rule.LastError != "" {
		t.Errorf("status after success: %+v", rule)
	}

	// A rule whose destination refuses its credentials records why.
	bad, err := svc.CreateRule(ctx, "team", replicate.RuleSpec{URL: dest.URL, Username: auth.AdminUser, Password: "wrong"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if err := svc.ReconcileAll(ctx); err == nil {
		t.Error("reconcile with a refused password succeeded")
	}
	rule, _ = db.GetReplicationRule(ctx, bad)
	if rule.LastError == "" || !rule.LastRun.Equal(now) || !rule.LastOK.IsZero() {
		t.Errorf("status after failure: %+v", rule)
	}
}

func TestService_RefusesPasswordWithoutKey(t *testing.T) {
	db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "m.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	_, keyErr := secretkey.LoadKey("", "", true)
	svc, err := replicate.NewService(db, nil, keyErr, replicate.Endpoint{URL: "http://127.0.0.1:1"}, replicate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateRule(t.Context(), "team", replicate.RuleSpec{URL: "https://b.test", Username: "u", Password: "p"}, "a"); !errors.Is(err, secretkey.ErrNoKey) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
	if rules, _ := db.ListReplicationRules(t.Context(), ""); len(rules) != 0 {
		t.Errorf("a rule was stored: %+v", rules)
	}
	if _, err := svc.CreateRule(t.Context(), "team", replicate.RuleSpec{URL: "https://b.test"}, "a"); err != nil {
		t.Errorf("a rule without credentials needs no key: %v", err)
	}
}
