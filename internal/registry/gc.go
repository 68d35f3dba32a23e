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
	// Yields counts the pauses the run made for pushes under way, and
	// Yielded is their total length (gcpace.go).
	Yields  int
	Yielded time.Duration
}

// gcBatch is how many untagged manifests are listed, or walked blobs
// judged, at a time.
const gcBatch = 500

// gcCollectors is how many blob files a collection removes at once.
const gcCollectors = 8

// gcRemoveStep is how many blob files a collection removes between two
// looks at whether pushes are under way (gcPacer.step).
const gcRemoveStep = 4 * gcCollectors

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
	pace := s.newGCPacer()
	err := s.collect(ctx, meta, opts, cutoff, pace, &rep)
	rep.Yields, rep.Yielded = pace.yields, pace.yielded
	return rep, err
}

// collect is CollectGarbage's work, paced by pace.
func (s *Service) collect(ctx context.Context, meta metadata.Collector, opts GCOptions, cutoff time.Time, pace *gcPacer, rep *GCReport) error {
	if opts.Untagged {
		if err := s.collectManifests(ctx, meta, s.opts.Now().Add(-max(opts.Grace, opts.UntaggedAge)), opts.DryRun, pace, rep); err != nil {
			return err
		}
	}
	n, err := meta.PruneBlobLinks(ctx, cutoff, opts.DryRun)
	if err != nil {
		return err
	}
	rep.Links = n
	if err := pace.step(ctx); err != nil {
		return err
	}
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
		return s.sweepRecorded(ctx, meta, cutoff, linksBefore, opts.DryRun, pace, rep)
	}
	w := &walkCollection{meta: meta, blobs: blobs, cutoff: cutoff, linksBefore: linksBefore, dryRun: opts.DryRun, pace: pace, rep: rep}
	if err := s.walkAndCollect(ctx, w); err != nil {
		return err
	}
	// The bytes of small blobs live in their records, which the walk
	// does not find (on a store that is not walked, the sweep above
	// deletes those records with the others).
	return s.collectSmall(ctx, cutoff, linksBefore, opts.DryRun, pace, rep)
}

// walkAndCollect walks the blob store and removes the blobs nothing uses.
func (s *Service) walkAndCollect(ctx context.Context, w *walkCollection) (err error) {
	// Walked blobs are judged a batch at a time: one query says which are
	// in use. Checking a batch early is as safe as checking each blob just
	// before its Collect: what guards the bytes from a push reusing them
	// is the file's time, which Collect checks against a cutoff fixed
	// beforehand. The records of the blobs removed are dropped gcBatch at
	// a time, each time in one transaction (a commit waits for the disk),
	// and whatever happens to the run, the ones left at its end.
	defer func() { err = errors.Join(err, s.dropRecords(ctx, w.meta, w.gone, w.cutoff)) }()
	var batch []digest.Digest
	flush := func() error {
		err := s.collectWalked(ctx, w, batch)
		batch = batch[:0]
		return err
	}
	err = w.blobs.Walk(ctx, func(d digest.Digest) error {
		w.rep.Scanned++
		if batch = append(batch, d); len(batch) >= gcBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// walkCollection is the state of a collection that walks the blob store.
type walkCollection struct {
	meta                metadata.Collector
	blobs               blobstore.Collector
	cutoff, linksBefore time.Time
	dryRun              bool
	pace                *gcPacer
	rep                 *GCReport
	// gone are the blobs removed whose records are still to drop.
	gone []digest.Digest
}

// collectWalked removes the bytes of those of batch that nothing uses, a
// step at a time, and drops their records once gcBatch have gone.
func (s *Service) collectWalked(ctx context.Context, w *walkCollection, batch []digest.Digest) error {
	if len(batch) == 0 {
		return nil
	}
	used, err := w.meta.BlobsInUse(ctx, batch, w.linksBefore)
	if err != nil {
		return err
	}
	var unused []digest.Digest
	for _, d := range batch {
		if !used[d] {
			unused = append(unused, d)
		}
	}
	if w.dryRun {
		for _, d := range unused {
			size, err := s.blobs.Stat(ctx, d)
			if errors.Is(err, blobstore.ErrNotFound) {
				continue // removed meanwhile
			}
			if err != nil {
				return err
			}
			w.rep.Blobs++
			w.rep.Bytes += size
		}
		return nil
	}
	for len(unused) > 0 {
		step := unused[:min(len(unused), gcRemoveStep)]
		unused = unused[len(step):]
		if err := s.removeWalked(ctx, w, step); err != nil {
			return err
		}
		if len(w.gone) >= gcBatch {
			err := s.dropRecords(ctx, w.meta, w.gone, w.cutoff)
			w.gone = w.gone[:0]
			if err != nil {
				return err
			}
		}
		if err := w.pace.step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// removeWalked removes the files of blobs, gcCollectors at a time.
func (s *Service) removeWalked(ctx context.Context, w *walkCollection, blobs []digest.Digest) error {
	removed := make([]bool, len(blobs))
	sizes := make([]int64, len(blobs))
	// Removing a file mostly waits for the filesystem's journal, and
	// removals waiting together share that wait.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gcCollectors)
	for i, d := range blobs {
		g.Go(func() error {
			var err error
			if sizes[i], removed[i], err = w.blobs.Collect(gctx, d, w.cutoff); err != nil {
				return fmt.Errorf("collect blob %s: %w", d, err)
			}
			return nil
		})
	}
	err := g.Wait()
	for i, d := range blobs {
		if !removed[i] {
			continue
		}
		w.gone = append(w.gone, d)
		w.rep.Blobs++
		w.rep.Bytes += sizes[i]
		s.log.InfoContext(ctx, "blob collected", "digest", d, "bytes", sizes[i])
	}
	return err
}

// dropRecords deletes the records of the blobs whose bytes a collection
// removed, unless a push has dated them since (the files' times, not the
// records, guard the bytes here); even when the run is cancelled, as the
// bytes are gone.
func (s *Service) dropRecords(ctx context.Context, meta metadata.Collector, ds []digest.Digest, cutoff time.Time) error {
	if len(ds) == 0 {
		return nil
	}
	_, err := meta.DeleteUnusedBlobRecords(context.WithoutCancel(ctx), ds, cutoff)
	return err
}

// sweepRecorded removes the bytes of the blobs the database records that
// nothing references and nothing used since cutoff, one page at a time.
// Each goes in the transaction that deletes its record (DeleteUnusedBlob),
// so a push of the same blob on any replica either waits and then stores
// its own bytes, or has dated the record and the bytes stay. Collections
// on several replicas skip each other's records.
func (s *Service) sweepRecorded(ctx context.Context, meta metadata.Collector, cutoff, linkSince time.Time, dryRun bool, pace *gcPacer, rep *GCReport) error {
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
			if err := pace.step(ctx); err != nil {
				return err
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
func (s *Service) collectManifests(ctx context.Context, meta metadata.Collector, cutoff time.Time, dryRun bool, pace *gcPacer, rep *GCReport) error {
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
			if err := pace.step(ctx); err != nil {
				return err
			}
		}
		if deleted == 0 {
			return nil
		}
	}
}
