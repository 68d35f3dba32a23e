package server

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/forwarded"
)

// tokenResponse is docker's token reply: token and access_token are the
// same JWT, for old and new clients.
type tokenResponse struct {
	Token        string `json:"token,omitempty"`
	AccessToken  string `json:"access_token"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// maxTokenForm bounds a POST /token body; the form holds a few short fields.
const maxTokenForm = 64 << 10

// token serves docker's token endpoint: GET with optional Basic
// credentials (token.md) and POST with an OAuth2 form (oauth.md).
// A request for an offline token gets a refresh token only when
// loginRefreshTokens is on; otherwise the answer simply lacks one, which
// the spec allows and which makes docker keep the password, as it does
// for Docker Hub.
func (g *gate) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodGet:
		g.tokenGet(w, r)
	case http.MethodPost:
		g.tokenPost(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		distribution.WriteError(w, r, g.log, distribution.NewError(distribution.CodeUnsupported, "the token endpoint takes GET or POST"))
	}
}

func (g *gate) tokenGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !g.checkService(w, r, q.Get("service")) {
		return
	}
	scopes, ok := g.parseScopes(w, r, q["scope"])
	if !ok {
		return
	}
	var sub auth.Subject
	if r.Header.Get("Authorization") != "" {
		user, secret, ok := r.BasicAuth()
		if !ok {
			g.tokenRefused(w, r, auth.ErrUnauthenticated)
			return
		}
		var err error
		if sub, err = g.auth.Authenticate(r.Context(), user, secret, forwarded.ClientAddr(r)); err != nil {
			g.tokenRefused(w, r, err)
			return
		}
	}
	refresh := ""
	if q.Get("offline_token") == "true" && g.loginRefreshTokens && !sub.Anonymous() {
		var err error
		if refresh, err = g.auth.IssueRefreshToken(r.Context(), sub, clientID(q.Get("client_id"))); err != nil {
			distribution.WriteError(w, r, g.log, err)
			return
		}
	}
	g.issue(w, r, sub, scopes, refresh, false)
}

func (g *gate) tokenPost(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		g.badTokenRequest(w, r, "the token endpoint takes an application/x-www-form-urlencoded form")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		g.badTokenRequest(w, r, "malformed form: "+err.Error())
		return
	}
	f := r.PostForm
	if !g.checkService(w, r, f.Get("service")) {
		return
	}
	scopes, ok := g.parseScopes(w, r, f["scope"])
	if !ok {
		return
	}
	var (
		sub     auth.Subject
		err     error
		refresh string
	)
	switch f.Get("grant_type") {
	case "password":
		sub, err = g.auth.Authenticate(r.Context(), f.Get("username"), f.Get("password"), forwarded.ClientAddr(r))
		if err == nil && f.Get("access_type") == "offline" && g.loginRefreshTokens {
			refresh, err = g.auth.IssueRefreshToken(r.Context(), sub, clientID(f.Get("client_id")))
		}
	case "refresh_token":
		sub, err = g.auth.Refresh(r.Context(), f.Get("refresh_token"))
	default:
		g.badTokenRequest(w, r, "grant_type must be password or refresh_token")
		return
	}
	if err != nil {
		g.tokenRefused(w, r, err)
		return
	}
	g.issue(w, r, sub, scopes, refresh, true)
}

// issue grants the requested scopes, intersected with sub's rights, and
// writes the token.
func (g *gate) issue(w http.ResponseWriter, r *http.Request, sub auth.Subject, scopes []auth.Access, refresh string, oauth bool) {
	granted, err := g.auth.Grant(r.Context(), sub, scopes)
	if err != nil {
		distribution.WriteError(w, r, g.log, err)
		return
	}
	tok, err := g.tokens.Issue(sub.User, sub.TokenID, granted)
	if err != nil {
		distribution.WriteError(w, r, g.log, err)
		return
	}
	if !sub.Anonymous() {
		g.log.InfoContext(r.Context(), "token issued", "user", sub.User, "granted", scopeStrings(granted),
			"refresh_token", refresh != "")
	}
	resp := tokenResponse{
		AccessToken: tok.Token, ExpiresIn: tok.ExpiresIn,
		IssuedAt: tok.IssuedAt.UTC().Format(time.RFC3339), RefreshToken: refresh,
	}
	if oauth {
		resp.Scope = strings.Join(scopeStrings(granted), " ")
	} else {
		resp.Token = tok.Token
	}
	body, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func scopeStrings(scopes []auth.Access) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = s.String()
	}
	return out
}

// checkService refuses tokens for another service: they would be
// useless here, and a typo deserves a clear answer.
func (g *gate) checkService(w http.ResponseWriter, r *http.Request, service string) bool {
	if service == "" || service == g.service {
		return true
	}
	g.badTokenRequest(w, r, "this token service is \""+g.service+"\", not \""+service+"\"")
	return false
}

func (g *gate) parseScopes(w http.ResponseWriter, r *http.Request, params []string) ([]auth.Access, bool) {
	scopes, err := auth.ParseScopes(params)
	if err != nil {
		g.badTokenRequest(w, r, strings.TrimSuffix(err.Error(), ": "+auth.ErrInvalid.Error()))
		return nil, false
	}
	return scopes, true
}

func (g *gate) badTokenRequest(w http.ResponseWriter, r *http.Request, msg string) {
	distribution.WriteError(w, r, g.log, &distribution.Error{Code: distribution.CodeUnsupported, Status: http.StatusBadRequest, Message: msg})
}

// tokenRefused answers failed credentials at the token endpoint: 401
// with a Basic challenge, since that is what the endpoint takes, or 429.
func (g *gate) tokenRefused(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrUnauthenticated) {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+g.service+`"`)
		distribution.WriteError(w, r, g.log, distribution.NewError(distribution.CodeUnauthorized, "incorrect username or password"))
		return
	}
	g.refuseCredentials(w, r, nil, err)
}

// clientID names a refresh token's client in listings.
func clientID(id string) string {
	if id == "" {
		return "unknown"
	}
	if id == auth.WebClientID {
		// Reserved: only the web UI's sign-in makes sessions.
		return "token-endpoint:" + id
	}
	if len(id) > 100 {
		return id[:100]
	}
	return id
}
