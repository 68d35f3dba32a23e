// Package registry is wharf's domain: the rules of pushing and pulling
// blobs and manifests, over a metadata store and a blob store. It knows
// nothing about HTTP.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// DefaultMaxManifestSize is the largest manifest accepted, as in the
// distribution spec's recommendation.
const DefaultMaxManifestSize = 4 << 20

// Options tune the rules the service enforces.
type Options struct {
	// SparseManifests accepts manifests whose blobs and child manifests were
	// never pushed (what platform-filtered copies of indexes produce).
	SparseManifests bool
	// NoLineage detects and records no lineage, as over a store that keeps
	// none, with every other capability of the store: the baseline the
	// lineage benchmarks compare a push with.
	NoLineage bool
	// MaxManifestSize bounds manifest bodies; 0 means DefaultMaxManifestSize.
	MaxManifestSize int64
	// SmallBlobMax is the size up to which a blob whose bytes come whole
	// in one request is kept in the metadata store (smallblobs.go); 0
	// means DefaultSmallBlobMax, a negative size keeps every blob in the
	// blob store.
	SmallBlobMax int64
	// Now is the clock of garbage collection's grace period, of upload
	// sessions and of their janitor (default time.Now). Tests move it
	// instead of waiting.
	Now func() time.Time
	// GC configures the garbage collection job (gcrun.go).
	GC GCSchedule
	// UploadKey, the registry's secret key, lets a POST open an upload
	// session without recording it (uploadids.go), where only this
	// process writes the sessions; nil records every session at its POST.
	UploadKey []byte
	// UploadMaxAge is how long an unrecorded session's id stays valid:
	// the upload purge age (0: for ever, as sessions are never purged).
	UploadMaxAge time.Duration
}

// Service implements the registry's operations.
type Service struct {
	meta  metadata.Store
	blobs blobstore.Store
	log   *slog.Logger
	opts  Options

	// uploadLocks serialises writers of one upload session inside this
	// process, so that a second writer on this replica waits for the
	// first instead of failing. Where other processes write the sessions
	// too (PostgreSQL), a writer also claims the session in the database
	// (uploadlease.go); where only this one does (SQLite, whose file and
	// filesystem blob store are one machine's), this lock is the whole
	// guard and a chunk costs no claim.
	uploadLocks uploadLocks

	// ids signs the ids of sessions a POST opens without recording them,
	// and ended records their ends; both nil when every session is
	// recorded (uploadids.go).
	ids   *uploadIDs
	ended metadata.EndedUploads

	// pulls counts manifest pulls in memory (pulls.go).
	pulls pullCounter

	// pushes counts the writes of pushes, for collections to yield to
	// (gcpace.go).
	pushes pushActivity

	// manifests caches manifest bytes by digest for pulls (manifestcache.go).
	manifests manifestCache

	// policies are the per-repository settings (policy.go); nil when the
	// metadata store keeps none.
	policies *Policies

	// lineage is the metadata store's lineage, nil when it keeps none;
	// golden tracks which policy version its golden flags follow
	// (lineage.go).
	lineage metadata.LineageStore
	golden  goldenSync

	// gcRuns is the garbage collection job, nil when the metadata store
	// cannot lease it and record its runs.
	gcRuns *GCRuns

	// small is the metadata store's keeping of small blobs' bytes
	// (smallblobs.go), nil when it keeps none; Options.SmallBlobMax says
	// which new blobs go there.
	small metadata.SmallBlobs
}

// New returns a Service over the given stores.
func New(meta metadata.Store, blobs blobstore.Store, log *slog.Logger, opts Options) *Service {
	if opts.MaxManifestSize <= 0 {
		opts.MaxManifestSize = DefaultMaxManifestSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SmallBlobMax == 0 {
		opts.SmallBlobMax = DefaultSmallBlobMax
	}
	s := &Service{meta: meta, blobs: blobs, log: log, opts: opts}
	s.small, _ = meta.(metadata.SmallBlobs)
	if ps, ok := meta.(metadata.PolicyStore); ok {
		s.policies = NewPolicies(ps, log)
	}
	if ls, ok := meta.(metadata.LineageStore); ok && s.policies != nil && !opts.NoLineage {
		s.lineage = ls
	}
	s.gcRuns = newGCRuns(s, opts.GC)
	s.ids, s.ended = unrecordedSessions(meta, opts.UploadKey)
	return s
}

// Policies returns the per-repository settings, nil if the metadata store
// keeps none.
func (s *Service) Policies() *Policies { return s.policies }

// MaxManifestSize is the largest manifest body the service accepts.
func (s *Service) MaxManifestSize() int64 { return s.opts.MaxManifestSize }

// Ready reports whether both stores answer.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.meta.Ping(ctx); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if err := s.blobs.Ping(ctx); err != nil {
		return fmt.Errorf("blobstore: %w", err)
	}
	return nil
}

// Catalog lists repository names after last, at most n.
func (s *Service) Catalog(ctx context.Context, last string, n int) ([]string, error) {
	keep := repoFilter(ctx)
	if keep == nil {
		return s.meta.ListRepositories(ctx, last, n)
	}
	// Filtering happens after the query, so read in batches until the page
	// is full or the names run out.
	const batch = 500
	out := []string{}
	for n < 0 || len(out) < n {
		names, err := s.meta.ListRepositories(ctx, last, batch)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			ok, err := keep(ctx, name)
			if err != nil {
				return nil, err
			}
			if ok && (n < 0 || len(out) < n) {
				out = append(out, name)
			}
		}
		if len(names) < batch {
			break
		}
		last = names[len(names)-1]
	}
	return out, nil
}

// Tags lists the tags of repo after last, at most n.
func (s *Service) Tags(ctx context.Context, repo, last string, n int) ([]string, error) {
	if err := ValidateName(repo); err != nil {
		return nil, err
	}
	tags, err := s.meta.ListTags(ctx, repo, last, n)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, Errorf(ErrNameUnknown, "repository %s not found", repo).withDetail(map[string]any{"name": repo})
	}
	return tags, err
}

// Stats summarises what the registry holds.
func (s *Service) Stats(ctx context.Context) (metadata.Stats, error) {
	return s.meta.Stats(ctx)
}
