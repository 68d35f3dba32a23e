package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/wharf/wharf/internal/auth"
	"github.com/wharf/wharf/internal/distribution"
	"github.com/wharf/wharf/internal/forwarded"
	"github.com/wharf/wharf/internal/registry"
)

// gate authenticates /v2/ requests and asks auth whether the caller may
// do what the route needs. Handlers below it never see credentials: they
// find the caller in the context.
type gate struct {
	auth    *auth.Service
	tokens  *auth.Tokens
	service string
	realm   string // "" derives it from each request
	log     *slog.Logger
	// loginRefreshTokens: a password login at /token that asks for an
	// offline token gets a refresh token (config auth.login_refresh_tokens).
	loginRefreshTokens bool
}

// credentials is how a request identified itself.
type credentials int

const (
	credNone credentials = iota
	credBasic
	credBearer
)

// caller is who sent a request and how they proved it.
type caller struct {
	sub    auth.Subject
	how    credentials
	claims *auth.Claims // for credBearer
}

// holds returns the actions of n the caller holds: for a bearer token,
// exactly what the token carries (its subject's other rights do not
// count); otherwise what auth grants the subject now.
func (g *gate) holds(ctx context.Context, c caller, n need) ([]string, error) {
	if c.how != credBearer {
		return g.auth.Authorize(ctx, c.sub, n.Resource, n.Actions)
	}
	var out []string
	for _, a := range n.Actions {
		if c.claims.Allows(n.Type, n.Name, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// need is one scope a route requires.
type need = auth.Access

// needs returns the scopes the request's route requires: none for /v2/
// itself and unknown paths (which still need a caller when auth is on).
func needs(r *http.Request, rt distribution.Route) []need {
	repo := func(actions ...string) []need {
		return []need{{Resource: auth.Resource{Type: auth.TypeRepository, Name: rt.Name}, Actions: actions}}
	}
	switch rt.Kind {
	case distribution.KindCatalog:
		return []need{{Resource: auth.Resource{Type: auth.TypeRegistry, Name: auth.CatalogName}, Actions: []string{auth.ActionAll}}}
	case distribution.KindUploadStart, distribution.KindUpload:
		// Every step of an upload, its status and its cancellation included,
		// is part of a push.
		return repo(auth.ActionPull, auth.ActionPush)
	case distribution.KindManifest, distribution.KindBlob, distribution.KindTags, distribution.KindReferrers:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return repo(auth.ActionPull)
		case http.MethodDelete:
			return repo(auth.ActionDelete)
		default:
			return repo(auth.ActionPull, auth.ActionPush)
		}
	}
	return nil
}

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Refusals come from the registry too; docker looks for this header.
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		rt := distribution.ParseRoute(r.URL.Path)
		required := needs(r, rt)
		c, err := g.identify(r)
		if err != nil {
			g.refuseCredentials(w, r, required, err)
			return
		}
		if c.how == credNone && (rt.Kind == distribution.KindBase || rt.Kind == distribution.KindNotFound) {
			// /v2/ answers 401 so that clients discover the token service.
			g.challenge(w, r, nil, "", distribution.NewError(distribution.CodeUnauthorized, "authentication required"))
			return
		}
		for _, n := range required {
			held, err := g.holds(r.Context(), c, n)
			if err != nil {
				distribution.WriteError(w, r, g.log, err)
				return
			}
			if len(held) < len(n.Actions) {
				g.deny(w, r, c, required)
				return
			}
		}
		sub := c.sub
		ctx := auth.WithSubject(r.Context(), sub)
		ctx = registry.WithActor(ctx, sub.User)
		switch {
		case rt.Kind == distribution.KindCatalog,
			rt.Kind == distribution.KindUploadStart && r.URL.Query().Has("mount") && r.URL.Query().Get("from") == "":
			// A mount without a source may use any repository holding the
			// blob that the caller may pull, as the catalog lists those.
			if ctx, err = g.filterPullable(ctx, c); err != nil {
				distribution.WriteError(w, r, g.log, err)
				return
			}
		case rt.Kind == distribution.KindUploadStart && r.URL.Query().Has("mount"):
			retry, err := g.checkMountSource(ctx, r, c)
			if err != nil {
				distribution.WriteError(w, r, g.log, err)
				return
			}
			if retry {
				g.deny(w, r, c, required)
				return
			}
		case rt.Kind == distribution.KindBlob && r.Method == http.MethodHead:
			// A pusher's HEAD renews the blob's link (registry.StatBlob);
			// a reader's must not.
			push := need{Resource: auth.Resource{Type: auth.TypeRepository, Name: rt.Name}, Actions: []string{auth.ActionPush}}
			held, err := g.holds(ctx, c, push)
			if err != nil {
				distribution.WriteError(w, r, g.log, err)
				return
			}
			if len(held) == 0 {
				ctx = registry.WithPullOnly(ctx)
			}
		case rt.Kind == distribution.KindManifest && r.Method == http.MethodPut:
			if err := g.auth.EnsureVisibility(ctx, rt.Name); err != nil {
				distribution.WriteError(w, r, g.log, err)
				return
			}
		}
		// The registry writes the audit line of a delete, with the actor.
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// identify returns the caller of r. A request without credentials is
// anonymous; wrong credentials are an error, never anonymous.
func (g *gate) identify(r *http.Request) (caller, error) {
	h := r.Header.Get("Authorization")
	scheme, value, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		return caller{}, nil
	case strings.EqualFold(scheme, "Bearer"):
		claims, err := g.auth.VerifyBearer(r.Context(), g.tokens, strings.TrimSpace(value))
		if err != nil {
			return caller{how: credBearer}, err
		}
		return caller{sub: auth.Subject{User: claims.Subject}, how: credBearer, claims: claims}, nil
	case strings.EqualFold(scheme, "Basic"):
		user, secret, ok := r.BasicAuth()
		if !ok {
			return caller{how: credBasic}, auth.ErrUnauthenticated
		}
		sub, err := g.auth.Authenticate(r.Context(), user, secret, forwarded.ClientAddr(r))
		return caller{sub: sub, how: credBasic}, err
	}
	return caller{}, auth.ErrUnauthenticated
}

// filterPullable limits the catalog, and the repositories a mount without
// a source may use, to what the caller may pull. A token names only its
// user, so the account is looked up for its admin flag.
func (g *gate) filterPullable(ctx context.Context, c caller) (context.Context, error) {
	sub := c.sub
	if c.how == credBearer {
		var err error
		if sub, err = g.auth.SubjectFor(ctx, c.sub.User); err != nil {
			return ctx, err
		}
	}
	if sub.Admin {
		return ctx, nil
	}
	return registry.WithRepoFilter(ctx, g.pullable(sub)), nil
}

// pullable filters the catalog down to what sub may pull.
func (g *gate) pullable(sub auth.Subject) registry.RepoFilter {
	return func(ctx context.Context, repo string) (bool, error) {
		granted, err := g.auth.Authorize(ctx, sub, auth.Resource{Type: auth.TypeRepository, Name: repo}, []string{auth.ActionPull})
		return len(granted) == 1, err
	}
}

// checkMountSource drops a mount from a source (from=) the caller may not
// pull from, so that the request becomes a plain upload session as the
// spec says: the blob's presence elsewhere must not leak. A bearer token
// that lacks the source only because it was not asked for is answered
// with a challenge naming it (retry reports true), as the reference
// registry does, so that clients fetch a token good for both.
func (g *gate) checkMountSource(ctx context.Context, r *http.Request, c caller) (retry bool, err error) {
	q := r.URL.Query()
	source := need{Resource: auth.Resource{Type: auth.TypeRepository, Name: q.Get("from")}, Actions: []string{auth.ActionPull}}
	held, err := g.holds(ctx, c, source)
	if err != nil || len(held) == 1 {
		return false, err
	}
	if c.how == credBearer {
		sub, err := g.auth.SubjectFor(ctx, c.sub.User)
		if err != nil {
			return false, err
		}
		may, err := g.auth.Authorize(ctx, sub, source.Resource, source.Actions)
		if err != nil || len(may) == 1 {
			return len(may) == 1, err
		}
	}
	q.Del("mount")
	q.Del("from")
	r.URL.RawQuery = q.Encode()
	return false, nil
}

// refuseCredentials answers a request whose credentials failed.
func (g *gate) refuseCredentials(w http.ResponseWriter, r *http.Request, required []need, err error) {
	var limited *auth.RateLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		distribution.WriteError(w, r, g.log, distribution.NewError(distribution.CodeTooManyRequests, "too many failed logins; try again later"))
	case errors.Is(err, auth.ErrInvalidToken):
		g.challenge(w, r, required, auth.ChallengeInvalidToken, distribution.NewError(distribution.CodeUnauthorized, "invalid or expired token"))
	case errors.Is(err, auth.ErrUnauthenticated):
		g.challenge(w, r, required, "", distribution.NewError(distribution.CodeUnauthorized, "incorrect username or password"))
	default:
		distribution.WriteError(w, r, g.log, err)
	}
}

