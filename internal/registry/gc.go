package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// GCOptions says what a garbage collection may remove.
type GCOptions struct {
	// Grace protects what was pushed, linked or reused less than this long
	// ago: it may belong to a push still under way (layers go up before
	// their manifest, an index's children before the index). A pusher's
	// blob HEAD or mount renews a link (LinkRenewAfter), so the grace must
	// exceed that by the longest a push takes from its HEADs to its
	// manifest. On a blob store that cannot guard its own blobs (S3) it
	// must also exceed one blob commit, from the commit's KeepBlob to its
	// link (metadata.Collector.KeepBlob), which a whole push already does.
	Grace time.Duration
	// Untagged also deletes manifests no tag or index reaches, and
	// referrers whose subject is gone.
	Untagged bool
	// UntaggedAge keeps untagged manifests pushed less than this long ago
	// (never less than Grace): time for a client to tag what it pushed by
	// digest, or for someone to notice a tag moved by mistake.
	UntaggedAge time.Duration
	// DryRun reports what would go without removing anything. It cannot
	// count the blobs that only untagged manifests hold.
	DryRun bool
}

// GCActor is the actor of what a collection that nobody started deletes.
const GCActor = "gc"

// DefaultGCGrace is the grace period when none is given.
const DefaultGCGrace = time.Hour

// GCReport is what a garbage collection removed (or would remove).
type GCReport struct {
	Manifests []metadata.ManifestRef
	Links     int64 // blob links no manifest of their repository used
	Blobs     int   // blobs whose bytes went
	Bytes     int64 // their size
	// Scanned is how many blobs were looked at: every stored blob on a
	// store that is walked (the filesystem), the unreferenced ones that
	// the database records on one that is not (S3).
	Scanned int
}

// gcBatch is how many untagged manifests are listed, or walked blobs
// judged, at a time.
const gcBatch = 500

// gcCollectors is how many blob files a collection removes at once.
const gcCollectors = 8

