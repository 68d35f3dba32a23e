package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wharf/wharf/internal/blobstore"
	"github.com/wharf/wharf/internal/metadata"
)

// sweepUploadObjects is purgeOrphanUploads for a store that finds an
// upload's objects from the session's recorded state (S3): it removes
// each object of the upload area written before cutoff that no recorded
// state names. Without a session that is everything of the upload: a
// replica died mid-upload, or a purge's CancelUpload worked from a state
// that did not name all of it. With one, it is what a writer that never
// got its state recorded stored: the tail of a writer that had lost its
// lease, the multipart upload of the loser of two racing first writes.
//
// A state is read once per upload and may advance while its objects are
// judged; that is safe because an advance names only objects written
// during it, which are younger than cutoff unless one write streamed for
// the whole purge age, and a session that quiet is purged as stale anyway
// (StaleUploads goes by its last recorded write).
func (s *Service) sweepUploadObjects(ctx context.Context, sw blobstore.UploadSweeper, cutoff time.Time) (int, error) {
	removed := 0
	var id string
	var state []byte
	var live bool
	err := sw.WalkUploadObjects(ctx, func(o blobstore.UploadObject) error {
		if !o.Written.Before(cutoff) {
			return nil
		}
		if o.Upload != id {
			// An upload's objects are listed together: one lookup each.
			var err error
			state, err = s.meta.UploadStoreState(ctx, o.Upload)
			live = err == nil
			if err != nil && !errors.Is(err, metadata.ErrNotFound) {
				return err
			}
			id = o.Upload
		}
		if live && sw.Owns(o, state) {
			return nil
		}
		if err := sw.RemoveUploadObject(ctx, o); err != nil {
			return fmt.Errorf("discard orphan upload object: %w", err)
		}
		removed++
		s.log.InfoContext(ctx, "orphan upload object removed", "upload", o.Upload, "object", o.Name, "written", o.Written, "session_live", live)
		return nil
	})
	return removed, err
}
