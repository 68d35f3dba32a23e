package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

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
	// manifest.
	Grace time.Duration
	// Untagged also deletes manifests no tag or index reaches, and
	// referrers whose subject is gone.
	Untagged bool
	// DryRun reports what would go without removing anything. It cannot
	// count the blobs that only untagged manifests hold.
	DryRun bool
}

// DefaultGCGrace is the grace period when none is given.
const DefaultGCGrace = time.Hour

// GCReport is what a garbage collection removed (or would remove).
type GCReport struct {
	Manifests []metadata.ManifestRef
	Links     int64 // blob links no manifest of their repository used
	Blobs     int   // blobs whose bytes went
	Bytes     int64 // their size
	Scanned   int   // blobs looked at
	// BlobsSkipped says that the blob store cannot be walked (S3: nothing
	// lists the bucket), so no blob's bytes were looked at or removed.
	BlobsSkipped bool
}

// gcBatch is how many untagged manifests are listed at a time.
const gcBatch = 500

// CollectGarbage removes what no repository can reach any more: with
// Untagged, untagged manifests (repeatedly, as deleting an index frees its
// children); then links to blobs that no manifest of their repository
// uses; then the bytes of blobs that nothing references. It is safe while
// the registry serves: each deletion re-checks its condition, and a push
// that reuses a blob as it is collected either keeps it or stores it
// again (blobstore.Collector).
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

	if opts.Untagged {
		if err := s.collectManifests(ctx, meta, cutoff, opts.DryRun, &rep); err != nil {
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
		// Walking a bucket is the slow, racy GC of the CNCF registry that
		// wharf avoids; the sweep of unreferenced bytes on shared storage
		// belongs to the database (not built yet). Links are pruned.
		rep.BlobsSkipped = true
		s.log.InfoContext(ctx, "blob sweep skipped: the blob store cannot be walked")
		return rep, nil
	}
	err = blobs.Walk(ctx, func(d digest.Digest, size int64) error {
		rep.Scanned++
		used, err := meta.BlobInUse(ctx, d, linksBefore)
		if err != nil || used {
			return err
		}
		if opts.DryRun {
			rep.Blobs++
			rep.Bytes += size
			return nil
		}
		removed, err := blobs.Collect(ctx, d, cutoff)
		if err != nil {
			return fmt.Errorf("collect blob %s: %w", d, err)
		}
		if removed {
			rep.Blobs++
			rep.Bytes += size
			s.log.InfoContext(ctx, "blob collected", "digest", d, "bytes", size)
		}
		return nil
	})
	return rep, err
}

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
				s.log.InfoContext(ctx, "untagged manifest collected", "repo", ref.Repo, "digest", ref.Digest)
			}
		}
		if deleted == 0 {
			return nil
		}
	}
}
