package auth_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/wharf/wharf/internal/auth"
)

// TestAuthorize_Matrix is the permission matrix at the library level:
// every kind of subject × public/private × each action.
func TestAuthorize_Matrix(t *testing.T) {
	s, _ := newService(t, newClock())
	ctx := t.Context()
	for _, u := range []string{"alice", "bob", "reader", "writer", "orgadmin"} {
		must(t, s.AddUser(ctx, u, u+"-password", false))
	}
	must(t, s.AddUser(ctx, "root", "root-password", true))
	must(t, s.AddOrg(ctx, "acme"))
	must(t, s.AddMember(ctx, "acme", "reader", auth.RoleRead))
	must(t, s.AddMember(ctx, "acme", "writer", auth.RoleWrite))
	must(t, s.AddMember(ctx, "acme", "orgadmin", auth.RoleAdmin))
	for _, repo := range []string{"alice/pub", "acme/pub"} {
		must(t, s.SetVisibility(ctx, repo, auth.Public))
	}
	// alice/priv and acme/priv have no record: the default, private.

	subjects := map[string]auth.Subject{
		"anonymous":         {},
		"other user":        {User: "bob"},
		"owner":             {User: "alice"},
		"admin":             {User: "root", Admin: true},
		"org read":          {User: "reader"},
		"org write":         {User: "writer"},
		"org admin":         {User: "orgadmin"},
		"owner read token":  {User: "alice", Scope: auth.ScopeRead},
		"owner rw token":    {User: "alice", Scope: auth.ScopeReadWrite},
		"owner rwd token":   {User: "alice", Scope: auth.ScopeReadWriteDelete},
		"org admin rw tok":  {User: "orgadmin", Scope: auth.ScopeReadWrite},
		"admin read token":  {User: "root", Admin: true, Scope: auth.ScopeRead},
		"unknown token cap": {User: "alice", Scope: "everything"},
	}
	const (
		none = ""
		r    = "pull"
		rw   = "pull,push"
		rwd  = "pull,push,delete"
	)
	tests := []struct {
		subject string
		repo    string
		want    string // granted of pull,push,delete
	}{
		{"anonymous", "alice/pub", r},
		{"anonymous", "alice/priv", none},
		{"anonymous", "acme/pub", r},
		{"anonymous", "acme/priv", none},
		{"other user", "alice/pub", r},
		{"other user", "alice/priv", none},
		{"other user", "acme/priv", none},
		{"owner", "alice/pub", rwd},
		{"owner", "alice/priv", rwd},
		{"owner", "alice/deep/nested/priv", rwd},
		{"owner", "acme/priv", none},
		{"owner", "alicex/priv", none},
		{"owner", "library/priv", none},
		{"admin", "alice/priv", rwd},
		{"admin", "acme/priv", rwd},
		{"admin", "ubuntu", rwd},
		{"org read", "acme/priv", r},
		{"org read", "acme/pub", r},
		{"org read", "alice/priv", none},
		{"org write", "acme/priv", rw},
		{"org write", "acme/pub", rw},
		{"org admin", "acme/priv", rwd},
		{"org admin", "alice/priv", none},
		{"owner read token", "alice/priv", r},
		{"owner rw token", "alice/priv", rw},
		{"owner rwd token", "alice/priv", rwd},
		{"owner read token", "acme/priv", none},
		{"org admin rw tok", "acme/priv", rw},
		{"admin read token", "acme/priv", r},
		{"unknown token cap", "alice/pub", none},
	}
	for _, tt := range tests {
		t.Run(tt.subject+" on "+tt.repo, func(t *testing.T) {
			got, err := s.Authorize(ctx, subjects[tt.subject], auth.Resource{Type: auth.TypeRepository, Name: tt.repo},
				[]string{"pull", "push", "delete"})
			must(t, err)
			if joined := join(got); joined != tt.want {
				t.Fatalf("granted %q, want %q", joined, tt.want)
			}
		})
	}
}

func join(s []string) string {
	out := ""
	for i, a := range s {
		if i > 0 {
			out += ","
		}
		out += a
	}
	return out
}

