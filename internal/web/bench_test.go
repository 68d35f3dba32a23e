package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registrytest"
)

// BenchmarkPages renders the listing pages at the scale: an
// explore page and a namespace over 10,000 repositories, and the tags
// page (first and a deep page) and the Hub tag list of a repository
// with 100,000 tags. Each must stay under 100 ms.
//
// The data is written through the metadata store beside the running
// server (pushing 110,000 manifests over HTTP would take minutes); one
// real image is pushed first so that every tag points at a manifest
// whose config blob the page reads.
func BenchmarkPages(b *testing.B) {
	dir := b.TempDir()
	srv := registrytest.NewServer(b, registrytest.WithDataDir(dir))
	push(b, srv, "big/app:base", testImage(b, "amd64"))
	seed(b, filepath.Join(dir, "wharf.db"))

	client := srv.Client()
	for _, page := range []struct{ name, path string }{
		{"explore_10k_repos", "/"},
		{"explore_10k_repos_by_name_page_300", "/?sort=name&page=300"},
		{"explore_search", "/search?q=r0999"},
		{"namespace_10k_repos", "/u/many"},
		{"tags_100k_newest", "/r/big/app/tags"},
		{"tags_100k_page_3000", "/r/big/app/tags?sort=name&page=3000"},
		{"tags_100k_filter", "/r/big/app/tags?name=t09999"},
		{"overview_100k", "/r/big/app"},
		{"hub_tags_100k", "/v2/namespaces/big/repositories/app/tags?page_size=100"},
		{"hub_repos_10k", "/v2/namespaces/many/repositories?page_size=100"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := client.Get(srv.URL + page.path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s = %d", page.path, resp.StatusCode)
				}
			}
		})
	}
}

// seed adds 100,000 tags to big/app (one transaction) and 10,000
// repositories many/rNNNNN, all pointing at big/app:base's manifest.
func seed(b *testing.B, path string) {
	b.Helper()
	ctx := context.Background()
	db, err := sqldb.OpenSQLite(ctx, path, nil)
	must(b, err)
	defer db.Close()
	base, err := db.GetTaggedManifest(ctx, "big/app", "base")
	must(b, err)
	tags := make([]string, 100_000)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%06d", i)
	}
	must(b, db.PutManifest(ctx, withRepo(base, "big/app"), tags))
	for i := range 10_000 {
		must(b, db.PutManifest(ctx, withRepo(base, fmt.Sprintf("many/r%05d", i)), []string{"latest"}))
	}
}

func withRepo(m *metadata.Manifest, repo string) *metadata.Manifest {
	return &metadata.Manifest{Repo: repo, Digest: digest.FromBytes(m.Content), MediaType: m.MediaType, Content: m.Content, PushedBy: "seed"}
}