// deny answers a caller who lacks a right the route needs. Anonymous
// callers are asked to authenticate; a token without the scope gets
// docker's insufficient_scope challenge; a user who logged in with a
// password is simply denied.
func (g *gate) deny(w http.ResponseWriter, r *http.Request, c caller, required []need) {
	denied := &distribution.Error{Code: distribution.CodeDenied, Status: http.StatusForbidden,
		Message: "requested access to the resource is denied", Detail: scopeDetail(required)}
	switch c.how {
	case credNone:
		g.challenge(w, r, required, "", &distribution.Error{Code: distribution.CodeUnauthorized,
			Status: http.StatusUnauthorized, Message: "authentication required", Detail: scopeDetail(required)})
	case credBearer:
		denied.Status = http.StatusUnauthorized
		g.logDenied(r, c, required)
		g.challenge(w, r, required, auth.ChallengeInsufficientScope, denied)
	default:
		g.logDenied(r, c, required)
		distribution.WriteError(w, r, g.log, denied)
	}
}

// logDenied is the audit line for a refused request.
func (g *gate) logDenied(r *http.Request, c caller, required []need) {
	g.log.InfoContext(r.Context(), "access denied", "user", c.sub.User, "method", r.Method, "path", r.URL.Path,
		"needs", scopeStrings(required))
}

