package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// newTransport is the load generator's HTTP/1.1 transport: one keep-alive
// connection per concurrent client, no compression, no proxy, buffers large
// enough that a body moves in few system calls.
func newTransport(conns, bufSize int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ReadBufferSize:      bufSize,
		WriteBufferSize:     bufSize,
	}
}

// regClient speaks the parts of the OCI distribution API the scenarios use.
type regClient struct {
	base *url.URL
	hc   *http.Client
}

func newRegClient(base string, conns, bufSize int) *regClient {
	u, err := url.Parse(base)
	if err != nil {
		panic(err) // base is built by the harness
	}
	return &regClient{base: u, hc: &http.Client{Transport: newTransport(conns, bufSize)}}
}

func (c *regClient) close() { c.hc.CloseIdleConnections() }

// url is base + path; path starts with "/" (or is empty).
func (c *regClient) url(path string) string { return c.base.String() + path }

// statusError is an unexpected HTTP answer.
type statusError struct {
	Method, URL string
	Code        int
	Body        string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Code, e.Body)
}

// do sends req and drains and closes the answer; any status not in want is
// an error.
func (c *regClient) do(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	for _, w := range want {
		if resp.StatusCode == w {
			_, err = io.Copy(io.Discard, resp.Body)
			return resp, err
		}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp, &statusError{req.Method, req.URL.Redacted(), resp.StatusCode, string(bytes.TrimSpace(b))}
}

func (c *regClient) newRequest(ctx context.Context, method, u string, body io.Reader, size int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	return req, nil
}

// location resolves a Location header against the request's URL.
func location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: no Location header", resp.Request.Method, resp.Request.URL.Path)
	}
	return resp.Request.URL.Parse(loc)
}

func withDigest(u *url.URL, d string) string {
	q := u.Query()
	q.Set("digest", d)
	v := *u
	v.RawQuery = q.Encode()
	return v.String()
}

// startUpload opens an upload session (POST) and returns its location.
func (c *regClient) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	req, err := c.newRequest(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/"), nil, 0)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	return location(resp)
}

// pushMonolithic uploads body as one PUT after the POST.
func (c *regClient) pushMonolithic(ctx context.Context, repo, d string, body io.Reader, size int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, http.MethodPut, withDigest(loc, d), body, size)
	if err != nil {
		return err
	}
	_, err = c.do(req, http.StatusCreated)
	return err
}

// pushChunked uploads b in PATCH requests of chunk bytes with Content-Range,
// then closes the session with an empty PUT.
func (c *regClient) pushChunked(ctx context.Context, repo, d string, b blob, chunk int64) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	for off := int64(0); off < b.Size; off += chunk {
		n := min(chunk, b.Size-off)
		req, err := c.newRequest(ctx, http.MethodPatch, loc.String(), b.section(off, n), n)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		resp, err := c.do(req, http.StatusAccepted)
		if err != nil {
			return err
		}
		if loc, err = location(resp); err != nil {
			return err
		}
	}
	req, err := c.newRequest(ctx, http.MethodPut, withDigest(loc, d), bytes.NewReader(nil), 0)
	if err != nil {
		return err
	}
	_, err = c.do(req, http.StatusCreated)
	return err
}

// pushSmall uploads a small blob as containerd, BuildKit and oras do:
// HEAD to see whether the repository has it, then POST and a PUT with the
// body (chunked, false), or as docker, podman and crane do: HEAD, POST,
// a PATCH with the body, and a PUT without one (chunked, true).
func (c *regClient) pushSmall(ctx context.Context, repo string, data []byte, d string, chunked bool) error {
	req, err := c.newRequest(ctx, http.MethodHead, c.url("/v2/"+repo+"/blobs/"+d), nil, 0)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if chunked {
		return c.pushPatched(ctx, repo, d, data)
	}
	return c.pushMonolithic(ctx, repo, d, bytes.NewReader(data), int64(len(data)))
}

// pushPatched uploads data in one PATCH (no Content-Range, as docker
// sends it) and closes the session with an empty PUT.
func (c *regClient) pushPatched(ctx context.Context, repo, d string, data []byte) error {
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, http.MethodPatch, loc.String(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusAccepted)
	if err != nil {
		return err
	}
	if loc, err = location(resp); err != nil {
		return err
	}
	req, err = c.newRequest(ctx, http.MethodPut, withDigest(loc, d), bytes.NewReader(nil), 0)
	if err != nil {
		return err
	}
	_, err = c.do(req, http.StatusCreated)
	return err
}

