package migrate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/migrate"
	"github.com/wharf/wharf/internal/servicetest"
)

// SQLite + directory → PostgreSQL + S3 → a fresh SQLite + directory, each
// leg verified: everything arrives, equal, both ways.
func TestMigrate_RoundTripThroughPostgresAndS3(t *testing.T) {
	servicetest.StartPostgres(t)
	servicetest.StartS3(t)
	a, b, c := embedded(t, "sqlite-a"), shared(t, "postgres-s3"), embedded(t, "sqlite-c")
	fillSource(t, a)

	rep, out, err := run(t, t.Context(), a, b, migrate.Options{Verify: true})
	if err != nil {
		t.Fatalf("migrate a → b: %v", err)
	}
	blobs, _ := a.bulk().LinkedBlobs(t.Context(), "", 1000)
	if rep.BlobsCopied != len(blobs) || rep.BlobsVerified != len(blobs) || rep.BlobsPresent != 0 || rep.BlobsRepaired != 0 {
		t.Errorf("a → b report %+v; want all %d blobs copied and verified", rep, len(blobs))
	}
	if added, same, _ := rep.RecordTotals(); added == 0 || same != 0 || rep.RecordsVerified != added {
		t.Errorf("a → b records: %d added, %d same, %d verified", added, same, rep.RecordsVerified)
	}
	if rep.Uploads != 1 || !strings.Contains(out, "not copied: 1 upload sessions in progress") {
		t.Errorf("report of uploads: %d, transcript %q", rep.Uploads, out)
	}
	wantSame(t, a, b)

	if _, _, err := run(t, t.Context(), b, c, migrate.Options{Verify: true}); err != nil {
		t.Fatalf("migrate b → c: %v", err)
	}
	wantSame(t, b, c)
	wantSame(t, a, c)
}

// A migration cancelled during the blobs, then during the records,
// finishes when run again: nothing duplicated, nothing failed.
func TestMigrate_ResumesAfterInterruption(t *testing.T) {
	a, b := embedded(t, "source"), embedded(t, "destination")
	fillSource(t, a)
	blobs, _ := a.bulk().LinkedBlobs(t.Context(), "", 1000)

	ctx, cancel := context.WithCancel(t.Context())
	dst := b
	commits := &cancelAfterCommits{Store: b.Blobs, cancel: cancel}
	commits.n.Store(2)
	dst.Blobs = commits
	rep, _, err := run(t, ctx, a, dst, migrate.Options{})
	copied := rep.BlobsCopied
	if !errors.Is(err, context.Canceled) || copied != 2 {
		t.Fatalf("first run = %v after %d blobs; want cancelled after 2", err, copied)
	}

	ctx, cancel = context.WithCancel(t.Context())
	dst = b
	dst.Meta = &cancelAfterLoads{Store: b.Meta, Bulk: b.bulk(), n: 7, cancel: cancel}
	rep, _, err = run(t, ctx, a, dst, migrate.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("second run = %v; want cancelled among the records", err)
	}
	if rep.BlobsPresent != copied || rep.BlobsCopied != len(blobs)-copied {
		t.Errorf("second run: %d blobs present, %d copied; want %d and %d", rep.BlobsPresent, rep.BlobsCopied, copied, len(blobs)-copied)
	}
	if _, ok := rep.Records[metadata.KindTags]; ok {
		t.Fatal("second run loaded the tags: the cancellation came too late to test resuming")
	}

	rep, out, err := run(t, t.Context(), a, b, migrate.Options{Verify: true})
	if err != nil {
		t.Fatalf("third run: %v", err)
	}
	if rep.BlobsCopied != 0 || rep.BlobsPresent != len(blobs) {
		t.Errorf("third run copied %d blobs, found %d present; want 0 and %d", rep.BlobsCopied, rep.BlobsPresent, len(blobs))
	}
	if added, same, _ := rep.RecordTotals(); added == 0 || same == 0 {
		t.Errorf("third run: %d records added, %d already there; want both", added, same)
	}
	if !strings.Contains(out, "already present") {
		t.Errorf("transcript does not say what was skipped:\n%s", out)
	}
	wantSame(t, a, b)

	// And once more: all there, nothing written.
	rep, _, err = run(t, t.Context(), a, b, migrate.Options{})
	if added, _, replaced := rep.RecordTotals(); err != nil || rep.BlobsCopied != 0 || added != 0 || replaced != 0 {
		t.Errorf("fourth run: %v, %d blobs copied, %d records added, %d replaced; want nothing", err, rep.BlobsCopied, added, replaced)
	}
}

