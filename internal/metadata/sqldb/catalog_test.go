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

func TestSQLite_PolicyContract(t *testing.T) {
	metadatatest.RunPolicies(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_TagPlannerContract(t *testing.T) {
	metadatatest.RunTagPlanner(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_ReplicationContract(t *testing.T) {
	metadatatest.RunReplication(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_WebhookContract(t *testing.T) {
	metadatatest.RunWebhooks(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_JobsContract(t *testing.T) {
	metadatatest.RunJobs(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_TagHistoryContract(t *testing.T) {
	metadatatest.RunTagHistory(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_LineageContract(t *testing.T) {
	metadatatest.RunLineage(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

// Every table is copied by Bulk or named as not copied, so that a new
// table cannot be forgotten by `wharf migrate`.
func TestBulk_CoversEveryTable(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	names, err := db.listRows(t.Context(), `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, bt := range bulkTables {
		covered[bt.name] = true
	}
	for name := range notCopied {
		covered[name] = true
	}
	for _, name := range names {
		if !covered[name] {
			t.Errorf("table %s is neither copied by metadata.Bulk (bulkTables) nor listed in notCopied with a reason", name)
		}
	}
}

func TestSQLite_UsageContract(t *testing.T) {
	metadatatest.RunUsage(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}

func TestSQLite_RetentionContract(t *testing.T) {
	metadatatest.RunRetention(t, func(t *testing.T) metadata.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "metadata.db"))
	})
}