// mountOrPush links blob d from repository from into repo (a cross-repo
// mount); if the registry declines, it uploads data instead.
func (c *regClient) mountOrPush(ctx context.Context, repo, from string, data []byte, d string) error {
	q := url.Values{"mount": {d}, "from": {from}}
	req, err := c.newRequest(ctx, http.MethodPost, c.url("/v2/"+repo+"/blobs/uploads/")+"?"+q.Encode(), nil, 0)
	if err != nil {
		return err
	}
	resp, err := c.do(req, http.StatusCreated, http.StatusAccepted)
	if err != nil || resp.StatusCode == http.StatusCreated {
		return err
	}
	loc, err := location(resp)
	if err != nil {
		return err
	}
	req, err = c.newRequest(ctx, http.MethodPut, withDigest(loc, d), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	_, err = c.do(req, http.StatusCreated)
	return err
}

func (c *regClient) putManifest(ctx context.Context, repo, ref string, body []byte) error {
	req, err := c.newRequest(ctx, http.MethodPut, c.url("/v2/"+repo+"/manifests/"+ref), bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", v1.MediaTypeImageManifest)
	_, err = c.do(req, http.StatusCreated)
	return err
}

// getBlob reads a whole blob into buf-sized pieces and returns its length.
func (c *regClient) getBlob(ctx context.Context, repo, d string, buf []byte) (int64, error) {
	req, err := c.newRequest(ctx, http.MethodGet, c.url("/v2/"+repo+"/blobs/"+d), nil, 0)
	if err != nil {
		return 0, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, &statusError{req.Method, req.URL.Redacted(), resp.StatusCode, string(b)}
	}
	var total int64
	for {
		n, err := resp.Body.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

var nextLink = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// getList GETs a tags or catalog page, decodes it into v and returns the
// URL of the next page ("" on the last).
// getList GETs a list body into v. took is the server's latency as the
// client sees it: from sending the request to the body's last byte. The
// JSON is decoded after that, because decoding 10,000 names into v is the
// load generator's work, and as slow for either server.
func (c *regClient) getList(ctx context.Context, u string, v any) (next string, took time.Duration, err error) {
	req, err := c.newRequest(ctx, http.MethodGet, u, nil, 0)
	if err != nil {
		return "", 0, err
	}
	t0 := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took = time.Since(t0)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, &statusError{req.Method, req.URL.Redacted(), resp.StatusCode, string(body[:min(len(body), 512)])}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return "", 0, fmt.Errorf("GET %s: %w", u, err)
	}
	if m := nextLink.FindStringSubmatch(resp.Header.Get("Link")); m != nil {
		n, err := req.URL.Parse(m[1])
		if err != nil {
			return "", 0, err
		}
		return n.String(), took, nil
	}
	return "", took, nil
}

// image is a small OCI image: config, layers and the manifest that names
// them, with the blobs' digests.
type image struct {
	config, manifest []byte
	layers           [][]byte
	configDigest     string
	layerDigests     []string
}

// newImage builds an image of nLayers random layers of layerSize bytes;
// seed makes every byte (and so every digest) its own.
func newImage(seed uint64, nLayers, layerSize int) image {
	var im image
	var diffIDs []digest.Digest
	var descs []v1.Descriptor
	for i := range nLayers {
		l := randomBytes(seed<<8|uint64(i), layerSize)
		d := sha256Digest(l)
		im.layers = append(im.layers, l)
		im.layerDigests = append(im.layerDigests, d)
		diffIDs = append(diffIDs, digest.Digest(d))
		descs = append(descs, v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: digest.Digest(d), Size: int64(len(l))})
	}
	cfg := v1.Image{
		Platform: v1.Platform{Architecture: "amd64", OS: "linux"},
		Config:   v1.ImageConfig{Labels: map[string]string{"wharf.bench.seed": strconv.FormatUint(seed, 10)}},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: diffIDs},
	}
	im.config, _ = json.Marshal(cfg)
	im.configDigest = sha256Digest(im.config)
	m := v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.Digest(im.configDigest), Size: int64(len(im.config))},
		Layers:    descs,
	}
	im.manifest, _ = json.Marshal(m)
	return im
}

// push uploads the image's blobs and its manifest under tag.
func (c *regClient) pushImage(ctx context.Context, repo, tag string, im image, chunked bool) error {
	for i, l := range im.layers {
		if err := c.pushSmall(ctx, repo, l, im.layerDigests[i], chunked); err != nil {
			return err
		}
	}
	if err := c.pushSmall(ctx, repo, im.config, im.configDigest, chunked); err != nil {
		return err
	}
	return c.putManifest(ctx, repo, tag, im.manifest)
}
