package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/client/ref"
)

// TagChange is one move or delete of a tag as wharf's JSON API reports
// it: From is "" for a new tag, To "" for a delete.
type TagChange struct {
	ID    int64     `json:"id"`
	Tag   string    `json:"tag"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Actor string    `json:"actor"`
	Via   string    `json:"via"`
	At    time.Time `json:"at"`
}

// RepoHistoryOptions are `wharf repo history`'s flags.
type RepoHistoryOptions struct {
	Remote
	// Limit is how many changes to show, newest first; 0 means all.
	Limit int
}

// RepoRollbackOptions are `wharf repo rollback`'s flags: one of To and
// Steps.
type RepoRollbackOptions struct {
	Remote
	// To is the digest to point the tag at.
	To string
	// Steps undoes the tag's last Steps changes.
	Steps int
}

// RepoHistory prints what a tag (REPO:TAG) pointed at over time, newest
// first, from the registry's tag history (wharf's JSON API).
func RepoHistory(ctx context.Context, refStr string, opts RepoHistoryOptions, out io.Writer) error {
	api, err := newHubClient(ctx, opts.Remote, refStr)
	if err != nil {
		return err
	}
	changes, err := api.history(ctx, opts.Limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "WHEN (UTC)\tHOW\tBY\tFROM\tTO")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.At.UTC().Format(time.DateTime), c.Via, dash(c.Actor), dash(c.From), dash(c.To))
	}
	return tw.Flush()
}

// RepoRollback points a tag (REPO:TAG) back at an earlier manifest: the
// digest --to names, or the one it pointed at --steps changes ago (a
// deleted tag comes back with --steps 1).
func RepoRollback(ctx context.Context, refStr string, opts RepoRollbackOptions, out io.Writer) error {
	if (opts.To == "") == (opts.Steps <= 0) {
		return errors.New("say where to: --to DIGEST or --steps N (N ≥ 1)")
	}
	api, err := newHubClient(ctx, opts.Remote, refStr)
	if err != nil {
		return err
	}
	to := opts.To
	if to == "" {
		changes, err := api.history(ctx, opts.Steps)
		if err != nil {
			return err
		}
		if len(changes) < opts.Steps {
			return fmt.Errorf("%s has %d recorded changes, fewer than %d steps", api.what, len(changes), opts.Steps)
		}
		if to = changes[opts.Steps-1].From; to == "" {
			return fmt.Errorf("%s did not exist %d changes ago: nothing to roll back to", api.what, opts.Steps)
		}
	}
	if _, err := digest.Parse(to); err != nil {
		return fmt.Errorf("--to %q: want a digest (sha256:…): %w", to, err)
	}
	body, _ := json.Marshal(map[string]string{"digest": to})
	if err := api.call(ctx, http.MethodPost, "/restore", body, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s now points to %s\n", api.what, to)
	return nil
}

// hubClient calls wharf's JSON API on one tag.
type hubClient struct {
	c     *http.Client
	base  string // …/v2/namespaces/NS/repositories/REPO/tags/TAG
	authz string
	host  string
	what  string
}

// newHubClient resolves REPO:TAG to its tag's API URL, with the
// credentials `wharf login` (or docker login) saved for the registry.
// The API names repositories NAMESPACE/NAME, as Docker Hub's does.
func newHubClient(ctx context.Context, r Remote, refStr string) (*hubClient, error) {
	named, err := ref.ParseName(refStr)
	if err != nil {
		return nil, err
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return nil, fmt.Errorf("%q names no tag; give REPOSITORY:TAG", refStr)
	}
	ns, repoName, ok := strings.Cut(reference.Path(named), "/")
	if !ok || strings.Contains(repoName, "/") {
		return nil, fmt.Errorf("%q: the history API names repositories NAMESPACE/NAME (two parts)", refStr)
	}
	t, err := r.target(ctx, ref.Domain(named))
	if err != nil {
		return nil, err
	}
	repo, err := ggcrRepo(named, t)
	if err != nil {
		return nil, err
	}
	ch, err := transport.Ping(ctx, repo.Registry, t.rt)
	if err != nil {
		return nil, explain(err, t.host, ref.Familiar(named))
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	h := &hubClient{
		c:    &http.Client{Transport: t.rt},
		host: t.host,
		what: ref.Familiar(named),
		base: scheme + "://" + repo.RegistryStr() + "/v2/namespaces/" + url.PathEscape(ns) + "/repositories/" +
			url.PathEscape(repoName) + "/tags/" + url.PathEscape(tagged.Tag()),
	}
	if h.authz, err = basicAuth(ctx, r.keychain(), repo); err != nil {
		return nil, err
	}
	return h, nil
}

// basicAuth is the Authorization header of the saved credentials, "" for
// none: the JSON API takes a password or an access token (which is what
// a login through a token service saves as the identity token).
func basicAuth(ctx context.Context, kc authn.Keychain, repo name.Repository) (string, error) {
	a, err := authn.Resolve(ctx, kc, repo)
	if err != nil {
		return "", err
	}
	cfg, err := authn.Authorization(ctx, a)
	if err != nil {
		return "", err
	}
	secret := cfg.Password
	if secret == "" {
		secret = cfg.IdentityToken
	}
	if cfg.Username == "" || secret == "" {
		return "", nil
	}
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(cfg.Username, secret)
	return req.Header.Get("Authorization"), nil
}

// history reads up to limit changes (0: all), newest first.
func (h *hubClient) history(ctx context.Context, limit int) ([]TagChange, error) {
	var all []TagChange
	for page := 1; ; page++ {
		var p struct {
			Next    *string     `json:"next"`
			Results []TagChange `json:"results"`
		}
		if err := h.call(ctx, http.MethodGet, fmt.Sprintf("/history?page=%d&page_size=100", page), nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Results...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], nil
		}
		if p.Next == nil || len(p.Results) == 0 {
			return all, nil
		}
	}
}

// call sends one request to the tag's URL plus suffix and decodes the
// answer into v (if not nil), or returns the registry's message.
func (h *hubClient) call(ctx context.Context, method, suffix string, body []byte, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, h.base+suffix, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.authz != "" {
		req.Header.Set("Authorization", h.authz)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return explain(err, h.host, h.what)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("%s: the registry's answer is not the JSON expected: %w", h.what, err)
		}
		return nil
	}
	var e struct {
		Message string `json:"message"`
		Errors  []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(data, &e)
	msg := e.Message
	if len(e.Errors) > 0 {
		msg = e.Errors[0].Message
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w: access to %s was denied; if it needs credentials, run `wharf login %s`", ErrUnauthorized, h.what, h.host)
	case http.StatusForbidden:
		if len(e.Errors) > 0 && e.Errors[0].Code == "DENIED" {
			return fmt.Errorf("%w: %s", ErrDenied, msg)
		}
		return fmt.Errorf("%w: %s: %s", ErrUnauthorized, h.what, msg)
	case http.StatusNotFound:
		if len(e.Errors) > 0 {
			return fmt.Errorf("%w: %s", ErrManifestUnknown, msg)
		}
		return fmt.Errorf("%w: %s not found at %s (or the registry keeps no tag history)", ErrNameUnknown, h.what, h.host)
	}
	return fmt.Errorf("%s: the registry answered %s: %s", h.what, resp.Status, msg)
}
