package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata/sqldb"
)

// newClock is the auth tests' clock, at a fixed start.
func newClock() *clocktest.Clock { return clocktest.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// cheap keeps argon2id fast in tests; production uses DefaultPasswordParams.
var cheap = auth.PasswordParams{Memory: 64, Time: 1, Threads: 1}

func newStore(t *testing.T) *sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "metadata.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newService(t *testing.T, c *clocktest.Clock) (*auth.Service, *sqldb.DB) {
	t.Helper()
	db := newStore(t)
	return auth.NewService(db, auth.Config{PasswordParams: cheap, Now: c.Now}), db
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func x509ParseEd25519(der []byte) (ed25519.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	return k.(ed25519.PrivateKey), nil
}
