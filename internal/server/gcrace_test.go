package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	_ "modernc.org/sqlite" // to backdate links as an hour-old push left them

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

// backdate makes every blob link and blob file in w an hour old, as if
// pushed by a push that never sent its manifest: fair game for a
// collection with a shorter grace.
func (w *gcWorld) backdate(t *testing.T) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+w.srv.Config.Database.SQLite.Path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `UPDATE repo_blobs SET created_at = created_at - ?`, time.Hour.Nanoseconds()); err != nil {
		t.Fatal(err)
	}
	hourAgo := time.Now().Add(-time.Hour)
	root := filepath.Join(w.srv.Config.Storage.Filesystem.Root, "blobs")
	err = filepath.WalkDir(root, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		return os.Chtimes(path, hourAgo, hourAgo)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// send is a request that goroutines can make: errors are returned.
func (w *gcWorld) send(method, path, mediaType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, w.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if mediaType != "" {
		req.Header.Set("Content-Type", mediaType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// racePush is one client push of an image whose layer the registry may
// already hold: in its own repository (the client HEADs it) or in a base
// repository (the client mounts it). A layer found present is skipped.
type racePush struct {
	repo, from string // from: mount from there instead of HEAD
	layer      []byte
	config     []byte
	manifest   []byte
}

func newRacePush(i int, from string, layer []byte) *racePush {
	p := &racePush{repo: fmt.Sprintf("race/app%d", i), from: from, layer: layer}
	p.config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"comment":"push %d"}`, i)
	p.manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s"}]}`,
		ociManifest, len(p.config), digest.FromBytes(p.config), len(layer), digest.FromBytes(layer))
	return p
}

// layerPresent asks the registry for the layer as a client deciding
// whether to upload it does, and reports whether it may skip it.
func (p *racePush) layerPresent(w *gcWorld) (bool, error) {
	d := digest.FromBytes(p.layer)
	if p.from == "" {
		status, _, err := w.send("HEAD", "/v2/"+p.repo+"/blobs/"+d.String(), "", nil)
		return status == http.StatusOK, err
	}
	status, b, err := w.send("POST", "/v2/"+p.repo+"/blobs/uploads/?mount="+d.String()+"&from="+p.from, "", nil)
	if err != nil || status == http.StatusCreated {
		return status == http.StatusCreated, err
	}
	if status != http.StatusAccepted {
		return false, fmt.Errorf("mount: %d %s", status, b)
	}
	return false, nil // a session to upload into; the monolithic push below makes its own
}

func (p *racePush) upload(w *gcWorld, content []byte) error {
	status, b, err := w.send("POST", "/v2/"+p.repo+"/blobs/uploads/?digest="+digest.FromBytes(content).String(), "application/octet-stream", content)
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("upload blob: %d %s", status, b)
	}
	return err
}

func (p *racePush) finish(w *gcWorld, skipped bool) error {
	if !skipped {
		if err := p.upload(w, p.layer); err != nil {
			return err
		}
	}
	if err := p.upload(w, p.config); err != nil {
		return err
	}
	status, b, err := w.send("PUT", "/v2/"+p.repo+"/manifests/latest", ociManifest, p.manifest)
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("push manifest: %d %s", status, b)
	}
	return err
}

// newRacePushes sets up n pushes numbered from first, half of which HEAD
// a layer their repository holds, half mount one from race/base; an
// interrupted push left each layer behind without a manifest.
func newRacePushes(t *testing.T, w *gcWorld, first, n int) []*racePush {
	t.Helper()
	var ps []*racePush
	for i := first; i < first+n; i++ {
		layer := bytes.Repeat(fmt.Appendf(nil, "layer %d ", i), 40)
		from := ""
		if i%2 == 1 {
			from = "race/base"
		}
		p := newRacePush(i, from, layer)
		if from == "" {
			pushBlob(t, w.srv.URL, p.repo, layer)
		} else {
			pushBlob(t, w.srv.URL, from, layer)
		}
		ps = append(ps, p)
	}
	return ps
}

// raceRound runs the pushes concurrently. Each one's HEAD or mount comes
// first; then, if between is set, it runs while every push stands between
// its HEAD and its manifest; then the pushes finish. It returns each
// push's error and how many skipped their layer.
func raceRound(ps []*racePush, w *gcWorld, between func()) ([]error, int64) {
	var headed, pushed sync.WaitGroup
	headed.Add(len(ps))
	afterHeads := make(chan struct{})
	var skipped atomic.Int64
	errs := make([]error, len(ps))
	for i, p := range ps {
		pushed.Go(func() {
			present, err := p.layerPresent(w)
			headed.Done()
			if err != nil {
				errs[i] = err
				return
			}
			if present {
				skipped.Add(1)
			}
			<-afterHeads
			errs[i] = p.finish(w, present)
		})
	}
	headed.Wait()
	if between != nil {
		between()
	}
	close(afterHeads)
	pushed.Wait()
	return errs, skipped.Load()
}

