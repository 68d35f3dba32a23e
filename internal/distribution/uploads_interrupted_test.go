package distribution_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
)

// A request whose body ends before what its headers declare (the client
// died, or the connection broke) stores nothing and leaves the session at
// its last good offset, from where the client can resume.
func TestUpload_TruncatedBodyStoresNothing(t *testing.T) {
	d := blobDigest.String()
	// rest is the remaining 44 bytes of blobData after a 20-byte chunk; the
	// requests below declare all of it and send 10.
	rest, sent := blobData[20:], blobData[20:30]
	chunkedStart := fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s", len(rest), sent)
	lengthStart := fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(rest), sent)
	cases := []struct {
		name   string
		method string
		path   string
		// tail is what follows the request's path and Host: the rest of the
		// headers, the blank line and the truncated body.
		tail string
	}{
		{"PATCH with Content-Range and Content-Length", http.MethodPatch, "{upload}",
			"Content-Range: 20-63\r\n" + lengthStart},
		{"PATCH with only Content-Length", http.MethodPatch, "{upload}", lengthStart},
		{"PATCH with a chunked body cut inside a chunk", http.MethodPatch, "{upload}", chunkedStart},
		{"PATCH with a chunked body cut between chunks", http.MethodPatch, "{upload}",
			fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(sent), sent)},
		{"PUT with Content-Length", http.MethodPut, "{upload}?digest=" + d, lengthStart},
		{"PUT with Content-Range and Content-Length", http.MethodPut, "{upload}?digest=" + d,
			"Content-Range: 20-63\r\n" + lengthStart},
		{"PUT with a chunked body", http.MethodPut, "{upload}?digest=" + d, chunkedStart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := registrytest.NewServer(t)
			bs := &blobSession{t: t, s: s}
			bs.run("given", uploadStarted("app"))
			bs.run("given", uploadChunk(blobData, 0, 20))

			path := bs.expand(c.path)
			code := uploadRaw(t, s, fmt.Sprintf("%s %s HTTP/1.1\r\nHost: registry\r\nContent-Type: application/octet-stream\r\n%s", c.method, path, c.tail))
			if code >= 200 && code < 300 {
				t.Errorf("%s %s with a truncated body: status %d, want an error", c.method, path, code)
			}

			bs.run("then", blobHeadLacks("app", blobDigest))
			bs.run("then", uploadAt(20))
			bs.run("then", uploadChunk(blobData, 20, 64))
			bs.run("then", uploadFinished("app", blobDigest))
			bs.run("then", blobHas("app", blobData))
		})
	}
	t.Run("monolithic POST", func(t *testing.T) {
		t.Parallel()
		s := registrytest.NewServer(t)
		for _, tail := range []string{
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(blobData), blobData[:30]),
			fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s", len(blobData), blobData[:30]),
		} {
			path := "/v2/app/blobs/uploads/?digest=" + d
			code := uploadRaw(t, s, "POST "+path+" HTTP/1.1\r\nHost: registry\r\n"+tail)
			if code >= 200 && code < 300 {
				t.Errorf("POST %s with a truncated body: status %d, want an error", path, code)
			}
		}
		bs := &blobSession{t: t, s: s}
		bs.run("then", blobHeadLacks("app", blobDigest))
		bs.run("then", blobLacks("app", blobDigest))
		bs.run("then", blobPushed("app", blobData))
		bs.run("then", blobHas("app", blobData))
	})
}

// A chunk whose body breaks before its end is refused and leaves the
// session where it was, whatever the body declared: the client cannot
// know how much of it arrived.
func TestUpload_BrokenBodyLeavesSessionUnchanged(t *testing.T) {
	rest := blobData[20:]
	cases := []struct {
		name   string
		method string
		query  string
		header http.Header
		length int64
		err    error
	}{
		{"PATCH with Content-Range, cut off", http.MethodPatch, "", blobHeader("Content-Range", "20-63"), int64(len(rest)), io.ErrUnexpectedEOF},
		{"PATCH with Content-Length, cut off", http.MethodPatch, "", nil, int64(len(rest)), io.ErrUnexpectedEOF},
		{"streamed PATCH, cut off", http.MethodPatch, "", nil, -1, io.ErrUnexpectedEOF},
		{"streamed PATCH, reset", http.MethodPatch, "", nil, -1, errors.New("connection reset by peer")},
		{"PATCH with Content-Length, reset", http.MethodPatch, "", nil, int64(len(rest)), errors.New("connection reset by peer")},
		{"PUT with Content-Length, cut off", http.MethodPut, "?digest=" + blobDigest.String(), nil, int64(len(rest)), io.ErrUnexpectedEOF},
		{"streamed PUT, cut off", http.MethodPut, "?digest=" + blobDigest.String(), nil, -1, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := uploadAPI(t)
			rec := uploadServe(h, http.MethodPost, "/v2/app/blobs/uploads/", nil, nil, 0)
			loc := rec.Header().Get("Location")
			if rec.Code != http.StatusAccepted || loc == "" {
				t.Fatalf("POST: status %d, Location %q", rec.Code, loc)
			}
			rec = uploadServe(h, http.MethodPatch, loc, blobHeader("Content-Range", "0-19"), bytes.NewReader(blobData[:20]), 20)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("PATCH 0-19: status %d, body %s", rec.Code, rec.Body)
			}

			broken := &uploadBrokenBody{data: rest[:10], err: c.err}
			rec = uploadServe(h, c.method, loc+c.query, c.header, broken, c.length)
			if rec.Code < 400 {
				t.Errorf("%s with a body broken after 10 bytes: status %d, Range %q; want an error",
					c.method, rec.Code, rec.Header().Get("Range"))
			}

			rec = uploadServe(h, http.MethodGet, loc, nil, nil, 0)
			if got := rec.Header().Get("Range"); rec.Code != http.StatusNoContent || got != "0-19" {
				t.Errorf("GET %s afterwards: status %d, Range %q; want 204, 0-19", loc, rec.Code, got)
			}
			rec = uploadServe(h, http.MethodHead, blobPath("app", blobDigest), nil, nil, 0)
			if rec.Code != http.StatusNotFound {
				t.Errorf("HEAD of the blob afterwards: status %d, want 404", rec.Code)
			}
			// The client resumes from what the registry holds.
			rec = uploadServe(h, http.MethodGet, loc, nil, nil, 0)
			var from int
			if _, err := fmt.Sscanf(rec.Header().Get("Range"), "0-%d", &from); err != nil {
				t.Fatalf("Range %q: %v", rec.Header().Get("Range"), err)
			}
			from++
			rec = uploadServe(h, http.MethodPut, loc+"?digest="+blobDigest.String(),
				blobHeader("Content-Range", fmt.Sprintf("%d-63", from)), bytes.NewReader(blobData[from:]), int64(64-from))
			if rec.Code != http.StatusCreated {
				t.Errorf("resuming at %d: status %d, body %s; want 201", from, rec.Code, rec.Body)
			}
		})
	}
}
