package s3

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// A redirect URL is signed for the public endpoint without a request to
// either endpoint: neither name here resolves or answers.
func TestRedirectURL_SignedOfflineForThePublicEndpoint(t *testing.T) {
	cfg := Config{
		Bucket: "images", Prefix: "reg/", Endpoint: "http://s3.internal.invalid:7070", Region: "eu-1", PathStyle: true,
		AccessKey: "AKEXAMPLE", SecretKey: "secret", RedirectExpiry: 5 * time.Minute,
		PublicEndpoint: "https://blobs.example.invalid",
	}
	s, err := open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromString("layer")
	raw, err := s.RedirectURL(t.Context(), d)
	if err != nil {
		t.Fatalf("RedirectURL: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	wantPath := "/images/reg/blobs/sha256/" + d.Encoded()[:2] + "/" + d.Encoded()
	if u.Scheme != "https" || u.Host != "blobs.example.invalid" || u.Path != wantPath {
		t.Errorf("URL %s; want https://blobs.example.invalid%s", u, wantPath)
	}
	if q.Get("X-Amz-Expires") != "300" || !strings.HasPrefix(q.Get("X-Amz-Credential"), "AKEXAMPLE/") ||
		!strings.Contains(q.Get("X-Amz-Credential"), "/eu-1/s3/") || q.Get("X-Amz-Signature") == "" {
		t.Errorf("URL %s: want a SigV4 presigned URL for AKEXAMPLE in eu-1, valid 300s", u)
	}
	// Only the host is signed: a client's Range header must pass.
	if q.Get("X-Amz-SignedHeaders") != "host" {
		t.Errorf("signed headers %q; want host only", q.Get("X-Amz-SignedHeaders"))
	}

	cfg.PublicEndpoint = ""
	if s, err = open(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if raw, err = s.RedirectURL(t.Context(), d); err != nil || !strings.HasPrefix(raw, "http://s3.internal.invalid:7070/images/") {
		t.Errorf("without a public endpoint: %q, %v; want a URL for the endpoint", raw, err)
	}
	if _, err := s.RedirectURL(t.Context(), "sha256:nothex"); err == nil {
		t.Error("RedirectURL of an invalid digest succeeded")
	}
}

func TestRedirectURL_OffByDefault(t *testing.T) {
	s, err := open(Config{Bucket: "images", Endpoint: "http://s3.internal.invalid:7070", AccessKey: "AK", SecretKey: "SK"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := s.RedirectURL(t.Context(), digest.FromString("layer")); raw != "" || err != nil {
		t.Errorf("RedirectURL with redirects off = %q, %v; want \"\", nil", raw, err)
	}
}

func TestConfig_RejectsBadRedirectSettings(t *testing.T) {
	base := Config{Bucket: "images", Endpoint: "http://h:1"}
	for name, c := range map[string]Config{
		"public endpoint with a path": {PublicEndpoint: "https://h/images"},
		"public endpoint not http":    {PublicEndpoint: "ftp://h"},
		"expiry beyond 7 days":        {RedirectExpiry: 8 * 24 * time.Hour},
		"negative expiry":             {RedirectExpiry: -time.Minute},
	} {
		c.Bucket, c.Endpoint = base.Bucket, base.Endpoint
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}