// Pushes that skip layers the registry already holds, after a HEAD or by a
// mount, race repeated garbage collections whose grace has long passed for
// those layers. The HEAD and the mount renew the links, so every push
// succeeds and every pushed blob stays; a HEAD that finds its link pruned
// answers 404, and the layer is uploaded again. The first round has a
// collection run while every push stands between its HEAD and its
// manifest, the worst moment; in the second, HEADs and collections race
// freely.
func TestGC_PushesThatSkipLayersRaceCollections(t *testing.T) {
	w := newGCWorld(t)
	const perRound, waves, perWave = 40, 5, 8
	grace := registry.GCOptions{Grace: time.Minute}
	first := newRacePushes(t, w, 0, perRound)
	w.backdate(t)

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var collections atomic.Int64
	gcErr := make(chan error, 1)
	collectRepeatedly := func() {
		go func() {
			defer close(gcErr)
			for ctx.Err() == nil {
				if _, err := w.reg.CollectGarbage(ctx, grace); err != nil && ctx.Err() == nil {
					gcErr <- err
					return
				}
				collections.Add(1)
			}
		}()
	}

	errs, skipped := raceRound(first, w, func() {
		if _, err := w.reg.CollectGarbage(t.Context(), grace); err != nil {
			t.Errorf("collection between HEADs and manifests: %v", err)
		}
		collectRepeatedly()
	})
	t.Logf("round 1: %d pushes, %d skipped their layer", perRound, skipped)
	if skipped != perRound {
		t.Errorf("round 1: %d of %d pushes found their layer; all should (nothing collected before the HEADs)", skipped, perRound)
	}
	// In waves, so that each wave's HEADs meet the collections with their
	// links still in place, some before a prune and some after.
	ps := first
	skipped = 0
	for wave := range waves {
		next := newRacePushes(t, w, perRound+wave*perWave, perWave)
		w.backdate(t)
		werrs, wskipped := raceRound(next, w, nil)
		ps, errs, skipped = append(ps, next...), append(errs, werrs...), skipped+wskipped
	}
	stop()
	if err := <-gcErr; err != nil {
		t.Fatalf("collection: %v", err)
	}
	t.Logf("round 2: %d pushes, %d skipped their layer; %d collections ran beside the pushes", waves*perWave, skipped, collections.Load())

	for i, err := range errs {
		if err != nil {
			t.Errorf("push %d (%s): %v", i, ps[i].repo, err)
		}
	}
	// Once more, with the pushes done: their manifests hold everything.
	w.collect(t, grace)
	for _, p := range ps {
		for _, b := range [][]byte{p.layer, p.config} {
			d := digest.FromBytes(b)
			status, got := w.do(t, "GET", "/v2/"+p.repo+"/blobs/"+d.String(), "", nil)
			if status != http.StatusOK || digest.FromBytes(got) != d {
				t.Errorf("%s: blob %s after the collections: %d, %d bytes", p.repo, d, status, len(got))
			}
		}
	}
}

// Only a caller who may push renews a link by a HEAD: readers cannot keep
// unused links from garbage collection.
func TestBlobHead_RenewsTheLinkOnlyForPushers(t *testing.T) {
	ctx := t.Context()
	srv := registrytest.NewServer(t, registrytest.WithAuth(adminPassword))
	a := srv.Auth
	for _, u := range []string{"carol", "dave"} {
		must(t, a.AddUser(ctx, u, userPassword, false))
	}
	must(t, a.AddOrg(ctx, "acme"))
	must(t, a.AddMember(ctx, "acme", "carol", auth.RoleRead))
	must(t, a.AddMember(ctx, "acme", "dave", auth.RoleWrite))
	w := &gcWorld{srv: srv}
	layer := []byte("a layer whose manifest never came")
	d := digest.FromBytes(layer)
	req, _ := http.NewRequest("POST", srv.URL+"/v2/acme/app/blobs/uploads/?digest="+d.String(), bytes.NewReader(layer))
	req.SetBasicAuth("admin", adminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob: %s", resp.Status)
	}
	w.backdate(t)

	db, err := sql.Open("sqlite", "file:"+srv.Config.Database.SQLite.Path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	linkAge := func() time.Duration {
		t.Helper()
		var at int64
		if err := db.QueryRowContext(ctx, `SELECT created_at FROM repo_blobs WHERE digest = ?`, d.String()).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return time.Since(time.Unix(0, at))
	}
	head := func(user string) {
		t.Helper()
		req, _ := http.NewRequest("HEAD", srv.URL+"/v2/acme/app/blobs/"+d.String(), nil)
		req.SetBasicAuth(user, userPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD as %s: %s", user, resp.Status)
		}
	}
	head("carol")
	if age := linkAge(); age < 59*time.Minute {
		t.Errorf("a reader's HEAD renewed the link (now %v old)", age)
	}
	head("dave")
	if age := linkAge(); age > time.Minute {
		t.Errorf("a pusher's HEAD left the link %v old", age)
	}
}