func TestAuthorize_IntersectsRequest(t *testing.T) {
	s, _ := newService(t, newClock())
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	must(t, s.SetVisibility(ctx, "alice/pub", auth.Public))
	repo := func(name string) auth.Resource { return auth.Resource{Type: auth.TypeRepository, Name: name} }
	tests := []struct {
		name    string
		sub     auth.Subject
		res     auth.Resource
		actions []string
		want    []string
	}{
		{"escalation: bob asks for everything on alice's public repo", auth.Subject{User: "bob"}, repo("alice/pub"),
			[]string{"pull", "push", "delete", "*", "admin"}, []string{"pull"}},
		{"owner gets * only as asked", auth.Subject{User: "alice"}, repo("alice/x"), []string{"*"}, []string{"*"}},
		{"a read token never gets *", auth.Subject{User: "alice", Scope: auth.ScopeRead}, repo("alice/x"), []string{"*", "pull"}, []string{"pull"}},
		{"order kept, duplicates once", auth.Subject{User: "alice"}, repo("alice/x"), []string{"push", "pull", "push"}, []string{"push", "pull"}},
		{"unknown action never", auth.Subject{User: "alice"}, repo("alice/x"), []string{"admin", "PULL"}, []string{}},
		{"nothing asked, nothing granted", auth.Subject{User: "alice"}, repo("alice/x"), nil, []string{}},
		{"catalog for a user", auth.Subject{User: "bob"}, auth.Resource{Type: auth.TypeRegistry, Name: auth.CatalogName}, []string{"*"}, []string{"*"}},
		{"catalog for a read token", auth.Subject{User: "bob", Scope: auth.ScopeRead}, auth.Resource{Type: auth.TypeRegistry, Name: auth.CatalogName}, []string{"*"}, []string{"*"}},
		{"no catalog for anonymous", auth.Subject{}, auth.Resource{Type: auth.TypeRegistry, Name: auth.CatalogName}, []string{"*"}, []string{}},
		{"other registry resources never", auth.Subject{User: "alice", Admin: true}, auth.Resource{Type: auth.TypeRegistry, Name: "gc"}, []string{"*"}, []string{}},
		{"unknown resource type never", auth.Subject{User: "alice", Admin: true}, auth.Resource{Type: "repository(plugin)", Name: "alice/x"}, []string{"pull"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Authorize(ctx, tt.sub, tt.res, tt.actions)
			must(t, err)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("granted %q, want %q", got, tt.want)
			}
		})
	}
}

func TestGrant_LeavesOutScopesWithNothingGranted(t *testing.T) {
	s, _ := newService(t, newClock())
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	scopes, err := auth.ParseScopes([]string{"repository:alice/app:pull,push", "repository:bob/app:pull registry:catalog:*"})
	must(t, err)
	got, err := s.Grant(ctx, auth.Subject{User: "alice"}, scopes)
	must(t, err)
	want := []auth.Access{
		{Resource: auth.Resource{Type: "repository", Name: "alice/app"}, Actions: []string{"pull", "push"}},
		{Resource: auth.Resource{Type: "registry", Name: "catalog"}, Actions: []string{"*"}},
	}
	if !slices.EqualFunc(got, want, func(a, b auth.Access) bool { return a.Resource == b.Resource && slices.Equal(a.Actions, b.Actions) }) {
		t.Fatalf("Grant = %+v, want %+v", got, want)
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in      string
		want    auth.Access
		wantErr bool
	}{
		{in: "repository:samalba/my-app:pull,push", want: access("repository", "samalba/my-app", "pull", "push")},
		{in: "repository:localhost:5000/app:pull", want: access("repository", "localhost:5000/app", "pull")},
		{in: "repository:registry.example.com:443/team/app:push,pull", want: access("repository", "registry.example.com:443/team/app", "push", "pull")},
		{in: "registry:catalog:*", want: access("registry", "catalog", "*")},
		{in: "repository(plugin):vieux/sshfs:pull", want: access("repository(plugin)", "vieux/sshfs", "pull")},
		{in: "repository:app:pull,,pull", want: access("repository", "app", "pull")},
		{in: "repository:app:", want: access("repository", "app")},
		{in: "repository", wantErr: true},
		{in: "repository:app", wantErr: true},
		{in: "repository::pull", wantErr: true},
		{in: ":app:pull", wantErr: true},
		{in: "Repository:app:pull", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := auth.ParseScope(tt.in)
			if tt.wantErr {
				if !errors.Is(err, auth.ErrInvalid) {
					t.Fatalf("ParseScope = %+v, %v; want ErrInvalid", got, err)
				}
				return
			}
			must(t, err)
			if got.Resource != tt.want.Resource || !slices.Equal(got.Actions, tt.want.Actions) {
				t.Fatalf("ParseScope = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func access(typ, name string, actions ...string) auth.Access {
	return auth.Access{Resource: auth.Resource{Type: typ, Name: name}, Actions: actions}
}

func TestChallenge_String(t *testing.T) {
	tests := []struct {
		name string
		c    auth.Challenge
		want string
	}{
		{"no scope (/v2/)", auth.Challenge{Realm: "https://r.example/token", Service: "r.example"},
			`Bearer realm="https://r.example/token",service="r.example"`},
		{"one scope", auth.Challenge{Realm: "https://r.example/token", Service: "r.example",
			Scopes: []auth.Access{access("repository", "alice/app", "pull", "push")}},
			`Bearer realm="https://r.example/token",service="r.example",scope="repository:alice/app:pull,push"`},
		{"several scopes and an error", auth.Challenge{Realm: "https://r.example/token", Service: "r.example",
			Scopes: []auth.Access{access("repository", "a/b", "pull"), access("repository", "c/d", "pull")},
			Error:  auth.ChallengeInsufficientScope},
			`Bearer realm="https://r.example/token",service="r.example",scope="repository:a/b:pull repository:c/d:pull",error="insufficient_scope"`},
		{"quotes escaped", auth.Challenge{Realm: `a"b\c`, Service: "s\r\nx", Error: auth.ChallengeInvalidToken},
			`Bearer realm="a\"b\\c",service="sx",error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
