package sqldb

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/metadata"
)

// TestLineage_MigrationDerivesExistingTags: a database whose lineages and
// tags were written before derived_tags existed answers "used by" from
// the migration on, for tags on images and on indexes alike.
func TestLineage_MigrationDerivesExistingTags(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "metadata.db")
	db := openSQLite(t, path)
	base := testManifest("golden/base", "base")
	base.Lineage = &metadata.Lineage{Chain: "c1", First: "c1", Layers: 1, Golden: true}
	if err := db.PutManifest(ctx, base, []string{"1.0"}); err != nil {
		t.Fatal(err)
	}
	on := func(m *metadata.Manifest) *metadata.Manifest {
		m.Lineage = &metadata.Lineage{Chain: "c2", First: "c1", Layers: 2,
			Base: metadata.BaseRef{Repo: "golden/base", Digest: base.Digest, Tags: []string{"1.0"}, Layers: 1, Source: "layers"}}
		return m
	}
	if err := db.PutManifest(ctx, on(testManifest("team/app", "app")), []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	platform := on(testManifest("team/web", "amd64"))
	if err := db.PutManifest(ctx, platform, nil); err != nil {
		t.Fatal(err)
	}
	content := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":%q}]}`, platform.Digest)
	idx := &metadata.Manifest{Repo: "team/web", Digest: digest.FromString(content), MediaType: "application/vnd.oci.image.index.v1+json",
		Content: []byte(content), Children: []digest.Digest{platform.Digest}}
	if err := db.PutManifest(ctx, idx, []string{"latest"}); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before the derived rows (migration 22), undoing
	// what came after it too.
	if _, err := db.write.ExecContext(ctx, `DROP TABLE derived_tags;
		DROP INDEX tags_base; ALTER TABLE tags DROP COLUMN base_repo; ALTER TABLE tags DROP COLUMN base_digest;
		ALTER TABLE tags DROP COLUMN repo_name;
		DROP INDEX blobs_small; ALTER TABLE blobs DROP COLUMN content;
		ALTER TABLE uploads DROP COLUMN content;
		DELETE FROM schema_migrations WHERE version >= 22`); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db, path)
	got, total, err := db.DerivedImages(ctx, metadata.DerivedQuery{BaseRepo: "golden/base"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.Repo+":"+d.Tag)
	}
	if total != 2 || fmt.Sprint(names) != "[team/app:v1 team/web:latest]" {
		t.Errorf("used by after the migration = %v (total %d); want [team/app:v1 team/web:latest]", names, total)
	}
}
