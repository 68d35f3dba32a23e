package server_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// offsetClock is the real time moved forward by an offset that a test
// sets: runs race pushes in real time, then the test jumps past the
// grace period instead of waiting it out.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// raceImage is one image a pusher pushed: a layer shared by all its
// images, and a config and layer of its own.
type raceImage struct {
	repo, tag string
	manifest  []byte
	base      []byte
	own       [][]byte // config, layer
	deleted   bool
}

func newRaceImage(pusher, i int, base []byte) *raceImage {
	img := &raceImage{repo: fmt.Sprintf("race/p%d", pusher), tag: fmt.Sprintf("v%d", i), base: base}
	config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"comment":"pusher %d image %d"}`, pusher, i)
	own := bytes.Repeat(fmt.Appendf(nil, "pusher %d image %d ", pusher, i), 100+i)
	img.own = [][]byte{config, own}
	img.manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s"},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s"}]}`,
		ociManifest, len(config), digest.FromBytes(config), len(base), digest.FromBytes(base), len(own), digest.FromBytes(own))
	return img
}

func (img *raceImage) blobs() [][]byte { return append([][]byte{img.base}, img.own...) }

// push uploads the blobs and the tagged manifest. A manifest refused
// because a blob went meanwhile (a push slower than the grace period) is
// pushed again, blobs and all, and counted.
func (img *raceImage) push(w *gcWorld, retries *atomic.Int64) error {
	for attempt := 0; ; attempt++ {
		p := &racePush{repo: img.repo}
		for _, b := range img.blobs() {
			if err := p.upload(w, b); err != nil {
				return err
			}
		}
		status, body, err := w.send("PUT", "/v2/"+img.repo+"/manifests/"+img.tag, ociManifest, img.manifest)
		switch {
		case err != nil:
			return err
		case status == http.StatusCreated:
			return nil
		case status == http.StatusBadRequest && bytes.Contains(body, []byte("MANIFEST_BLOB_UNKNOWN")) && attempt < 3:
			retries.Add(1)
		default:
			return fmt.Errorf("push %s:%s: %d %s", img.repo, img.tag, status, body)
		}
	}
}

type gcRunJSON struct {
	ID             int64  `json:"id"`
	Outcome        string `json:"outcome"`
	Error          string `json:"error"`
	Trigger        string `json:"trigger"`
	ManifestsGone  int64  `json:"manifests_deleted"`
	BlobsGone      int64  `json:"blobs_deleted"`
	BytesReclaimed int64  `json:"bytes_reclaimed"`
}

