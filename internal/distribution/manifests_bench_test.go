package distribution_test

import (
	"io"
	"net/http"
	"runtime"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/registrytest"
)

// BenchmarkManifestGetByTag measures pulls of a manifest by tag: a tag
// lookup in the metadata store and a small body, the hottest read path.
func BenchmarkManifestGetByTag(b *testing.B) {
	mfBenchManifest(b, http.MethodGet)
}

// BenchmarkManifestHeadByTag measures the HEAD that clients send to
// resolve a tag to a digest before deciding whether to pull.
func BenchmarkManifestHeadByTag(b *testing.B) {
	mfBenchManifest(b, http.MethodHead)
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
