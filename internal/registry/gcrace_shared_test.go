package registry_test

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/registry"
)

// The race of GC on shared storage: pushers on two replicas (one
// PostgreSQL database, one bucket) push images with overlapping layers,
// monolithically, in chunks spread over both replicas, or by mount, while a
// third replica collects garbage in a loop. Half the pushes are churn: the
// image is read back through the other replica, then deleted or left
// untagged, so its layers become garbage. Those pushes deliberately reuse
// the layers whose grace has just run out (the ones a collection is
// deleting), which is the interleaving that loses blobs when the guard is
// wrong: a push finds the bytes present, a collection deletes them, the
// push links them (without KeepBlob this test loses blobs). No push may fail, every pushed image must read back
// whole through the other replica, and every kept image at the end.
func TestCollectGarbage_OnPostgresAndS3_RacesPushesOnTwoReplicas(t *testing.T) {
	const (
		pushers  = 4
		pushes   = 16 // per pusher
		hotPool  = 16 // churn layers, reused while collected
		keptPool = 3  // layers every kept image shares
		// The replicas share a clock that each push moves by tick as it
		// begins, so that the grace, counted in pushes begun, exceeds any
		// push however busy the machine is (a push lasting as long as 12
		// others begin would lose its links to pruning, as a push longer
		// than the grace does in production). The churn layers are picked
		// as their grace runs out, so that collections delete them as
		// they are pushed again.
		tick  = 100 * time.Millisecond
		grace = 12 * tick
	)
	ctx := t.Context()
	var reusedHot atomic.Int64 // churn layers pushed once their deletion was due
	w := newSharedStores(t)
	clock := clocktest.New()
	replicas := []*registry.Service{w.replica(t, clock.Now), w.replica(t, clock.Now)}
	collector := w.replica(t, clock.Now)

	layer := func(kind string, i int) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%s layer %d\n", kind, i)), 64+i)
	}
	// hotLinked is when each churn layer was last linked: a collection
	// prunes its link and deletes its bytes once that is more than grace
	// ago and its image is gone, so a push of it then races the deletion.
	var hotMu sync.Mutex
	hotLinked := make([]time.Time, hotPool)
	// pickHot returns n churn layers: first those whose grace has just
	// run out (a collection is deleting them now), then the least recently
	// linked (so that each is due again by its next turn); it records them
	// as linked again.
	pickHot := func(rng *mrand.Rand, n int) []int {
		hotMu.Lock()
		defer hotMu.Unlock()
		due := clock.Now().Add(-grace)
		order := rng.Perm(hotPool)
		slices.SortStableFunc(order, func(a, b int) int {
			la, lb := hotLinked[a], hotLinked[b]
			if da, db := la.Before(due), lb.Before(due); da != db {
				if da {
					return -1
				}
				return 1
			} else if da {
				return lb.Compare(la)
			}
			return la.Compare(lb)
		})
		picks := order[:n]
		for _, i := range picks {
			if !hotLinked[i].IsZero() && hotLinked[i].Before(due) {
				reusedHot.Add(1)
			}
			hotLinked[i] = clock.Now()
		}
		return picks
	}

	type kept struct {
		repo, tag string
		img       *testImage
	}
	var (
		mu         sync.Mutex
		keptImages []kept
	)
	stop := make(chan struct{})
	var gcTotal registry.GCReport
	var gcRuns int
	gcDone := make(chan error, 1)
	go func() {
		for run := 0; ; run++ {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			rep, err := collector.CollectGarbage(ctx, registry.GCOptions{Grace: grace, Untagged: run%2 == 0})
			if err != nil {
				gcDone <- fmt.Errorf("collection %d: %w", run, err)
				return
			}
			gcRuns++
			gcTotal.Blobs += rep.Blobs
			gcTotal.Links += rep.Links
			gcTotal.Manifests = append(gcTotal.Manifests, rep.Manifests...)
		}
	}()

	push := func(g, n int) error {
		clock.Advance(tick)
		rng := mrand.New(mrand.NewPCG(uint64(g), uint64(n)))
		churn := n%2 == 0
		repo := fmt.Sprintf("race/app%d", g%2)
		tag := fmt.Sprintf("p%d-%d", g, n)
		var layers [][]byte
		if churn {
			tag = fmt.Sprintf("churn-%d", g)
			for _, i := range pickHot(rng, 2) {
				layers = append(layers, layer("hot", i))
			}
		} else {
			layers = append(layers, layer(fmt.Sprintf("own %d/%d", g, n), 0), layer("kept", rng.IntN(keptPool)))
		}
		img := newTestImage([]byte(fmt.Sprintf(`{"pusher":%d,"push":%d}`, g, n)), layers...)
		on, other := replicas[(g+n)%2], replicas[(g+n+1)%2]
		// Layers first, so that the churn layers go up as soon as picked.
		for k, d := range slices.Backward(img.order) {
			b := img.blobs[d]
			var err error
			switch (g + n + k) % 3 {
			case 0:
				_, err = on.PutBlob(ctx, repo, d, bytes.NewReader(b), int64(len(b)))
			case 1: // started on one replica, finished on the other
				var up *registry.Upload
				if up, err = on.StartUpload(ctx, repo, ""); err == nil {
					half := int64(len(b) / 2)
					if _, err = other.WriteUpload(ctx, repo, up.ID, 0, bytes.NewReader(b[:half]), half); err == nil {
						_, err = on.CompleteUpload(ctx, repo, up.ID, d, bytes.NewReader(b[half:]), int64(len(b))-half)
					}
				}
			default: // mounted from wherever it is linked, else uploaded
				var mounted bool
				if mounted, err = on.MountBlob(ctx, repo, d, ""); err == nil && !mounted {
					_, err = on.PutBlob(ctx, repo, d, bytes.NewReader(b), int64(len(b)))
				}
			}
			if err != nil {
				return fmt.Errorf("push %s blob %s on replica %d: %w", tag, d, (g+n)%2, err)
			}
		}
		if _, err := on.PutManifest(ctx, repo, tag, ociManifest, img.manifest, nil); err != nil {
			return fmt.Errorf("push %s manifest: %w", tag, err)
		}
		// Read back whole through the other replica.
		if m, err := other.GetManifest(ctx, repo, img.digest().String()); err != nil || !bytes.Equal(m.Content, img.manifest) {
			return fmt.Errorf("pull %s manifest: %v", tag, err)
		}
		for _, d := range img.order {
			if err := readBlob(ctx, other, repo, d); err != nil {
				return fmt.Errorf("pull %s blob %s: %w", tag, d, err)
			}
		}
		if !churn {
			mu.Lock()
			keptImages = append(keptImages, kept{repo, tag, img})
			mu.Unlock()
			return nil
		}
		if n%4 == 0 {
			// Deleted; the other churn pushes are left untagged when the
			// pusher's next churn push moves the tag.
			return other.DeleteManifest(ctx, repo, img.digest().String())
		}
		return nil
	}

	start := time.Now()
	var longest atomic.Int64 // the longest push
	errs := make([]error, pushers)
	var wg sync.WaitGroup
	for g := range pushers {
		wg.Go(func() {
			for n := range pushes {
				began := time.Now()
				err := push(g, n)
				longest.Store(max(longest.Load(), int64(time.Since(began))))
				if err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	for g, err := range errs {
		if err != nil {
			t.Errorf("pusher %d: %v", g, err)
		}
	}
	for _, k := range keptImages {
		for i, svc := range replicas {
			m, err := svc.GetManifest(ctx, k.repo, k.tag)
			if err != nil || !bytes.Equal(m.Content, k.img.manifest) {
				t.Errorf("kept image %s:%s on replica %d: %v", k.repo, k.tag, i, err)
				continue
			}
			for _, d := range k.img.order {
				if err := readBlob(ctx, svc, k.repo, d); err != nil {
					t.Errorf("kept image %s:%s on replica %d: blob %s: %v", k.repo, k.tag, i, d, err)
				}
			}
		}
	}
	t.Logf("%d pushes in %s (the longest %s); %d collections removed %d blobs, %d links, %d manifests; %d churn layers pushed once due for deletion",
		pushers*pushes, time.Since(start).Round(time.Millisecond), time.Duration(longest.Load()).Round(time.Millisecond), gcRuns, gcTotal.Blobs, gcTotal.Links, len(gcTotal.Manifests), reusedHot.Load())
	// The race was run: collections deleted blobs that pushes reused.
	if gcTotal.Blobs == 0 || reusedHot.Load() == 0 {
		t.Errorf("no blob collected (%d) or none pushed again once due for deletion (%d): the race was not exercised", gcTotal.Blobs, reusedHot.Load())
	}
}
