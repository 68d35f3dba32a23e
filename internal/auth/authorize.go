package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Actions a scope may ask for.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
	ActionAll    = "*" // every action; on registry:catalog, listing
	// ActionSearch on registry:catalog is docker search's scope.
	ActionSearch = "search"
)

// Resource types.
const (
	TypeRepository = "repository"
	TypeRegistry   = "registry"
)

// CatalogName is the registry resource /v2/_catalog needs
// (registry:catalog:*).
const CatalogName = "catalog"

// Resource is what a scope names.
type Resource struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// Access is a resource with actions: a requested scope, or a grant in a
// token's "access" claim.
type Access struct {
	Resource
	Actions []string `json:"actions"`
}

// String formats a as a scope, type:name:actions.
func (a Access) String() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

var scopeTypeRE = regexp.MustCompile(`^[a-z0-9]+(?:\([a-z0-9]+\))?$`)

// ParseScope parses one scope, type:name:actions, splitting at the first
// and the last colon because a name may hold a host:port. Empty actions
// are dropped; duplicates are kept once.
func ParseScope(s string) (Access, error) {
	first, last := strings.IndexByte(s, ':'), strings.LastIndexByte(s, ':')
	if first < 0 || first == last {
		return Access{}, fmt.Errorf("scope %q: want type:name:actions: %w", s, ErrInvalid)
	}
	a := Access{Resource: Resource{Type: s[:first], Name: s[first+1 : last]}}
	if !scopeTypeRE.MatchString(a.Type) {
		return Access{}, fmt.Errorf("scope %q: bad resource type: %w", s, ErrInvalid)
	}
	if a.Name == "" || strings.ContainsAny(a.Name, " \t") {
		return Access{}, fmt.Errorf("scope %q: bad resource name: %w", s, ErrInvalid)
	}
	for _, act := range strings.Split(s[last+1:], ",") {
		if act != "" && !slices.Contains(a.Actions, act) {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, nil
}

// ParseScopes parses the scope parameters of a token request; each may
// hold several scopes separated by spaces.
func ParseScopes(params []string) ([]Access, error) {
	var out []Access
	for _, p := range params {
		for _, f := range strings.Fields(p) {
			a, err := ParseScope(f)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// Authorize returns the requested actions the subject may perform on res,
// in the order asked: the intersection of actions with the subject's
// rights. Unknown types and actions are never granted. It is the one
// place that decides; an error means a store failed, and nothing is
// granted.
//
// Rights on a repository: an admin user, and the user owning the
// namespace (alice/…), may do everything; organisation members may pull
// (read), push (write) and delete (admin) in the organisation's
// namespace; anyone, even anonymous, may pull a public repository. An
// access token's scope caps all of this. registry:catalog:* is granted to
// every logged-in subject (the catalog is filtered by pull rights).
func (s *Service) Authorize(ctx context.Context, sub Subject, res Resource, actions []string) ([]string, error) {
	may, err := s.rights(ctx, sub, res, actions)
	if err != nil {
		return nil, err
	}
	granted := []string{}
	for _, a := range actions {
		if may[a] && !slices.Contains(granted, a) {
			granted = append(granted, a)
		}
	}
	// No audit line here: listings and the UI ask about many repositories
	// they only filter by. The server logs the requests it refuses.
	return granted, nil
}

// Grant authorises each requested scope and returns the grants for a
// token's access claim, leaving out scopes with nothing granted.
func (s *Service) Grant(ctx context.Context, sub Subject, scopes []Access) ([]Access, error) {
	out := []Access{}
	for _, sc := range scopes {
		granted, err := s.Authorize(ctx, sub, sc.Resource, sc.Actions)
		if err != nil {
			return nil, err
		}
		if len(granted) > 0 {
			out = append(out, Access{Resource: sc.Resource, Actions: granted})
		}
	}
	return out, nil
}

// Namespace returns the namespace of a repository name: its first path
// component, or "" for a single-component name (which only admins own).
func Namespace(repo string) string {
	ns, _, ok := strings.Cut(repo, "/")
	if !ok {
		return ""
	}
	return ns
}

func (s *Service) rights(ctx context.Context, sub Subject, res Resource, asked []string) (map[string]bool, error) {
	switch res.Type {
	case TypeRegistry:
		if res.Name == CatalogName && !sub.Anonymous() {
			// search is what dockerd asks for before /v1/search when it
			// logs in with an identity token; the results are filtered
			// by pull rights as the catalog is.
			return map[string]bool{ActionAll: true, ActionSearch: true}, nil
		}
		return nil, nil
	case TypeRepository:
	default:
		return nil, nil
	}
	var pull, push, del bool
	ns := Namespace(res.Name)
	switch {
	case sub.Admin, !sub.Anonymous() && ns == sub.User:
		pull, push, del = true, true, true
	case !sub.Anonymous() && ns != "":
		role, err := s.store.MemberRole(ctx, ns, sub.User)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		pull = role.Valid()
		push = role == RoleWrite || role == RoleAdmin
		del = role == RoleAdmin
	}
	if !pull && s.cfg.PublicPull != nil && s.cfg.PublicPull(res.Name) {
		pull = true
	}
	if !pull && (slices.Contains(asked, ActionPull) || slices.Contains(asked, ActionAll)) {
		v, err := s.Visibility(ctx, res.Name)
		if err != nil {
			return nil, err
		}
		pull = v == Public
	}
	switch sub.Scope {
	case "", ScopeReadWriteDelete:
	case ScopeReadWrite:
		del = false
	case ScopeRead:
		push, del = false, false
	default:
		// An unknown cap grants nothing rather than everything.
		return nil, nil
	}
	return map[string]bool{
		ActionPull: pull, ActionPush: push, ActionDelete: del,
		ActionAll: pull && push && del,
	}, nil
}
