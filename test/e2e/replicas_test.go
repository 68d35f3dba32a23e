//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/wharf/wharf/internal/servicetest"
)

// replicaCount is how many `wharf serve` processes share the stores.
const replicaCount = 3

// replicaPartSize is the replicas' S3 part size: S3's minimum, so that
// the layers below span several parts and leave tails carried between
// chunks, without pushing hundreds of megabytes.
const replicaPartSize = 5 << 20

// replicaSet is replicaCount `wharf serve` processes on one PostgreSQL
// database and one S3 bucket (versitygw), behind a round-robin front.
type replicaSet struct {
	t        *testing.T // the test that owns the processes, whichever subtest restarts one
	front    *front
	replicas []*wharfServer
	env      []string // the S3 credentials
	args     []string // every replica's flags after --addr
}

// startReplicas starts the stores, the front on frontAddr and the
// replicas; the replicas name the front as their public address.
// extraArgs go to every replica.
//
// The replicas start together, as a fresh deployment starts them, so that
// their start-up probes and migrations race on the shared stores.
func startReplicas(t *testing.T, frontAddr string, extraArgs ...string) *replicaSet {
	t.Helper()
	database := servicetest.StartPostgres(t).Database(t)
	s3 := servicetest.StartS3(t)
	storage := s3.URL(s3.Bucket(t), "wharf") + "&part_size=" + strconv.Itoa(replicaPartSize)

	addrs := make([]string, replicaCount)
	urls := make([]string, replicaCount)
	for i := range addrs {
		addrs[i] = freeLoopbackAddr(t)
		urls[i] = "http://" + addrs[i]
	}
	rs := &replicaSet{t: t, front: startFront(t, frontAddr, urls), env: s3.Env()}
	store := []string{"--database-url", database, "--storage-url", storage}
	rs.args = append(append(store,
		// Location headers are relative, and the token realm is the
		// front's; the replicas believe the front's X-Forwarded-For.
		"--auth-realm", rs.front.URL+"/token",
		"--trusted-proxies", "127.0.0.1",
	), extraArgs...)
	for _, addr := range addrs {
		s := launchWharf(t, addr, rs.env, rs.args...)
		s.storeArgs = store
		rs.replicas = append(rs.replicas, s)
	}
	for _, s := range rs.replicas {
		s.mustBeReady(t)
	}
	t.Logf("%d replicas %v on %s and versitygw behind the front on %s", replicaCount, addrs, database, rs.front.Addr)
	return rs
}

// relaunch starts replica i again on its address and stores, and puts it
// back into the front's rotation once it is ready. The process belongs to
// the set's test, not to the subtest that restarts it, which would stop it
// when it ends.
func (rs *replicaSet) relaunch(i int) error {
	old := rs.replicas[i]
	s := launchWharf(rs.t, old.Addr, rs.env, rs.args...)
	s.storeArgs = old.storeArgs
	if err := s.waitReady(); err != nil {
		s.failed = true
		return fmt.Errorf("wharf on %s not ready after a restart: %v\n--- wharf log ---\n%s", s.Addr, err, s.logTail())
	}
	rs.replicas[i] = s
	rs.front.setDown(i, false)
	return nil
}

// TestReplicasConformance runs the OCI conformance suite through the
// front of three replicas with every option on at once: token auth (each
// token issued by one replica and checked by the next), sparse manifests
// and every optional API and data set. Nothing may fail or be skipped,
// and no replica may answer a server error.
func TestReplicasConformance(t *testing.T) {
	bin := requireTool(t, "conformance")
	rs := startReplicas(t, freeLoopbackAddr(t), "--auth=token", "--sparse-manifests")
	addUser(t, rs.replicas[0], "myorg", "conformance-password")
	runConformance(t, bin, rs.front.Addr, true, "OCI_USERNAME=myorg", "OCI_PASSWORD=conformance-password")
	rs.front.checkNoFaults(t)
	perReplica, sessions := rs.front.spread(http.MethodPut)
	t.Logf("PUTs per replica %v; upload sessions by number of replicas that served them: %v", perReplica, sessions)
}

// TestReplicas drives three replicas through their front with real
// clients: the docker engine; crane and regctl (chunked) with each upload
// spread over the replicas, pulled back from each replica directly;
// concurrent pushers of overlapping layers; a replica killed in the middle
// of a push, which the client's retry rides over; and replicas killed at
// random during 160 pushes at once.
func TestReplicas(t *testing.T) {
	requireDockerRegistryAddr(t)
	rs := startReplicas(t, dockerListen, "--auth=none")

	t.Run("docker", func(t *testing.T) {
		dockerRoundTrip(t, rs.replicas[1])
		crane := requireTool(t, "crane")
		for _, s := range rs.replicas {
			cmd(crane, "validate", "--insecure", "--remote", s.Addr+"/gallery/ui:v1").mustRun(t)
		}
		rs.front.checkNoFaults(t)
	})
	t.Run("chunked uploads across replicas", func(t *testing.T) {
		rs.front.resetSpread()
		replicasChunked(t, rs)
		rs.front.checkNoFaults(t)
	})
	t.Run("overlapping pushers", func(t *testing.T) {
		replicasOverlapping(t, rs)
		rs.front.checkNoFaults(t)
	})
	t.Run("replica killed mid-push", func(t *testing.T) {
		replicasKilledMidPush(t, rs)
	})
	t.Run("replicas killed during pushes", func(t *testing.T) {
		replicasKilledDuringPushes(t, rs)
	})
}

