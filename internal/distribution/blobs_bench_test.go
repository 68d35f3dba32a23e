package distribution_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/registrytest"
)

// blobBenchSize is the size of the blobs the benchmarks move, that of a
// middling image layer.
const blobBenchSize = 64 << 20

// blobBenchContent is size pseudo-random (incompressible) bytes.
func blobBenchContent(size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{'w', 'h', 'a', 'r', 'f'})
	_, _ = r.Read(b)
	return b
}

// blobBenchNext makes content a blob never pushed before, by writing the
// iteration into its first bytes, and returns its digest. It runs with the
// timer stopped: hashing on the client side is not the registry's cost.
func blobBenchNext(b *testing.B, content []byte, i int) digest.Digest {
	b.StopTimer()
	defer b.StartTimer()
	binary.BigEndian.PutUint64(content, uint64(i))
	return digest.FromBytes(content)
}

// blobBenchDo makes a request and fails the benchmark unless it is answered
// with want; the response body is drained and discarded.
func blobBenchDo(b *testing.B, client *http.Client, req *http.Request, want int) *http.Response {
	res, err := client.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		b.Fatalf("%s %s: status %d, want %d", req.Method, req.URL.Path, res.StatusCode, want)
	}
	return res
}

// BenchmarkBlobUpload pushes a new 64 MiB blob per iteration in one
// monolithic POST.
func BenchmarkBlobUpload(b *testing.B) {
	s := registrytest.NewServer(b)
	client := s.Client()
	content := blobBenchContent(blobBenchSize)
	b.SetBytes(blobBenchSize)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := blobBenchNext(b, content, i)
		req, err := http.NewRequest(http.MethodPost, s.URL+"/v2/bench/blobs/uploads/?digest="+d.String(), bytes.NewReader(content))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		blobBenchDo(b, client, req, http.StatusCreated)
	}
}

// BenchmarkBlobUploadChunked pushes a new 64 MiB blob per iteration as a
// session of four 16 MiB PATCHes and a PUT without body.
func BenchmarkBlobUploadChunked(b *testing.B) {
	const chunk = 16 << 20
	s := registrytest.NewServer(b)
	client := s.Client()
	content := blobBenchContent(blobBenchSize)
	b.SetBytes(blobBenchSize)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := blobBenchNext(b, content, i)
		req, err := http.NewRequest(http.MethodPost, s.URL+"/v2/bench/blobs/uploads/", nil)
		if err != nil {
			b.Fatal(err)
		}
		loc := blobBenchDo(b, client, req, http.StatusAccepted).Header.Get("Location")
		for from := 0; from < blobBenchSize; from += chunk {
			req, err := http.NewRequest(http.MethodPatch, s.URL+loc, bytes.NewReader(content[from:from+chunk]))
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", from, from+chunk-1))
			blobBenchDo(b, client, req, http.StatusAccepted)
		}
		req, err = http.NewRequest(http.MethodPut, s.URL+loc+"?digest="+d.String(), nil)
		if err != nil {
			b.Fatal(err)
		}
		blobBenchDo(b, client, req, http.StatusCreated)
	}
}

// BenchmarkBlobGet pulls one 64 MiB blob per iteration.
func BenchmarkBlobGet(b *testing.B) {
	s := registrytest.NewServer(b)
	client := s.Client()
	content := blobBenchContent(blobBenchSize)
	d := digest.FromBytes(content)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v2/bench/blobs/uploads/?digest="+d.String(), bytes.NewReader(content))
	if err != nil {
		b.Fatal(err)
	}
	blobBenchDo(b, client, req, http.StatusCreated)

	b.SetBytes(blobBenchSize)
	b.ReportAllocs()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodGet, s.URL+blobPath("bench", d), nil)
		if err != nil {
			b.Fatal(err)
		}
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || n != blobBenchSize {
			b.Fatalf("GET: status %d, %d bytes, %v; want 200, %d bytes", res.StatusCode, n, err, blobBenchSize)
		}
	}
}