// CollectGarbage removes what no repository can reach any more: with
// Untagged, untagged manifests (repeatedly, as deleting an index frees its
// children); then links to blobs that no manifest of their repository
// uses; then the bytes of blobs that nothing references. It is safe while
// the registry serves, from any replica: each deletion re-checks its
// condition, and a push that reuses a blob as it is collected either keeps
// it or stores it again. The filesystem store guards that race itself
// (blobstore.Collector) and is walked, which also finds bytes that no
// record knows; on any other store (S3, which nothing lists) the database
// says which blobs are unreferenced and guards the race (sweepRecorded).
func (s *Service) CollectGarbage(ctx context.Context, opts GCOptions) (GCReport, error) {
	var rep GCReport
	meta, ok := s.meta.(metadata.Collector)
	if !ok {
		return rep, errors.New("garbage collection: the metadata store cannot collect")
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGCGrace
	}
	cutoff := s.opts.Now().Add(-opts.Grace)
	// The manifests it deletes are delete events by whoever started the
	// run, or by the collection itself when no one did (a schedule).
	if Actor(ctx) == "" {
		ctx = WithActor(ctx, GCActor)
	}
	ctx = withChangeActor(ctx)

	if opts.Untagged {
		if err := s.collectManifests(ctx, meta, s.opts.Now().Add(-max(opts.Grace, opts.UntaggedAge)), opts.DryRun, &rep); err != nil {
			return rep, err
		}
	}
	n, err := meta.PruneBlobLinks(ctx, cutoff, opts.DryRun)
	if err != nil {
		return rep, err
	}
	rep.Links = n
	// A real run counts every link that pruning left: one whose manifest
	// was deleted since is pruned by the next run. A dry run pruned
	// nothing, so it discounts the links pruning would remove.
	linksBefore := time.Time{}
	if opts.DryRun {
		linksBefore = cutoff
	}
	blobs, ok := s.blobs.(blobstore.Collector)
	if !ok {
		// Walking a bucket is the slow, racy GC of the CNCF registry
		// that wharf avoids: the database knows every stored blob.
		return rep, s.sweepRecorded(ctx, meta, cutoff, linksBefore, opts.DryRun, &rep)
	}
	// Walked blobs are judged a batch at a time: one query says which are
	// in use, and one transaction drops the records of those removed.
	// Checking a batch early is as safe as checking each blob just before
	// its Collect: what guards the bytes from a push reusing them is the
	// file's time, which Collect checks against a cutoff fixed beforehand.
	var batch []walkedBlob
	flush := func() error {
		err := s.collectWalked(ctx, meta, blobs, batch, cutoff, linksBefore, opts.DryRun, &rep)
		batch = batch[:0]
		return err
	}
	err = blobs.Walk(ctx, func(d digest.Digest, size int64) error {
		rep.Scanned++
		if batch = append(batch, walkedBlob{d, size}); len(batch) >= gcBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	return rep, flush()
}

// walkedBlob is a blob a walk of the store found.
type walkedBlob struct {
	digest digest.Digest
	size   int64
}

// collectWalked removes the bytes of those of batch that nothing uses,
// and then their records.
func (s *Service) collectWalked(ctx context.Context, meta metadata.Collector, blobs blobstore.Collector,
	batch []walkedBlob, cutoff, linksBefore time.Time, dryRun bool, rep *GCReport) error {
	if len(batch) == 0 {
		return nil
	}
	ds := make([]digest.Digest, len(batch))
	for i, b := range batch {
		ds[i] = b.digest
	}
	used, err := meta.BlobsInUse(ctx, ds, linksBefore)
	if err != nil {
		return err
	}
	var unused []walkedBlob
	for _, b := range batch {
		if !used[b.digest] {
			unused = append(unused, b)
		}
	}
	removed := make([]bool, len(unused))
	var collectErr error
	if !dryRun {
		// Removing a file mostly waits for the filesystem's journal,
		// and removals waiting together share that wait.
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(gcCollectors)
		for i, b := range unused {
			g.Go(func() error {
				var err error
				if removed[i], err = blobs.Collect(gctx, b.digest, cutoff); err != nil {
					return fmt.Errorf("collect blob %s: %w", b.digest, err)
				}
				return nil
			})
		}
		collectErr = g.Wait()
	}
	gone := ds[:0]
	for i, b := range unused {
		if !dryRun {
			if !removed[i] {
				continue
			}
			gone = append(gone, b.digest)
			s.log.InfoContext(ctx, "blob collected", "digest", b.digest, "bytes", b.size)
		}
		rep.Blobs++
		rep.Bytes += b.size
	}
	return errors.Join(collectErr, s.dropRecords(ctx, meta, gone, cutoff))
}

// dropRecords deletes the records of the blobs whose bytes a collection
// removed, unless a push has dated them since (the files' times, not the
// records, guard the bytes here); even when the run is cancelled, as the
// bytes are gone.
func (s *Service) dropRecords(ctx context.Context, meta metadata.Collector, ds []digest.Digest, cutoff time.Time) error {
	_, err := meta.DeleteUnusedBlobRecords(context.WithoutCancel(ctx), ds, cutoff)
	return err
}

// sweepRecorded removes the bytes of the blobs the database records that
// nothing references and nothing used since cutoff, one page at a time.
// Each goes in the transaction that deletes its record (DeleteUnusedBlob),
// so a push of the same blob on any replica either waits and then stores
// its own bytes, or has dated the record and the bytes stay. Collections
// on several replicas skip each other's records.
func (s *Service) sweepRecorded(ctx context.Context, meta metadata.Collector, cutoff, linkSince time.Time, dryRun bool, rep *GCReport) error {
	var after digest.Digest
	for {
		page, err := meta.UnusedBlobs(ctx, cutoff, linkSince, after, gcBatch)
		if err != nil {
			return err
		}
		for _, b := range page {
			rep.Scanned++
			if dryRun {
				rep.Blobs++
				rep.Bytes += b.Size
				continue
			}
			removed, err := meta.DeleteUnusedBlob(ctx, b.Digest, cutoff, func(ctx context.Context) error {
				err := s.blobs.Delete(ctx, b.Digest)
				if errors.Is(err, blobstore.ErrNotFound) {
					// Removed by a collection that died before its
					// record's deletion committed, or never stored.
					return nil
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("collect blob %s: %w", b.Digest, err)
			}
			if removed {
				rep.Blobs++
				rep.Bytes += b.Size
				s.log.InfoContext(ctx, "blob collected", "digest", b.Digest, "bytes", b.Size)
			}
		}
		if len(page) < gcBatch {
			return nil
		}
		after = page[len(page)-1].Digest
	}
}

// collectManifests deletes the manifests pushed before cutoff that
// nothing holds. What holds a manifest (a tag, a kept index, a live
// subject, and later the tag history's window) is one rule in the
// metadata store (sqldb's manifestHeld), re-checked by each deletion.
func (s *Service) collectManifests(ctx context.Context, meta metadata.Collector, cutoff time.Time, dryRun bool, rep *GCReport) error {
	for {
		refs, err := meta.UntaggedManifests(ctx, cutoff, gcBatch)
		if err != nil {
			return err
		}
		if dryRun {
			// Without deleting, the next batch would be the same one.
			rep.Manifests = append(rep.Manifests, refs...)
			return nil
		}
		deleted := 0
		for _, ref := range refs {
			ok, err := meta.DeleteUntaggedManifest(ctx, ref, cutoff)
			if err != nil {
				return err
			}
			if ok {
				deleted++
				rep.Manifests = append(rep.Manifests, ref)
				s.log.InfoContext(ctx, "untagged manifest collected", "user", Actor(ctx), "repo", ref.Repo, "digest", ref.Digest)
			}
		}
		if deleted == 0 {
			return nil
		}
	}
}