func scopeDetail(required []need) any {
	type item struct {
		Type   string `json:"Type"`
		Name   string `json:"Name"`
		Action string `json:"Action"`
	}
	var out []item
	for _, n := range required {
		for _, a := range n.Actions {
			out = append(out, item{n.Type, n.Name, a})
		}
	}
	return out
}

// challenge answers 401 with the bearer challenge for required.
func (g *gate) challenge(w http.ResponseWriter, r *http.Request, required []need, code string, err *distribution.Error) {
	scopes := required
	if q := r.URL.Query(); r.Method == http.MethodPost && q.Has("mount") && q.Get("from") != "" {
		// Not required (without it the mount becomes an upload), but a
		// client that asks for it too can mount.
		scopes = append(slices.Clone(required), need{
			Resource: auth.Resource{Type: auth.TypeRepository, Name: q.Get("from")}, Actions: []string{auth.ActionPull}})
	}
	c := auth.Challenge{Realm: g.realmFor(r), Service: g.service, Scopes: scopes, Error: code}
	w.Header().Set("WWW-Authenticate", c.String())
	distribution.WriteError(w, r, g.log, err)
}

func (g *gate) realmFor(r *http.Request) string {
	if g.realm != "" {
		return g.realm
	}
	scheme := "http"
	if forwarded.Secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/token"
}
