// Package client is wharf's daemonless image client: it talks to registries
// through go-containerregistry and keeps images in the local store
// (internal/client/store). Every operation is one function taking ctx first,
// an options struct and an io.Writer for docker-like output.
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/client/auth"
	"github.com/wharf/wharf/internal/client/ref"
	"github.com/wharf/wharf/internal/client/store"
)

// Remote says how to reach registries; every remote operation's options
// embed it. The zero value uses docker's config.json and $WHARF_HOME.
type Remote struct {
	// Insecure allows plain HTTP (and unverified TLS) to every registry the
	// operation touches, like a registry in docker's insecure-registries.
	Insecure bool
	// DockerConfig is the directory of docker's config.json; "" means
	// $DOCKER_CONFIG, else ~/.docker.
	DockerConfig string
	// Home is wharf's directory ($WHARF_HOME); its config.json may list
	// insecure-registries. "" means store.DefaultRoot().
	Home string
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// Jobs is the number of blobs moved at once; 0 means docker's 5.
	Jobs int
}

func (r Remote) jobs() int {
	if r.Jobs > 0 {
		return r.Jobs
	}
	return 5
}

func (r Remote) keychain() authn.Keychain { return auth.Keychain{Dir: r.DockerConfig} }

// wharfConfig is $WHARF_HOME/config.json; only the keys the client reads.
type wharfConfig struct {
	InsecureRegistries []string `json:"insecure-registries"`
}

func (r Remote) home() string {
	if r.Home != "" {
		return r.Home
	}
	return store.DefaultRoot()
}

// insecureRegistries reads the insecure-registries list from
// $WHARF_HOME/config.json; a missing file is an empty list.
func (r Remote) insecureRegistries() ([]string, error) {
	p := filepath.Join(r.home(), "config.json")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c wharfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return c.InsecureRegistries, nil
}

// plainHTTPAllowed decides, as docker does, whether host may be spoken to
// over plain HTTP: always for localhost and 127.0.0.0/8 (and ::1), else
// only with --insecure or when insecure-registries lists the host, the
// host:port, or a CIDR containing the host's address.
func (r Remote) plainHTTPAllowed(host string) (bool, error) {
	if r.Insecure || isLoopback(host) {
		return true, nil
	}
	list, err := r.insecureRegistries()
	if err != nil {
		return false, err
	}
	h := hostname(host)
	for _, entry := range list {
		entry = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(entry, "http://"), "https://"), "/")
		if entry == host || entry == h {
			return true, nil
		}
		if _, cidr, err := net.ParseCIDR(entry); err == nil {
			if ip := net.ParseIP(h); ip != nil && cidr.Contains(ip) {
				return true, nil
			}
		}
	}
	return false, nil
}

func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

func isLoopback(host string) bool {
	h := hostname(host)
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// registryTransport is the HTTP transport for one registry host. It refuses
// plain HTTP to hosts not allowed it (go-containerregistry would otherwise
// fall back to HTTP for any RFC 1918 or .local name) and skips certificate
// checks for allowed ones, as docker does for insecure registries.
func (r Remote) registryTransport(host string, insecure bool) http.RoundTripper {
	base := r.Transport
	if base == nil {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		if insecure {
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for an insecure registry
		}
		base = t
	}
	return &schemeGuard{host: host, allowHTTP: insecure, next: base}
}

// errPlainHTTPRefused is returned by the transport for an http:// request
// to a registry that is not allowed plain HTTP.
var errPlainHTTPRefused = errors.New("plain HTTP not allowed")

type schemeGuard struct {
	host      string
	allowHTTP bool
	next      http.RoundTripper
}

func (g *schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errPlainHTTPRefused
	}
	return g.next.RoundTrip(req)
}

// target is one registry (and maybe repository) resolved for access.
type target struct {
	host     string
	insecure bool
	opts     []remote.Option
	rt       http.RoundTripper
}

func (r Remote) target(ctx context.Context, host string) (target, error) {
	insecure, err := r.plainHTTPAllowed(host)
	if err != nil {
		return target{}, err
	}
	rt := r.registryTransport(host, insecure)
	return target{
		host:     host,
		insecure: insecure,
		rt:       rt,
		opts: []remote.Option{
			remote.WithContext(ctx),
			remote.WithTransport(rt),
			remote.WithAuthFromKeychain(r.keychain()),
			remote.WithJobs(r.jobs()),
			remote.WithUserAgent("wharf"),
		},
	}, nil
}

func (t target) nameOpts() []name.Option {
	if t.insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// parseRef turns a docker-style reference into the normalised form and
// the go-containerregistry reference to use with t.
func (r Remote) parseRef(ctx context.Context, s string) (reference.Named, name.Reference, target, error) {
	named, err := ref.Parse(s)
	if err != nil {
		return nil, nil, target{}, err
	}
	t, err := r.target(ctx, ref.Domain(named))
	if err != nil {
		return nil, nil, target{}, err
	}
	nr, err := ggcrRef(named, t)
	return named, nr, t, err
}

// ggcrRef converts a normalised reference; a digest wins over a tag.
func ggcrRef(named reference.Named, t target) (name.Reference, error) {
	s := named.String()
	if c, ok := named.(reference.Canonical); ok {
		s = named.Name() + "@" + c.Digest().String()
	}
	nr, err := name.ParseReference(s, t.nameOpts()...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %w", err)
	}
	return nr, nil
}

// ggcrRepo converts a normalised name into a repository.
func ggcrRepo(named reference.Named, t target) (name.Repository, error) {
	repo, err := name.NewRepository(named.Name(), t.nameOpts()...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("invalid reference format: %w", err)
	}
	return repo, nil
}

// tagOf returns the tag of a normalised reference, or "".
func tagOf(named reference.Named) string {
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return ""
}

// withTag returns named (a normalised name) with tag.
func withTag(named reference.Named, tag string) (reference.NamedTagged, error) {
	return reference.WithTag(reference.TrimNamed(named), tag)
}

// sortedTags sorts tags the way `docker push --all-tags` reports them.
func sortedTags(tags []string) []string {
	out := slices.Clone(tags)
	slices.Sort(out)
	return out
}

// checkAllTags refuses a tag or digest where --all-tags wants a repository.
func checkAllTags(n reference.Named) error {
	if _, ok := n.(reference.Tagged); ok {
		return errors.New("tag can't be used with --all-tags/-a")
	}
	if _, ok := n.(reference.Canonical); ok {
		return errors.New("digest can't be used with --all-tags/-a")
	}
	return nil
}

// remoteTags lists the tags of named's repository at t, sorted.
func remoteTags(named reference.Named, t target) ([]string, error) {
	repo, err := ggcrRepo(named, t)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(repo, t.opts...)
	if err != nil {
		return nil, explain(err, t.host, ref.FamiliarName(named))
	}
	return sortedTags(tags), nil
}
