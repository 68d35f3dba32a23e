package distribution_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

// BenchmarkManifestGetByTagWarm measures a manifest GET by tag, the
// hottest read path, on a registry that nothing is pushed to meanwhile:
// the tag's digest comes from the WAL-index memo and the bytes from the
// manifest cache, so no SQL runs. What it measures is the HTTP server,
// routing, middleware (access log, metrics), the auth gate and writing the
// answer. BenchmarkManifestGetByTagAfterPush measures the SQL path.
func BenchmarkManifestGetByTagWarm(b *testing.B) {
	mfBenchManifest(b, http.MethodGet)
}

// BenchmarkManifestHeadByTagWarm is BenchmarkManifestGetByTagWarm for the
// HEAD that clients send to resolve a tag before deciding to pull.
func BenchmarkManifestHeadByTagWarm(b *testing.B) {
	mfBenchManifest(b, http.MethodHead)
}

// BenchmarkManifestGetByTagAfterPush measures a manifest GET by tag made
// right after a push (a new tag on the same manifest, outside the timed
// part): the commit leaves the memo nothing valid, so the tag is resolved
// by an SQL query; the bytes still come from the manifest cache. One
// client, one request at a time.
func BenchmarkManifestGetByTagAfterPush(b *testing.B) {
	s := registrytest.NewServer(b)
	mfPushImage(b, s, "bench/app", "latest")
	want := mfOCIDigest.String()
	client := blobClient(s)
	req, err := http.NewRequest(http.MethodGet, s.URL+"/v2/bench/app/manifests/latest", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", v1.MediaTypeImageManifest)
	b.SetBytes(int64(len(mfOCI)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mfPutManifest(b, s, "bench/app", fmt.Sprint("t", i), v1.MediaTypeImageManifest, mfOCI)
		b.StartTimer()
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Docker-Content-Digest") != want || n != int64(len(mfOCI)) {
			b.Fatalf("GET: status %d, digest %q, %d bytes", res.StatusCode, res.Header.Get("Docker-Content-Digest"), n)
		}
	}
}

func mfBenchManifest(b *testing.B, method string) {
	s := registrytest.NewServer(b)
	mfPushImage(b, s, "bench/app", "latest")
	want := mfOCIDigest.String()

	// Keep one idle connection per client goroutine, so that the benchmark
	// measures the registry rather than TCP handshakes.
	conns := runtime.GOMAXPROCS(0) * 2
	tr := s.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	tr.DisableCompression = true
	tr.ForceAttemptHTTP2 = false
	client := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)

	accept := v1.MediaTypeImageManifest + ", " + v1.MediaTypeImageIndex + ", " +
		registry.MediaTypeDockerManifest + ", " + registry.MediaTypeDockerManifestList
	url := s.URL + "/v2/bench/app/manifests/latest"
	if method == http.MethodGet {
		b.SetBytes(int64(len(mfOCI)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			b.Error(err)
			return
		}
		req.Header.Set("Accept", accept)
		for pb.Next() {
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || res.Header.Get("Docker-Content-Digest") != want {
				b.Errorf("%s: status %d, digest %q", method, res.StatusCode, res.Header.Get("Docker-Content-Digest"))
				return
			}
			if method == http.MethodGet && n != int64(len(mfOCI)) {
				b.Errorf("GET read %d bytes, want %d", n, len(mfOCI))
				return
			}
		}
	})
}
