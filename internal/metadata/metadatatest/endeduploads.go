package metadatatest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

func ender(t *testing.T, s metadata.Store) metadata.EndedUploads {
	t.Helper()
	e, ok := s.(metadata.EndedUploads)
	if !ok {
		t.Skip("the store does not record ended upload sessions")
	}
	return e
}

func wantEnded(t *testing.T, e metadata.EndedUploads, repo, id string, want bool) {
	t.Helper()
	got, err := e.UploadEnded(t.Context(), repo, id)
	if err != nil || got != want {
		t.Errorf("UploadEnded(%s, %s) = %v, %v; want %v", repo, id, got, err, want)
	}
}

// A session never recorded is finished in one call: the blob is linked
// and the id is ended, in that repository only.
func testFinishEndedUploadUnrecorded(t *testing.T, s metadata.Store) {
	e := ender(t, s)
	id, d := newUploadID(), blobDigest("ended")
	wantEnded(t, e, "repo", id, false)
	if err := e.FinishEndedUpload(t.Context(), "repo", id, timeAt(-time.Minute), d, 42); err != nil {
		t.Fatalf("FinishEndedUpload: %v", err)
	}
	wantBlobSize(t, s, "repo", d, 42)
	wantEnded(t, e, "repo", id, true)
	wantEnded(t, e, "other", id, false)
	wantNoUpload(t, s, "repo", id)
	// A retry (its answer was lost) finds the id ended and succeeds.
	if err := e.FinishEndedUpload(t.Context(), "repo", id, timeAt(-time.Minute), d, 42); err != nil {
		t.Fatalf("FinishEndedUpload again: %v", err)
	}
}

// A session that got a row (a PATCH wrote to it) loses it when it
// finishes or is cancelled, and other sessions keep theirs.
func testEndUploadRemovesRecord(t *testing.T, s metadata.Store) {
	e := ender(t, s)
	finished, cancelled, keep := newUpload(t, "repo"), newUpload(t, "repo"), newUpload(t, "repo")
	for _, u := range []*metadata.Upload{finished, cancelled, keep} {
		createUpload(t, s, u)
	}
	d := blobDigest("finished")
	if err := e.FinishEndedUpload(t.Context(), "repo", finished.ID, finished.StartedAt, d, 7); err != nil {
		t.Fatalf("FinishEndedUpload: %v", err)
	}
	if err := e.EndUpload(t.Context(), "repo", cancelled.ID, cancelled.StartedAt); err != nil {
		t.Fatalf("EndUpload: %v", err)
	}
	if err := e.EndUpload(t.Context(), "repo", cancelled.ID, cancelled.StartedAt); err != nil {
		t.Fatalf("EndUpload twice: %v", err)
	}
	for _, u := range []*metadata.Upload{finished, cancelled} {
		wantNoUpload(t, s, "repo", u.ID)
		wantEnded(t, e, "repo", u.ID, true)
	}
	wantBlobSize(t, s, "repo", d, 7)
	wantUpload(t, s, keep)
	wantEnded(t, e, "repo", keep.ID, false)
}

// Ended records are forgotten by their session's start time.
func testForgetEndedUploads(t *testing.T, s metadata.Store) {
	e := ender(t, s)
	var old, recent []string
	for i := range 5 {
		id := fmt.Sprintf("%s-%d", newUploadID(), i)
		started := timeAt(-time.Hour)
		if i%2 == 0 {
			started = timeAt(-time.Minute)
			recent = append(recent, id)
		} else {
			old = append(old, id)
		}
		if err := e.EndUpload(t.Context(), "repo", id, started); err != nil {
			t.Fatalf("EndUpload: %v", err)
		}
	}
	n, err := e.ForgetEndedUploads(t.Context(), timeAt(-30*time.Minute))
	if err != nil || n != len(old) {
		t.Fatalf("ForgetEndedUploads = %d, %v; want %d", n, err, len(old))
	}
	for _, id := range old {
		wantEnded(t, e, "repo", id, false)
	}
	for _, id := range recent {
		wantEnded(t, e, "repo", id, true)
	}
}
