package sqldb

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// BenchmarkPlanTags measures what a planned tag write (a version push
// under floating-tags=semver) pays to hand its plan the repository's
// tags: the read of 210 version tags of one of 20 repositories, inside an
// otherwise empty write transaction, on SQLite. It is the part of
// BenchmarkVersionPush (internal/registry) that grows with the tags.
func BenchmarkPlanTags(b *testing.B) {
	const repos, versions = 20, 210
	ctx := context.Background()
	db, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "wharf.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	for r := range repos {
		tags := make([]string, versions)
		for i := range tags {
			tags[i] = fmt.Sprintf("1.%d.%d", i/20, i%20)
		}
		content := fmt.Sprintf(`{"schemaVersion":2,"seed":%d}`, r)
		m := &metadata.Manifest{Repo: fmt.Sprintf("team/app%d", r), Digest: digest.FromString(content),
			MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte(content)}
		if err := db.PutManifest(ctx, m, tags); err != nil {
			b.Fatal(err)
		}
	}
	seen, i := 0, 0
	for b.Loop() {
		i++
		err := db.inTx(ctx, func(tx *stmtTx) error {
			_, _, err := planTags(ctx, tx, int64(i%repos+1), func(tags []metadata.TagTarget) ([]metadata.TagMove, error) {
				seen = len(tags)
				return nil, nil
			})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if seen != versions {
		b.Fatalf("the plan saw %d tags; want %d", seen, versions)
	}
}
