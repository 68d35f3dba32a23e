// Package upstream is the HTTP client of the pull-through cache: it reads
// manifests and blobs from a mirrored registry, with docker's token flow
// for its credentials, and notes the rate limit the registry reports.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"github.com/wharf/wharf/internal/proxy"
)

// manifestAccept lists every manifest type wharf stores, so that the
// upstream answers an index rather than picking one platform for us.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// Client reads from one upstream registry.
type Client struct {
	base     string // scheme://host[:port], no trailing slash
	registry name.Registry
	auth     authn.Authenticator
	rt       http.RoundTripper

	// transports holds one authenticated transport per repository: a
	// token is scoped to the repository it was asked for.
	mu         sync.Mutex
	transports map[string]http.RoundTripper

	remaining, limit atomic.Int64 // -1 until the upstream reports them
}

var _ proxy.Upstream = (*Client)(nil)

// New returns a client of the registry at rawURL, logging in with
// username and password when username is set.
func New(rawURL, username, password string, rt http.RoundTripper) (*Client, error) {
	base := strings.TrimRight(rawURL, "/")
	host, ok := strings.CutPrefix(base, "https://")
	var opts []name.Option
	if !ok {
		if host, ok = strings.CutPrefix(base, "http://"); !ok {
			return nil, fmt.Errorf("upstream %q: want an http:// or https:// URL", rawURL)
		}
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", rawURL, err)
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	var a authn.Authenticator = authn.Anonymous
	if username != "" {
		a = &authn.Basic{Username: username, Password: password}
	}
	c := &Client{base: base, registry: reg, auth: a, transports: map[string]http.RoundTripper{}}
	c.rt = rateLimitReader{next: rt, c: c}
	c.remaining.Store(-1)
	c.limit.Store(-1)
	return c, nil
}

// RateLimit is what the upstream last said of its pull limit (Docker
// Hub's ratelimit-limit and ratelimit-remaining); ok is false until it
// has said anything.
func (c *Client) RateLimit() (remaining, limit int64, ok bool) {
	r, l := c.remaining.Load(), c.limit.Load()
	return r, l, r >= 0 || l >= 0
}

func (c *Client) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.transports[repo]; ok {
		return t, nil
	}
	scope := c.registry.Repo(repo).Scope(transport.PullScope)
	t, err := transport.NewWithContext(ctx, c.registry, c.auth, c.rt, []string{scope})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", proxy.ErrUnreachable, err)
	}
	c.transports[repo] = t
	return t, nil
}

func (c *Client) do(ctx context.Context, method, repo, path, accept string) (*http.Response, error) {
	t, err := c.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v2/"+repo+path, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", proxy.ErrUnreachable, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp, nil
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s%s: %w", c.registry.Name(), repo, path, proxy.ErrNotFound)
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s %s%s answered %s", proxy.ErrUnreachable, c.registry.Name(), repo, path, resp.Status)
	}
}

// Manifest fetches ref of repo, verifying the body against the digest
// the upstream states (or ref itself, if a digest).
func (c *Client) Manifest(ctx context.Context, repo, ref string) (*proxy.Manifest, error) {
	resp, err := c.do(ctx, http.MethodGet, repo, "/manifests/"+ref, manifestAccept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, proxy.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read manifest: %v", proxy.ErrUnreachable, err)
	}
	if len(body) > proxy.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s:%s is larger than %d bytes", repo, ref, proxy.MaxManifestSize)
	}
	d := digest.FromBytes(body)
	want := resp.Header.Get("Docker-Content-Digest")
	if strings.HasPrefix(ref, "sha256:") {
		want = ref
	}
	if want != "" && want != d.String() {
		return nil, fmt.Errorf("manifest %s:%s: upstream sent %s for %s", repo, ref, d, want)
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return &proxy.Manifest{Digest: d, MediaType: strings.TrimSpace(mt), Body: body}, nil
}

// ManifestDigest asks with a HEAD, which Docker Hub does not count as a
// pull, which digest ref of repo has now.
func (c *Client) ManifestDigest(ctx context.Context, repo, ref string) (digest.Digest, error) {
	resp, err := c.do(ctx, http.MethodHead, repo, "/manifests/"+ref, manifestAccept)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return "", fmt.Errorf("%w: HEAD %s:%s without a valid Docker-Content-Digest", proxy.ErrUnreachable, repo, ref)
	}
	return d, nil
}

// Blob opens blob d of repo; the caller verifies what it reads.
func (c *Client) Blob(ctx context.Context, repo string, d digest.Digest) (io.ReadCloser, int64, error) {
	resp, err := c.do(ctx, http.MethodGet, repo, "/blobs/"+d.String(), "")
	if err != nil {
		return nil, 0, err
	}
	if resp.ContentLength < 0 {
		resp.Body.Close()
		return nil, 0, errors.New("upstream blob without a Content-Length")
	}
	return resp.Body, resp.ContentLength, nil
}

// rateLimitReader notes Docker Hub's rate-limit headers ("100;w=21600")
// from every answer.
type rateLimitReader struct {
	next http.RoundTripper
	c    *Client
}

func (r rateLimitReader) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if n, ok := rateLimitValue(resp.Header.Get("RateLimit-Remaining")); ok {
		r.c.remaining.Store(n)
	}
	if n, ok := rateLimitValue(resp.Header.Get("RateLimit-Limit")); ok {
		r.c.limit.Store(n)
	}
	return resp, nil
}

func rateLimitValue(h string) (int64, bool) {
	v, _, _ := strings.Cut(h, ";")
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n, err == nil && n >= 0
}