// A blob damaged at the destination keeps its size, so a run without
// --verify skips it; --verify finds it, says so, and copies it again.
func TestMigrate_VerifyCatchesCorruptBlobAtDestination(t *testing.T) {
	a, b := embedded(t, "source"), embedded(t, "destination")
	fillSource(t, a)
	if _, _, err := run(t, t.Context(), a, b, migrate.Options{}); err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("layer one")
	path := filepath.Join(b.cfg.Storage.Filesystem.Root, "blobs", "sha256", d.Encoded()[:2], d.Encoded())
	if err := os.WriteFile(path, []byte("layer 0ne"), 0o644); err != nil {
		t.Fatal(err)
	}

	rep, _, err := run(t, t.Context(), a, b, migrate.Options{})
	if err != nil || rep.BlobsRepaired != 0 {
		t.Fatalf("run without --verify: %v, %d repaired; want the damage unnoticed", err, rep.BlobsRepaired)
	}
	rep, out, err := run(t, t.Context(), a, b, migrate.Options{Verify: true})
	if err != nil {
		t.Fatalf("run with --verify: %v", err)
	}
	want := "verify: blob " + d.String() + " at the destination is corrupt (its 9 bytes have digest " + digest.FromString("layer 0ne").String() + "): copying it again from the source"
	if !strings.Contains(out, want) {
		t.Errorf("transcript lacks %q:\n%s", want, out)
	}
	if rep.BlobsRepaired != 1 {
		t.Errorf("BlobsRepaired = %d; want 1", rep.BlobsRepaired)
	}
	if got := readBlob(t, b, d); string(got) != "layer one" {
		t.Errorf("blob after --verify = %q; want it copied again", got)
	}
}

// A destination with other values under the same names is refused
// whole: nothing is written, not even what it lacks; --replace lets the
// source's values win and keeps what only the destination has.
func TestMigrate_RefusesDifferentDataUnlessReplace(t *testing.T) {
	a, b := embedded(t, "source"), embedded(t, "destination")
	fillSource(t, a)
	if _, _, err := run(t, t.Context(), a, b, migrate.Options{}); err != nil {
		t.Fatal(err)
	}
	own := putImage(t, b, "team/app", "carol", []string{"latest", "only-here"}, []byte("destination's own"))
	fresh := putImage(t, a, "team/app", "alice", []string{"new"}, []byte("new at the source"))

	_, out, err := run(t, t.Context(), a, b, migrate.Options{})
	if !errors.Is(err, migrate.ErrConflict) {
		t.Fatalf("run into a moved tag = %v; want ErrConflict", err)
	}
	if !strings.Contains(out, "differs: tags: team/app latest") {
		t.Errorf("transcript does not name the tag:\n%s", out)
	}
	if _, err := b.Meta.GetTaggedManifest(t.Context(), "team/app", "new"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("refused run wrote the new tag: %v", err)
	}
	if _, err := b.Blobs.Stat(t.Context(), fresh.Blobs[1]); err == nil {
		t.Error("refused run copied a blob")
	}

	rep, _, err := run(t, t.Context(), a, b, migrate.Options{Replace: true, Verify: true})
	if err != nil {
		t.Fatalf("run with --replace: %v", err)
	}
	if r := rep.Records[metadata.KindTags]; r.Replaced != 1 || r.Added != 1 {
		t.Errorf("tags with --replace = %+v; want latest replaced, new added", r)
	}
	for tag, want := range map[string]digest.Digest{"latest": mustTag(t, a, "latest"), "new": fresh.Digest, "only-here": own.Digest} {
		if got := mustTag(t, b, tag); got != want {
			t.Errorf("after --replace, %s → %s; want %s", tag, got, want)
		}
	}
}

