package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wharf/wharf/internal/client/auth"
)

// loginClientID is the client_id docker sends when it asks for a refresh
// token; registries may list refresh tokens by it.
const loginClientID = "docker"

// tokenResponse is a token service's answer (docker's distribution token
// spec, plus the OAuth2 field names).
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// verifyLogin does what docker's client-side login does: GET /v2/; on a
// Basic challenge, again with the credentials; on a Bearer challenge, ask
// the token service with the credentials and offline_token=true, then GET
// /v2/ with the token. It returns the refresh token the service handed out,
// which docker saves as the identity token instead of the password.
func verifyLogin(ctx context.Context, r Remote, host string, creds auth.Credentials) (identityToken string, err error) {
	t, err := r.target(ctx, apiHost(host))
	if err != nil {
		return "", err
	}
	reg, err := name.NewRegistry(apiHost(host), t.nameOpts()...)
	if err != nil {
		return "", fmt.Errorf("invalid registry %q: %w", host, err)
	}
	ch, err := transport.Ping(ctx, reg, t.rt)
	if err != nil {
		return "", explain(err, host, host)
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	base := scheme + "://" + reg.RegistryStr() + "/v2/"
	c := &http.Client{Transport: t.rt}

	var authz string
	switch strings.ToLower(ch.Scheme) {
	case "":
		return "", nil // an open registry: nothing to verify, as with docker
	case "basic":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
		if err != nil {
			return "", err
		}
		req.SetBasicAuth(creds.Username, creds.Password)
		authz = req.Header.Get("Authorization")
	case "bearer":
		tok, err := fetchToken(ctx, c, ch.Parameters, creds, host)
		if err != nil {
			return "", err
		}
		access := tok.Token
		if access == "" {
			access = tok.AccessToken
		}
		authz = "Bearer " + access
		identityToken = tok.RefreshToken
	default:
		return "", fmt.Errorf("login to %s: the registry asks for %q authentication, which wharf does not speak", host, ch.Scheme)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", authz)
	resp, err := c.Do(req)
	if err != nil {
		return "", explain(err, host, host)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return identityToken, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return "", loginRefused(host)
	default:
		return "", fmt.Errorf("login to %s: registry answered %s to GET /v2/", host, resp.Status)
	}
}

// fetchToken asks the token service named by a Bearer challenge, with Basic
// credentials and, as docker does, offline_token=true and client_id=docker
// (no scope: a login only proves the credentials).
func fetchToken(ctx context.Context, c *http.Client, params map[string]string, creds auth.Credentials, host string) (tokenResponse, error) {
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || realm == "" {
		return tokenResponse{}, fmt.Errorf("login to %s: the registry's token service %q is not a URL", host, realm)
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("offline_token", "true")
	q.Set("client_id", loginClientID)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return tokenResponse{}, err
	}
	req.SetBasicAuth(creds.Username, creds.Password)
	resp, err := c.Do(req)
	if err != nil {
		return tokenResponse{}, explain(err, host, host)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return tokenResponse{}, loginRefused(host)
	default:
		return tokenResponse{}, explain(transport.CheckError(resp, http.StatusOK), host, host)
	}
	var tok tokenResponse
	// A token answer is small; a service that streams more is broken.
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return tokenResponse{}, fmt.Errorf("login to %s: the token service's answer is not a token: %w", host, err)
	}
	if tok.Token == "" && tok.AccessToken == "" {
		return tokenResponse{}, fmt.Errorf("login to %s: the token service answered without a token", host)
	}
	return tok, nil
}

func loginRefused(host string) error {
	return fmt.Errorf("%w: login to %s failed: incorrect username or password", ErrUnauthorized, host)
}