// layoutOf writes img into a new OCI layout under the tag name and
// returns the layout's directory.
func layoutOf(t *testing.T, img v1.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkOnEveryReplica pulls ref (a repository path and tag) from each
// replica that is up, directly, and checks its digest and every blob.
func checkOnEveryReplica(t *testing.T, rs *replicaSet, ref, want string) {
	t.Helper()
	crane := requireTool(t, "crane")
	for i, s := range rs.replicas {
		if s.killed.Load() {
			continue
		}
		checkDigest(t, cmd(crane, "digest", "--insecure", s.Addr+"/"+ref), want)
		out, err := cmd(crane, "validate", "--insecure", "--remote", s.Addr+"/"+ref).run(t)
		if err != nil || !strings.Contains(out, "PASS") {
			t.Errorf("replica %d: %s does not validate: %v", i, ref, err)
		}
	}
}

// bigLayer is a gzipped layer of a tar holding size random bytes,
// compressed once and at the fastest level: random bytes do not shrink,
// and the default level would cost seconds of CPU per copy.
func bigLayer(t *testing.T, size int64) v1.Layer {
	t.Helper()
	l, err := random.Layer(size, types.OCIUncompressedLayer)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, rc); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	// Given gzip, tarball keeps it as it is and only reads it for the diff id.
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// replicasChunked: crane pushes a multi-layer image (one PATCH per blob,
// so each upload's POST, PATCH and PUT land on three replicas), regctl
// pushes another in 2 MiB chunks (so one blob's PATCHes land on every
// replica in turn, and its S3 parts and carried tails are written by
// different processes); both pull back whole from each replica directly,
// and so does a tag moved through the front.
func replicasChunked(t *testing.T, rs *replicaSet) {
	crane := requireTool(t, "crane")
	regctl := requireTool(t, "regctl")

	img, err := random.Image(3<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	craneDigest := mustDigest(t, img).String()
	cmd(crane, "push", "--insecure", layoutOf(t, img, "v1"), rs.front.Addr+"/spread/crane:v1").mustRun(t)
	checkOnEveryReplica(t, rs, "spread/crane:v1", craneDigest)

	chunked, err := mutate.AppendLayers(empty.Image, bigLayer(t, 13<<20), bigLayer(t, 7<<20))
	if err != nil {
		t.Fatal(err)
	}
	small, err := random.Layer(300<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	if chunked, err = mutate.AppendLayers(chunked, small); err != nil {
		t.Fatal(err)
	}
	want := mustDigest(t, chunked).String()
	env := []string{"REGCTL_CONFIG=" + filepath.Join(t.TempDir(), "config.json"), "DOCKER_CONFIG=" + t.TempDir()}
	r := func(args ...string) command {
		c := cmd(regctl, args...)
		c.env = env
		return c
	}
	r("registry", "set", rs.front.Addr, "--tls", "disabled", "--blob-max", "1", "--blob-chunk", strconv.Itoa(2<<20)).mustRun(t)
	r("image", "copy", "ocidir://"+layoutOf(t, chunked, "v1")+":v1", rs.front.Addr+"/spread/chunked:v1").mustRun(t)
	checkOnEveryReplica(t, rs, "spread/chunked:v1", want)

	// Move the tag onto the crane image (its blobs mounted from the other
	// repository): every replica sees the move by its very next request.
	cmd(crane, "copy", "--insecure", rs.front.Addr+"/spread/crane:v1", rs.front.Addr+"/spread/chunked:v1").mustRun(t)
	checkOnEveryReplica(t, rs, "spread/chunked:v1", craneDigest)

	patches, sessions := rs.front.spread(http.MethodPatch)
	t.Logf("PATCHes per replica %v; upload sessions by number of replicas that served them: %v", patches, sessions)
	for i, n := range patches {
		if n == 0 {
			t.Errorf("replica %d served no PATCH: the uploads were not spread", i)
		}
	}
	if sessions[replicaCount] == 0 {
		t.Errorf("no upload session was served by all %d replicas: %v", replicaCount, sessions)
	}
}

// replicasOverlapping: pushers at once through the front, each an image
// of three layers every pusher shares (one spans S3 parts) and one of its
// own, some into one repository and some into their own. Afterwards every
// image pulls whole from every replica directly.
func replicasOverlapping(t *testing.T, rs *replicaSet) {
	const pushers = 8
	shared := []v1.Layer{bigLayer(t, 6<<20)}
	for range 2 {
		l, err := random.Layer(512<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		shared = append(shared, l)
	}
	refs := make([]string, pushers)
	digests := make([]string, pushers)
	imgs := make([]v1.Image, pushers)
	for i := range pushers {
		own, err := random.Layer(256<<10, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, append(shared[:len(shared):len(shared)], own)...)
		if err != nil {
			t.Fatal(err)
		}
		imgs[i] = img
		digests[i] = mustDigest(t, img).String()
		repo := "overlap/shared"
		if i%2 == 1 {
			repo = fmt.Sprintf("overlap/own%d", i)
		}
		refs[i] = fmt.Sprintf("%s:p%d", repo, i)
	}
	var wg sync.WaitGroup
	errs := make([]error, pushers)
	for i := range pushers {
		wg.Go(func() {
			ref, err := name.ParseReference(rs.front.Addr+"/"+refs[i], name.Insecure)
			if err == nil {
				err = remote.Write(ref, imgs[i], remote.WithContext(t.Context()))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pusher %d (%s): %v", i, refs[i], err)
		}
	}
	for i, ref := range refs {
		for j, s := range rs.replicas {
			r, err := name.ParseReference(s.Addr+"/"+ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(r, remote.WithContext(t.Context()))
			if err != nil {
				t.Errorf("replica %d: %s: %v", j, ref, err)
				continue
			}
			if got := mustDigest(t, img).String(); got != digests[i] {
				t.Errorf("replica %d: %s is %s, want %s", j, ref, got, digests[i])
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("replica %d: %s does not pull whole: %v", j, ref, err)
			}
		}
	}
}

// replicasKilledMidPush: crane pushes an image whose big layer goes up in
// one PATCH; once 12 MiB of it have passed the front, the replica
// receiving it is marked down and killed with SIGKILL. crane's retry
// reaches another replica and the push succeeds; the image pulls whole
// from the survivors, and from the killed replica once it is started
// again on the same stores.
func replicasKilledMidPush(t *testing.T, rs *replicaSet) {
	crane := requireTool(t, "crane")
	small, err := random.Layer(64<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, small, bigLayer(t, 40<<20))
	if err != nil {
		t.Fatal(err)
	}
	want := mustDigest(t, img).String()
	dir := layoutOf(t, img, "v1")

	const killAfter = 12 << 20
	var victim atomic.Int32
	var session atomic.Value // the upload session id of the interrupted PATCH
	var fired atomic.Bool
	rs.front.takeFaults()
	rs.front.watchBodies(func(replica int, r *http.Request, sent int64) {
		if r.Method != http.MethodPatch || sent < killAfter || !fired.CompareAndSwap(false, true) {
			return
		}
		victim.Store(int32(replica))
		session.Store(uploadSession(r.URL.Path))
		rs.front.setDown(replica, true)
		if err := rs.replicas[replica].kill(); err != nil {
			t.Error(err)
		}
		t.Logf("killed replica %d (SIGKILL) with %d bytes of PATCH %s through the front", replica, sent, r.URL.Path)
	})
	out := cmd(crane, "push", "--insecure", dir, rs.front.Addr+"/killed/app:v1").mustRun(t)
	rs.front.watchBodies(nil)
	if !fired.Load() {
		t.Fatalf("no PATCH carried %d bytes: nothing was killed\n%s", killAfter, out)
	}
	if !strings.Contains(out, want) {
		t.Errorf("crane push printed %q, want it to name %s", out, want)
	}
	killed := int(victim.Load())
	faults := rs.front.takeFaults()
	for _, f := range faults {
		if !strings.Contains(f, fmt.Sprintf("no answer from replica %d ", killed)) {
			t.Errorf("front: %s (only the killed replica %d may fail)", f, killed)
		}
	}
	t.Logf("front faults during the kill: %q", faults)
	// The retried PATCH went on with the session on another replica: the
	// bytes and S3 parts the killed one wrote never became its state.
	id := session.Load().(string)
	if served := rs.front.sessionReplicas(id); !slices.ContainsFunc(served, func(i int) bool { return i != killed }) {
		t.Logf("session %s was served only by the killed replica (%v): crane started the blob again", id, served)
	} else {
		t.Logf("session %s was served by replicas %v, %d killed", id, served, killed)
	}

	checkOnEveryReplica(t, rs, "killed/app:v1", want)
	checkDigest(t, cmd(crane, "digest", "--insecure", rs.front.Addr+"/killed/app:v1"), want)
	if err := rs.relaunch(killed); err != nil {
		t.Fatal(err)
	}
	checkOnEveryReplica(t, rs, "killed/app:v1", want)
	rs.front.checkNoFaults(t)
}
