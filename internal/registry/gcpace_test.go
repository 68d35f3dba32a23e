package registry_test

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry"
)

// blockingReader hands out one byte, says so on started, then blocks
// until release is closed: a chunk whose client is still sending.
type blockingReader struct {
	started chan struct{}
	release chan struct{}
	sent    bool
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		p[0] = 'x'
		close(r.started)
		return 1, nil
	}
	<-r.release
	return 0, io.EOF
}

// gcYields reads how often a run paused for pushes from its summary.
func gcYields(t *testing.T, run metadata.Run) int {
	t.Helper()
	var sum struct {
		Yields int `json:"yields"`
	}
	if err := json.Unmarshal([]byte(run.Summary), &sum); err != nil {
		t.Fatalf("summary %q: %v", run.Summary, err)
	}
	return sum.Yields
}

// A collection yields to pushes: while a chunk is being received, it
// pauses after each step (and says so in its report), and it still
// collects everything; alone, it never pauses.
func TestCollectGarbage_YieldsToPushesUnderWay(t *testing.T) {
	ctx := t.Context()
	c := clocktest.New()
	svc := gcReplica(t, t.TempDir(), c, registry.GCSchedule{Grace: time.Hour, Replica: "a"})
	seed := func(round int) {
		t.Helper()
		for i := range 3 {
			img := newTestImage(fmt.Appendf(nil, "config %d/%d", round, i), fmt.Appendf(nil, "layer %d/%d", round, i))
			if err := img.push(ctx, svc, "team/app", "v1"); err != nil {
				t.Fatal(err)
			}
			if err := svc.DeleteManifest(ctx, "team/app", img.digest().String()); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(2 * time.Hour)
	}

	seed(1)
	alone, err := svc.GCRuns().Run(ctx, "admin")
	if err != nil || alone.Outcome != metadata.RunOK || alone.Blobs != 6 {
		t.Fatalf("run alone = %+v, %v; want 6 blobs collected", alone, err)
	}
	if n := gcYields(t, alone); n != 0 {
		t.Errorf("a run with no push under way paused %d times", n)
	}

	seed(2)
	up, err := svc.StartUpload(ctx, "team/other", digest.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	chunk := &blockingReader{started: make(chan struct{}), release: make(chan struct{})}
	written := make(chan error, 1)
	go func() {
		_, err := svc.WriteUpload(ctx, "team/other", up.ID, 0, chunk, -1)
		written <- err
	}()
	<-chunk.started
	busy, err := svc.GCRuns().Run(ctx, "admin")
	close(chunk.release)
	if err != nil || busy.Outcome != metadata.RunOK || busy.Blobs != 6 {
		t.Fatalf("run beside a push = %+v, %v; want 6 blobs collected", busy, err)
	}
	if n := gcYields(t, busy); n == 0 {
		t.Errorf("a run beside a chunk being received never paused; summary %s", busy.Summary)
	}
	if err := <-written; err != nil {
		t.Errorf("the chunk: %v", err)
	}
}
