package sqldb

import (
	"path/filepath"
	"testing"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/metadatatest"
)

func TestSQLiteCatalogContract(t *testing.T) {
	metadatatest.RunCatalog(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_BulkContract(t *testing.T) {
	metadatatest.RunBulk(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}
