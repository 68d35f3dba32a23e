package sqldb

import (
	"path/filepath"
	"testing"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/auth/authtest"
)

func TestSQLite_AuthContract(t *testing.T) {
	authtest.Run(t, func(t *testing.T) auth.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_LoginFailuresContract(t *testing.T) {
	authtest.RunFailures(t, func(t *testing.T) auth.FailureStore {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}
