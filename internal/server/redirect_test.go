package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/servicetest"
)

// withRedirect turns on blob redirects signed for public.
func withRedirect(public string) registrytest.Option {
	return registrytest.WithConfig(func(c *config.Config) {
		c.Storage.S3.Redirect, c.Storage.S3.PublicEndpoint = true, public
	})
}

// publicEndpoint names srv by another host than the registry's 127.0.0.1,
// as a real deployment's public store is: an HTTP client then drops the
// registry credentials when it follows the redirect, instead of sending
// them to the store beside the URL's signature.
func publicEndpoint(t *testing.T, srv *servicetest.S3) string {
	t.Helper()
	if !strings.Contains(srv.Endpoint, "//127.0.0.1:") {
		t.Fatalf("versitygw at %s: want a 127.0.0.1 endpoint to rename", srv.Endpoint)
	}
	return strings.Replace(srv.Endpoint, "//127.0.0.1:", "//localhost:", 1)
}

// noFollow is a client that shows redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// call sends a request with client, with authz and the given headers.
func call(t *testing.T, client *http.Client, method, u string, authz func(*http.Request), header ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	authz(req)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, u, err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// wantNoURL fails if a reply hands out a presigned URL anywhere.
func wantNoURL(t *testing.T, what string, got reply) {
	t.Helper()
	if loc := got.header.Get("Location"); loc != "" || bytes.Contains(got.body, []byte("X-Amz-")) {
		t.Errorf("%s = %d with Location %q and body %s; want no presigned URL", what, got.status, loc, got.body)
	}
}

// With redirects on, a GET of a blob that passes the authorization check
// answers 307 to a presigned URL for the public endpoint, and a client
// following it gets the blob's bytes, ranges included; callers the check
// refuses get 401, 403 or 404 and never a URL; HEADs and manifests, by
// either endpoint, are answered by wharf itself.
func TestBlobGet_OnS3_RedirectsAfterTheAuthorizationCheck(t *testing.T) {
	s3 := servicetest.StartS3(t)
	public := publicEndpoint(t, s3)
	w := newAuthWorld(t, onS3(s3, s3.Bucket(t)), withRedirect(public))
	pub, _ := url.Parse(public)
	layers := map[string][]byte{}
	for _, repo := range w.repos {
		got := call(t, http.DefaultClient, "GET", w.srv.URL+"/v2/"+repo+"/blobs/"+w.layer[repo].String(), basic("admin", adminPassword))
		if got.status != http.StatusOK || digest.FromBytes(got.body) != w.layer[repo] {
			t.Fatalf("GET %s layer through the redirect = %d, %d bytes of digest %s; want 200 with %s",
				repo, got.status, len(got.body), digest.FromBytes(got.body), w.layer[repo])
		}
		layers[repo] = got.body
	}

	t.Run("every caller the check allows is redirected, and no other", func(t *testing.T) {
		for _, s := range w.subjects {
			for _, repo := range w.repos {
				what := fmt.Sprintf("%s GET %s layer", s.name, repo)
				got := call(t, noFollow, "GET", w.srv.URL+"/v2/"+repo+"/blobs/"+w.layer[repo].String(), basic(s.user, s.secret))
				allowed := !s.badCreds && containsAll(s.rights(repo, w.public[repo]), []string{"pull"})
				if !allowed {
					if got.status != 401 && got.status != 403 && got.status != 404 {
						t.Errorf("%s = %d %s; want 401, 403 or 404", what, got.status, got.body)
					}
					wantNoURL(t, what, got)
					continue
				}
				loc, err := url.Parse(got.header.Get("Location"))
				if got.status != http.StatusTemporaryRedirect || err != nil {
					t.Errorf("%s = %d Location %q; want 307 to the store", what, got.status, got.header.Get("Location"))
					continue
				}
				if loc.Host != pub.Host || loc.Query().Get("X-Amz-Signature") == "" || loc.Query().Get("X-Amz-Expires") != "600" {
					t.Errorf("%s: Location %s; want a URL presigned for %s, valid 600s", what, loc, pub.Host)
				}
				if got.header.Get("Docker-Content-Digest") != w.layer[repo].String() || got.header.Get("Cache-Control") != "no-store" {
					t.Errorf("%s: Docker-Content-Digest %q, Cache-Control %q; want %s, no-store", what,
						got.header.Get("Docker-Content-Digest"), got.header.Get("Cache-Control"), w.layer[repo])
				}
			}
		}
	})

	t.Run("a blob the repository does not hold is unknown, without a URL", func(t *testing.T) {
		got := call(t, noFollow, "GET", w.srv.URL+"/v2/alice/pub/blobs/"+w.layer["alice/priv"].String(), basic("alice", userPassword))
		check(t, "alice/priv's layer through alice/pub", got, "GET", 404, "BLOB_UNKNOWN")
		wantNoURL(t, "alice/priv's layer through alice/pub", got)
	})

	t.Run("a followed redirect carries the Range", func(t *testing.T) {
		want := layers["acme/priv"][100:300]
		got := call(t, http.DefaultClient, "GET", w.srv.URL+"/v2/acme/priv/blobs/"+w.layer["acme/priv"].String(),
			basic("carol", userPassword), "Range", "bytes=100-299")
		if got.status != http.StatusPartialContent || !bytes.Equal(got.body, want) {
			t.Errorf("ranged GET through the redirect = %d with %d bytes (equal: %v); want 206 with bytes 100-299",
				got.status, len(got.body), bytes.Equal(got.body, want))
		}
	})

	t.Run("a matching If-None-Match is answered without a URL", func(t *testing.T) {
		d := w.layer["alice/pub"]
		got := call(t, noFollow, "GET", w.srv.URL+"/v2/alice/pub/blobs/"+d.String(), basic("", ""), "If-None-Match", `"`+d.String()+`"`)
		if got.status != http.StatusNotModified {
			t.Errorf("GET with If-None-Match = %d; want 304", got.status)
		}
		wantNoURL(t, "304", got)
	})

	t.Run("HEADs and manifests are served, not redirected", func(t *testing.T) {
		admin := basic("admin", adminPassword)
		repo := "acme/priv"
		got := call(t, noFollow, "HEAD", w.srv.URL+"/v2/"+repo+"/blobs/"+w.layer[repo].String(), admin)
		if got.status != http.StatusOK || got.header.Get("Content-Length") != fmt.Sprint(len(layers[repo])) {
			t.Errorf("blob HEAD = %d Content-Length %q; want 200, %d", got.status, got.header.Get("Content-Length"), len(layers[repo]))
		}
		wantNoURL(t, "blob HEAD", got)
		for _, path := range []string{"/manifests/v1", "/manifests/" + w.manifest[repo].String(), "/blobs/" + w.manifest[repo].String()} {
			got := call(t, noFollow, "GET", w.srv.URL+"/v2/"+repo+path, admin,
				"Accept", "application/vnd.oci.image.manifest.v1+json")
			if got.status != http.StatusOK || !bytes.Equal(got.body, w.body[repo]) {
				t.Errorf("GET %s = %d %s; want 200 with the manifest", path, got.status, got.body)
			}
			wantNoURL(t, "GET "+path, got)
		}
	})
}

// Redirects are off by default: the S3 store's blobs are served by wharf.
func TestBlobGet_OnS3_ServedWithoutRedirectByDefault(t *testing.T) {
	s3 := servicetest.StartS3(t)
	srv := registrytest.NewServer(t, onS3(s3, s3.Bucket(t)))
	b := randomBytes(1000, 7)
	d := sha256Digest(b)
	resp, body := do(t, http.MethodPost, srv.URL+"/v2/team/app/blobs/uploads/?digest="+d.String(), b, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push = %d %s", resp.StatusCode, body)
	}
	got := call(t, noFollow, "GET", srv.URL+"/v2/team/app/blobs/"+d.String(), basic("", ""))
	if got.status != http.StatusOK || !bytes.Equal(got.body, b) {
		t.Errorf("GET = %d with %d bytes; want 200 with the %d pushed", got.status, len(got.body), len(b))
	}
	wantNoURL(t, "GET with redirects off", got)
}