// runGC starts a collection in the server through the admin API and
// waits for its report.
func (w *gcWorld) runGC() (gcRunJSON, error) {
	var run gcRunJSON
	status, body, err := w.send("POST", "/v2/admin/gc/runs?wait=true", "application/json", []byte("{}"))
	if err != nil {
		return run, err
	}
	if status != http.StatusCreated {
		return run, fmt.Errorf("POST /v2/admin/gc/runs: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &run); err != nil {
		return run, err
	}
	if run.Outcome != "ok" {
		return run, fmt.Errorf("gc run %d: %s %s", run.ID, run.Outcome, run.Error)
	}
	return run, nil
}

// storedBytes sums the blob files in the data directory.
// storedBytes is the size of every blob stored: the blob store's files
// and the small blobs the database keeps.
func (w *gcWorld) storedBytes(t *testing.T) int64 {
	t.Helper()
	var n int64
	db := w.database(t)
	if err := db.QueryRow(`SELECT COALESCE(SUM(LENGTH(content)), 0) FROM blobs WHERE content IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(filepath.Join(w.srv.Config.Storage.Filesystem.Root, "blobs"), func(_ string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// database opens the server's SQLite database beside it, for reading.
func (w *gcWorld) database(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+w.srv.Config.Database.SQLite.Path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// keptInDatabase reports whether the database keeps d's bytes (a small
// blob).
func (w *gcWorld) keptInDatabase(t *testing.T, d digest.Digest) bool {
	t.Helper()
	var n int
	if err := w.database(t).QueryRow(`SELECT COUNT(*) FROM blobs WHERE digest = ? AND content IS NOT NULL`, d.String()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// Garbage collection inside the server, started over and over through
// its admin API, races pushers that push tagged images and delete some of
// the earlier ones (by digest, or by their one tag, which leaves them
// untagged). The grace period and the untagged age are 2s, so the
// collections delete while the pushes go on. Afterwards every image still
// tagged validates (manifest and every blob, digests checked), and once
// the clock passes the grace period, a last run takes the space of every
// deleted image back: the blob files left are exactly the kept images'
// blobs, and the runs' reports account for every byte that went.
func TestGCInServe_RacesPushesAndDeletes(t *testing.T) {
	clk := &offsetClock{}
	srv := registrytest.NewServer(t, registrytest.WithClock(clk.Now), registrytest.WithConfig(func(c *config.Config) {
		c.GC.Grace, c.GC.UntaggedAge = 2*time.Second, 2*time.Second
	}))
	w := &gcWorld{srv: srv}
	const pushers, perPusher = 3, 18
	images := make([][]*raceImage, pushers)
	var retries atomic.Int64
	var wg sync.WaitGroup
	pushErrs := make([]error, pushers)
	for p := range pushers {
		base := bytes.Repeat(fmt.Appendf(nil, "base layer of pusher %d ", p), 200)
		wg.Go(func() {
			for i := range perPusher {
				img := newRaceImage(p, i, base)
				if err := img.push(w, &retries); err != nil {
					pushErrs[p] = err
					return
				}
				images[p] = append(images[p], img)
				if i%3 != 2 {
					continue
				}
				// Delete one of the earlier images, never the last.
				old := images[p][i-2]
				ref := old.tag
				if i%2 == 0 {
					ref = digest.FromBytes(old.manifest).String()
				}
				status, body, err := w.send("DELETE", "/v2/"+old.repo+"/manifests/"+ref, "", nil)
				if err == nil && status != http.StatusAccepted {
					err = fmt.Errorf("delete %s@%s: %d %s", old.repo, ref, status, body)
				}
				if err != nil {
					pushErrs[p] = err
					return
				}
				old.deleted = true
			}
		})
	}
	pushing := make(chan struct{})
	go func() { wg.Wait(); close(pushing) }()
	var runs []gcRunJSON
	var gcErr error
	for gcErr == nil {
		var run gcRunJSON
		if run, gcErr = w.runGC(); gcErr == nil {
			runs = append(runs, run)
		}
		select {
		case <-pushing:
		default:
			continue
		}
		break
	}
	<-pushing
	for p, err := range pushErrs {
		if err != nil {
			t.Errorf("pusher %d: %v", p, err)
		}
	}
	if gcErr != nil {
		t.Fatalf("collection during the pushes: %v", gcErr)
	}

	// Past the grace and the tag history's window (14 days by default),
	// which holds the manifests of the tags deleted by name until then.
	clk.off.Store(int64(15 * 24 * time.Hour))
	last, err := w.runGC()
	if err != nil {
		t.Fatal(err)
	}
	runs = append(runs, last)
	if again, err := w.runGC(); err != nil || again.BlobsGone != 0 || again.ManifestsGone != 0 {
		t.Errorf("a run after the last one = %+v, %v; want nothing left to collect", again, err)
	}

	var collectedDuring, reclaimed int64
	for i, r := range runs {
		reclaimed += r.BytesReclaimed
		if i < len(runs)-1 {
			collectedDuring += r.BlobsGone
		}
	}
	t.Logf("%d runs during the pushes collected %d blobs; %d pushes retried after a blob went", len(runs)-1, collectedDuring, retries.Load())

	kept, gone := map[digest.Digest]int64{}, map[digest.Digest]int64{}
	for _, list := range images {
		for _, img := range list {
			for i, b := range img.blobs() {
				d := digest.FromBytes(b)
				switch {
				case !img.deleted:
					kept[d] = int64(len(b))
				case i > 0:
					gone[d] = int64(len(b))
				}
			}
			if img.deleted {
				continue
			}
			status, body := w.do(t, "GET", "/v2/"+img.repo+"/manifests/"+img.tag, "", nil)
			if status != http.StatusOK || !bytes.Equal(body, img.manifest) {
				t.Errorf("%s:%s: %d, %d bytes", img.repo, img.tag, status, len(body))
			}
			for _, b := range img.blobs() {
				d := digest.FromBytes(b)
				if status, got := w.do(t, "GET", "/v2/"+img.repo+"/blobs/"+d.String(), "", nil); status != http.StatusOK || digest.FromBytes(got) != d {
					t.Errorf("%s:%s blob %s: %d, %d bytes", img.repo, img.tag, d, status, len(got))
				}
			}
		}
	}
	var keptBytes, goneBytes int64
	for _, n := range kept {
		keptBytes += n
	}
	for d, n := range gone {
		goneBytes += n
		if w.blobFile(t, d) || w.keptInDatabase(t, d) {
			t.Errorf("blob %s of a deleted image is still stored", d)
		}
	}
	if stored := w.storedBytes(t); stored != keptBytes {
		t.Errorf("%d bytes of blobs stored after the last run, want %d (the kept images')", stored, keptBytes)
	}
	// A retried push's blobs were collected once and stored again.
	if retries.Load() == 0 && reclaimed != goneBytes || reclaimed < goneBytes {
		t.Errorf("the runs' reports reclaimed %d bytes, the deleted images held %d", reclaimed, goneBytes)
	}

	// The reports, through the API and the admin page.
	status, body := w.do(t, "GET", "/v2/admin/gc/runs?page_size=1", "", nil)
	var page struct {
		Count   int         `json:"count"`
		Results []gcRunJSON `json:"results"`
	}
	if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
		t.Fatalf("GET /v2/admin/gc/runs = %d %s", status, body)
	}
	if page.Count != len(runs)+1 || len(page.Results) != 1 || page.Results[0].ID != last.ID+1 {
		t.Errorf("the API lists %d runs, newest %+v; want %d, newest %d", page.Count, page.Results, len(runs)+1, last.ID+1)
	}
	_, metrics := w.do(t, "GET", "/metrics", "", nil)
	if want := fmt.Sprintf("wharf_gc_runs_total{outcome=\"ok\"} %d\n", len(runs)+1); !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %q", want)
	}
	status, body = w.do(t, "GET", "/admin/gc", "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf(`data-run="%d"`, last.ID)) {
		t.Errorf("GET /admin/gc = %d, without run %d", status, last.ID)
	}
}
