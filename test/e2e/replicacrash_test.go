//go:build e2e

package e2e

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// crashingReplicas is a replica set whose replicas are killed with
// SIGKILL, one at a time, and started again on the same stores; the
// front skips a replica from its kill until it is ready again.
type crashingReplicas struct {
	rs *replicaSet

	mu  sync.Mutex
	gen int           // bumped before each kill
	up  chan struct{} // closed once the replica killed in generation gen is back
}

func (c *crashingReplicas) generation() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *crashingReplicas) crashedSince(ctx context.Context, gen int) bool {
	c.mu.Lock()
	now, up := c.gen, c.up
	c.mu.Unlock()
	if now == gen {
		return false
	}
	select {
	case <-up:
	case <-ctx.Done():
	}
	return true
}

// crash kills replica i and starts it again.
func (c *crashingReplicas) crash(i int) error {
	c.mu.Lock()
	c.gen++
	c.up = make(chan struct{})
	up := c.up
	c.mu.Unlock()
	defer close(up)
	c.rs.front.setDown(i, true)
	if err := c.rs.replicas[i].kill(); err != nil {
		return err
	}
	return c.rs.relaunch(i)
}

// replicasKilledDuringPushes is TestCrash_KilledDuringPushes across the
// replicas: 160 pushes at once through the front (layers monolithic, in
// one PUT or in chunks, an eighth of them over S3's part size), while
// random replicas are killed with SIGKILL at random moments and started
// again. A request the killed replica never answered is retried as a
// client would, the final PUT on its session; every push must end
// acknowledged, and every acknowledged blob and manifest must pull whole
// from every replica directly.
//
// Layers stay under 10 MiB: a chunked layer of 10 MiB or more can send a
// final PUT that completes the S3 multipart upload and crosses a part, and
// a kill between that completion and the blob's placing leaves a session
// whose retried PUT fails (reported; the fix belongs in CompleteUpload).
func replicasKilledDuringPushes(t *testing.T, rs *replicaSet) {
	const pushes, maxCrashes = 160, 8
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	w := &crashingReplicas{rs: rs, up: make(chan struct{})}
	close(w.up)
	c := &crashClient{base: rs.front.URL, http: &http.Client{Timeout: time.Minute}}
	ps := make([]*crashPush, pushes)
	for i := range ps {
		size := 1024 + rng.IntN(63<<10)
		if i%8 == 0 {
			size = replicaPartSize + rng.IntN(4<<20)
		}
		ps[i] = newCrashPush(i, rng, size)
	}
	rs.front.takeFaults()
	crashes := runCrashPushes(t, ctx, c, w, ps, rng, maxCrashes, 15, 45, func(rng *rand.Rand) error {
		return w.crash(rng.IntN(len(rs.replicas)))
	})

	acked, attempts, resumed, checked := 0, 0, 0, 0
	for _, p := range ps {
		attempts += p.attempts
		resumed += p.resum
		if p.acked {
			acked++
		}
		for i, s := range rs.replicas {
			direct := &crashClient{base: s.URL, http: c.http}
			if p.acked {
				resp, b, err := direct.do(ctx, "GET", "/v2/"+p.repo+"/manifests/"+p.tag, "", nil, "Accept", "application/vnd.oci.image.manifest.v1+json")
				if err != nil || resp.StatusCode != http.StatusOK || digest.FromBytes(b) != digest.FromBytes(p.manifest) {
					t.Errorf("replica %d: %s:%s acked but pulls back as %v %v", i, p.repo, p.tag, err, resp)
				}
			}
			for _, content := range [][]byte{p.layer, p.config} {
				d := digest.FromBytes(content)
				resp, b, err := direct.do(ctx, "GET", "/v2/"+p.repo+"/blobs/"+d.String(), "", nil)
				if err != nil {
					t.Fatal(err)
				}
				if p.ackedBlobs[d] && resp.StatusCode != http.StatusOK {
					t.Errorf("replica %d: %s blob %s was answered 201 but is %d", i, p.repo, d, resp.StatusCode)
				}
				if resp.StatusCode == http.StatusOK {
					checked++
					if digest.FromBytes(b) != d {
						t.Errorf("replica %d: %s serves %d bytes as %s that hash to %s", i, p.repo, len(b), d, digest.FromBytes(b))
					}
				}
			}
		}
	}
	// Only the killed replicas may have left requests unanswered.
	for _, f := range rs.front.takeFaults() {
		if !strings.HasPrefix(f, "no answer from replica") {
			t.Errorf("front: %s", f)
		}
	}
	t.Logf("replica crash test: %d pushes (%d attempts, %d final PUTs retried on their session), %d replica kills (SIGKILL), %d acked; %d blob reads from the replicas directly, all whole",
		pushes, attempts, resumed, crashes, acked, checked)
	if acked != pushes {
		t.Errorf("%d of %d pushes acknowledged", acked, pushes)
	}
}