func mustTag(t *testing.T, e end, tag string) digest.Digest {
	t.Helper()
	m, err := e.Meta.GetTaggedManifest(t.Context(), "team/app", tag)
	if err != nil {
		t.Fatalf("%s: tag %s: %v", e.name, tag, err)
	}
	return m.Digest
}

// Bytes missing or damaged at the source are reported, not copied, and
// fail the migration; the rest is copied.
func TestMigrate_ReportsSourceBlobsMissingOrCorrupt(t *testing.T) {
	a, b := embedded(t, "source"), embedded(t, "destination")
	fillSource(t, a)
	gone, bad := digest.FromString("layer one"), digest.FromString("arm layer")
	root := filepath.Join(a.cfg.Storage.Filesystem.Root, "blobs", "sha256")
	if err := os.Remove(filepath.Join(root, gone.Encoded()[:2], gone.Encoded())); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, bad.Encoded()[:2], bad.Encoded()), []byte("arm layeR"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _, err := run(t, t.Context(), a, b, migrate.Options{})
	if !errors.Is(err, migrate.ErrIncomplete) || len(rep.Problems) != 2 {
		t.Fatalf("migrate = %v, problems %q; want ErrIncomplete with 2", err, rep.Problems)
	}
	if !strings.Contains(rep.Problems[0]+rep.Problems[1], "missing from the source's blob store") ||
		!strings.Contains(rep.Problems[0]+rep.Problems[1], "corrupt at the source") {
		t.Errorf("problems %q do not say what is wrong", rep.Problems)
	}
	for _, d := range []digest.Digest{gone, bad} {
		if _, err := b.Blobs.Stat(t.Context(), d); err == nil {
			t.Errorf("blob %s reached the destination", d)
		}
	}
	blobs, _ := a.bulk().LinkedBlobs(t.Context(), "", 1000)
	if rep.BlobsCopied != len(blobs)-2 {
		t.Errorf("copied %d blobs; want the other %d", rep.BlobsCopied, len(blobs)-2)
	}
}

// A store that fails a request now and then costs a retry, not the
// migration; one that keeps failing ends it with its error.
func TestMigrate_RetriesAFailedCopy(t *testing.T) {
	a, b := embedded(t, "source"), embedded(t, "destination")
	fillSource(t, a)
	flaky := &failCommits{Store: b.Blobs}
	flaky.n.Store(2)
	dst := b
	dst.Blobs = flaky
	rep, out, err := run(t, t.Context(), a, dst, migrate.Options{Verify: true})
	if err != nil {
		t.Fatalf("migrate through two failed commits: %v", err)
	}
	if n := strings.Count(out, "flaky store; trying again"); n != 2 {
		t.Errorf("transcript reports %d retries; want 2:\n%s", n, out)
	}
	blobs, _ := a.bulk().LinkedBlobs(t.Context(), "", 1000)
	if rep.BlobsCopied != len(blobs) {
		t.Errorf("copied %d blobs; want %d", rep.BlobsCopied, len(blobs))
	}
	wantSame(t, a, b)

	c := embedded(t, "third")
	broken := &failCommits{Store: c.Blobs}
	broken.n.Store(1 << 30)
	dst = c
	dst.Blobs = broken
	if _, _, err := run(t, t.Context(), a, dst, migrate.Options{}); !errors.Is(err, errFlaky) {
		t.Errorf("migrate into a failing store = %v; want its error", err)
	}
}
