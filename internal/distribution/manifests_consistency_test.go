package distribution_test

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

func TestManifestPut_ConcurrentPushesOfOneTagAllSucceed(t *testing.T) {
	const n = 16
	s := registrytest.NewServer(t)
	mfPushImageBlobs(t, s, "app")
	bodies := make([][]byte, n)
	pushed := make(map[digest.Digest]bool, n)
	for i := range bodies {
		bodies[i] = mfOCIManifest(map[string]string{"push": strconv.Itoa(i)})
		pushed[digest.FromBytes(bodies[i])] = true
	}

	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := mfSend(s, mfRequest{method: "PUT", path: "/v2/app/manifests/latest",
				header: mfCT(v1.MediaTypeImageManifest), body: bodies[i]})
			switch {
			case err != nil:
				errs[i] = err
			case res.code != http.StatusCreated:
				errs[i] = fmt.Errorf("status %d, body %s", res.code, res.body)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent pushes failed:\n%v", err)
	}

	res := mfDo(t, s, "GET", "/v2/app/manifests/latest", nil, nil)
	if res.code != http.StatusOK {
		t.Fatalf("GET latest: status %d", res.code)
	}
	got := digest.Digest(res.header.Get("Docker-Content-Digest"))
	if !pushed[got] || digest.FromBytes(res.body) != got {
		t.Errorf("latest is %s (body digest %s), not one of the pushed manifests", got, digest.FromBytes(res.body))
	}
	for d := range pushed {
		mfWantDigest(t, s, "app", d.String(), d)
	}
	mfWantTags(t, s, "app", "latest")
}

// TestManifestGet_NeverServesWhatAnotherReplicaMovedOrDeleted runs two
// servers on one data directory, as two replicas on one database. The
// manifest cache is keyed by digest and every pull asks the database which
// digest a tag names, so whatever b has cached, a tag moved or a manifest
// deleted through a is visible on b's very next request.
func TestManifestGet_NeverServesWhatAnotherReplicaMovedOrDeleted(t *testing.T) {
	a := registrytest.NewServer(t)
	b := registrytest.NewServer(t, registrytest.WithDataDir(a.DataDir))
	mfPushAllKinds(t, a, "app")
	oci, docker := v1.MediaTypeImageManifest, registry.MediaTypeDockerManifest
	mfPutManifest(t, a, "app", "moving", oci, mfOCI)

	// Warm b's cache by tag and by digest.
	mfWantManifest(t, b, "app", "moving", oci, mfOCI)
	mfWantManifest(t, b, "app", mfOCIDigest.String(), oci, mfOCI)
	mfWantManifest(t, b, "app", "docker", docker, mfDocker)

	mfPutManifest(t, a, "app", "moving", docker, mfDocker)
	mfWantManifest(t, b, "app", "moving", docker, mfDocker)
	mfWantDigest(t, b, "app", "moving", mfDockerDigest)

	if res := mfDo(t, a, http.MethodDelete, "/v2/app/manifests/"+mfOCIDigest.String(), nil, nil); res.code != http.StatusAccepted {
		t.Fatalf("delete on a: status %d", res.code)
	}
	mfWantNoManifest(t, b, "app", mfOCIDigest.String(), "MANIFEST_UNKNOWN")
	mfWantNoManifest(t, b, "app", "oci", "MANIFEST_UNKNOWN")

	if res := mfDo(t, a, http.MethodDelete, "/v2/app/manifests/moving", nil, nil); res.code != http.StatusAccepted {
		t.Fatalf("delete tag on a: status %d", res.code)
	}
	mfWantNoManifest(t, b, "app", "moving", "MANIFEST_UNKNOWN")
	// The manifest the tag named is still there by digest and by its other tag.
	mfWantManifest(t, b, "app", "docker", docker, mfDocker)
}

// TestManifestGet_DeletedAndPushedAgainIsServed checks the cache on one
// server across a delete and a second push of the same bytes.
func TestManifestGet_DeletedAndPushedAgainIsServed(t *testing.T) {
	s := registrytest.NewServer(t)
	mfPushImageBlobs(t, s, "app")
	oci := v1.MediaTypeImageManifest
	mfPutManifest(t, s, "app", "v1", oci, mfOCI)
	mfWantManifest(t, s, "app", "v1", oci, mfOCI)
	if res := mfDo(t, s, http.MethodDelete, "/v2/app/manifests/"+mfOCIDigest.String(), nil, nil); res.code != http.StatusAccepted {
		t.Fatalf("delete: status %d", res.code)
	}
	mfWantNoManifest(t, s, "app", "v1", "MANIFEST_UNKNOWN")
	mfWantNoManifest(t, s, "app", mfOCIDigest.String(), "MANIFEST_UNKNOWN")
	mfPutManifest(t, s, "app", "v2", oci, mfOCI)
	mfWantManifest(t, s, "app", "v2", oci, mfOCI)
	mfWantManifest(t, s, "app", mfOCIDigest.String(), oci, mfOCI)
	mfWantNoManifest(t, s, "app", "v1", "MANIFEST_UNKNOWN")
}
