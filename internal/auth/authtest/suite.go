// Package authtest is the contract every auth.Store implementation must
// pass. An implementation's tests call Run with a constructor for an empty
// store.
package authtest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

// Run runs the contract suite. newStore must return a new, empty store for
// each call and register its own cleanup with t.
func Run(t *testing.T, newStore func(t *testing.T) auth.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, auth.Store)
	}{
		{"CreateUser_GetUserRoundTrips", testUserRoundTrip},
		{"CreateUser_NameTakenByUserOrOrgIsExists", testUserNameTaken},
		{"GetUser_UnknownIsNotFound", testGetUserUnknown},
		{"CreateFirstUser_OnlyOnEmptyTable", testCreateFirstUser},
		{"SetPasswordHash_ReplacesHash", testSetPasswordHash},
		{"DeleteUser_RemovesMembershipsAndTokens", testDeleteUser},
		{"ListUsers_ByName", testListUsers},
		{"SetMember_AddsAndChangesRole", testSetMember},
		{"SetMember_UnknownOrgOrUserIsNotFound", testSetMemberUnknown},
		{"RemoveMember_MissingIsNotFound", testRemoveMember},
		{"Visibility_RecordedAndReplaced", testVisibility},
		{"Visibility_LookupsSeeEveryEarlierWrite", testVisibilityLookupsSeeEveryEarlierWrite},
		{"Token_RoundTripsByHash", testTokenRoundTrip},
		{"CreateToken_DuplicateIDOrHashIsExists", testTokenDuplicate},
		{"CreateToken_UnknownUserIsNotFound", testTokenUnknownUser},
		{"ListTokens_OnlyUsersTokensOfKind", testListTokens},
		{"RevokeToken_KeepsFirstTimeAndRevokesChildren", testRevokeToken},
		{"RevokeToken_OtherUsersTokenIsNotFound", testRevokeOtherUsersToken},
		{"RevokeTokens_RevokesOnlyKind", testRevokeTokens},
		{"TouchToken_RecordsLastUsed", testTouchToken},
		{"UserExists_FollowsCreateAndDelete", testUserExists},
		{"ActiveTokenExpiry_OnlyUnrevokedTokensOfTheUser", testActiveTokenExpiry},
		{"SigningKeys_CreateListRetireDelete", testSigningKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newStore(t))
		})
	}
}

// at is a fixed instant with the nanosecond precision stores must keep.
var at = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func addUser(t *testing.T, s auth.Store, name string) {
	t.Helper()
	must(t, s.CreateUser(t.Context(), &auth.User{Name: name, PasswordHash: "h-" + name, CreatedAt: at}))
}

func addToken(t *testing.T, s auth.Store, id, user string, kind auth.TokenKind, parent string) *auth.Token {
	t.Helper()
	tok := &auth.Token{ID: id, User: user, Kind: kind, Name: "n-" + id, Scope: auth.ScopeRead,
		Hash: []byte("hash-" + id), Parent: parent, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	must(t, s.CreateToken(t.Context(), tok))
	return tok
}

func testUserRoundTrip(t *testing.T, s auth.Store) {
	ctx := t.Context()
	want := &auth.User{Name: "alice", PasswordHash: "$argon2id$x", Admin: true, CreatedAt: at}
	must(t, s.CreateUser(ctx, want))
	got, err := s.GetUser(ctx, "alice")
	must(t, err)
	if *got != *want {
		t.Fatalf("GetUser = %+v, want %+v", got, want)
	}
}

func testUserNameTaken(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	must(t, s.CreateOrg(ctx, &auth.Org{Name: "acme", CreatedAt: at}))
	wantErr(t, "user twice", s.CreateUser(ctx, &auth.User{Name: "alice"}), auth.ErrExists)
	wantErr(t, "user named like org", s.CreateUser(ctx, &auth.User{Name: "acme"}), auth.ErrExists)
	wantErr(t, "org named like user", s.CreateOrg(ctx, &auth.Org{Name: "alice"}), auth.ErrExists)
	wantErr(t, "org twice", s.CreateOrg(ctx, &auth.Org{Name: "acme"}), auth.ErrExists)
}

func testGetUserUnknown(t *testing.T, s auth.Store) {
	_, err := s.GetUser(t.Context(), "nobody")
	wantErr(t, "GetUser", err, auth.ErrNotFound)
	_, err = s.GetOrg(t.Context(), "nobody")
	wantErr(t, "GetOrg", err, auth.ErrNotFound)
}

func testCreateFirstUser(t *testing.T, s auth.Store) {
	ctx := t.Context()
	created, err := s.CreateFirstUser(ctx, &auth.User{Name: "admin", PasswordHash: "1", Admin: true, CreatedAt: at})
	must(t, err)
	if !created {
		t.Fatal("first CreateFirstUser on an empty store created nothing")
	}
	created, err = s.CreateFirstUser(ctx, &auth.User{Name: "other", PasswordHash: "2", CreatedAt: at})
	must(t, err)
	if created {
		t.Fatal("CreateFirstUser created a user although one exists")
	}
	if _, err := s.GetUser(ctx, "other"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("GetUser(other) = %v, want ErrNotFound", err)
	}
}

func testSetPasswordHash(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	must(t, s.SetPasswordHash(ctx, "alice", "new"))
	u, err := s.GetUser(ctx, "alice")
	must(t, err)
	if u.PasswordHash != "new" {
		t.Fatalf("hash = %q, want new", u.PasswordHash)
	}
	wantErr(t, "unknown user", s.SetPasswordHash(ctx, "bob", "x"), auth.ErrNotFound)
}

func testDeleteUser(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	must(t, s.CreateOrg(ctx, &auth.Org{Name: "acme", CreatedAt: at}))
	must(t, s.SetMember(ctx, auth.Member{Org: "acme", User: "alice", Role: auth.RoleWrite}))
	tok := addToken(t, s, "t1", "alice", auth.KindPAT, "")
	must(t, s.DeleteUser(ctx, "alice"))
	wantErr(t, "DeleteUser again", s.DeleteUser(ctx, "alice"), auth.ErrNotFound)
	_, err := s.MemberRole(ctx, "acme", "alice")
	wantErr(t, "membership after delete", err, auth.ErrNotFound)
	_, err = s.GetTokenByHash(ctx, tok.Hash)
	wantErr(t, "token after delete", err, auth.ErrNotFound)
	// The name is free again, and the new alice inherits nothing.
	addUser(t, s, "alice")
	_, err = s.MemberRole(ctx, "acme", "alice")
	wantErr(t, "membership of new alice", err, auth.ErrNotFound)
}

func testListUsers(t *testing.T, s auth.Store) {
	users, err := s.ListUsers(t.Context())
	must(t, err)
	if users == nil || len(users) != 0 {
		t.Fatalf("ListUsers on empty store = %#v, want empty non-nil", users)
	}
	for _, n := range []string{"carol", "alice", "bob"} {
		addUser(t, s, n)
	}
	users, err = s.ListUsers(t.Context())
	must(t, err)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"alice", "bob", "carol"}) {
		t.Fatalf("ListUsers = %v", names)
	}
}

func testSetMember(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	addUser(t, s, "bob")
	must(t, s.CreateOrg(ctx, &auth.Org{Name: "acme", CreatedAt: at}))
	must(t, s.SetMember(ctx, auth.Member{Org: "acme", User: "bob", Role: auth.RoleRead}))
	must(t, s.SetMember(ctx, auth.Member{Org: "acme", User: "alice", Role: auth.RoleRead}))
	must(t, s.SetMember(ctx, auth.Member{Org: "acme", User: "alice", Role: auth.RoleAdmin}))
	role, err := s.MemberRole(ctx, "acme", "alice")
	must(t, err)
	if role != auth.RoleAdmin {
		t.Fatalf("role = %q, want admin", role)
	}
	members, err := s.ListMembers(ctx, "acme")
	must(t, err)
	want := []auth.Member{{Org: "acme", User: "alice", Role: auth.RoleAdmin}, {Org: "acme", User: "bob", Role: auth.RoleRead}}
	if !slices.Equal(members, want) {
		t.Fatalf("ListMembers = %v, want %v", members, want)
	}
	_, err = s.ListMembers(ctx, "nobody")
	wantErr(t, "ListMembers of unknown org", err, auth.ErrNotFound)
}

func testSetMemberUnknown(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	must(t, s.CreateOrg(ctx, &auth.Org{Name: "acme", CreatedAt: at}))
	wantErr(t, "unknown org", s.SetMember(ctx, auth.Member{Org: "nope", User: "alice", Role: auth.RoleRead}), auth.ErrNotFound)
	wantErr(t, "unknown user", s.SetMember(ctx, auth.Member{Org: "acme", User: "nope", Role: auth.RoleRead}), auth.ErrNotFound)
}

func testRemoveMember(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	must(t, s.CreateOrg(ctx, &auth.Org{Name: "acme", CreatedAt: at}))
	must(t, s.SetMember(ctx, auth.Member{Org: "acme", User: "alice", Role: auth.RoleWrite}))
	must(t, s.RemoveMember(ctx, "acme", "alice"))
	wantErr(t, "remove twice", s.RemoveMember(ctx, "acme", "alice"), auth.ErrNotFound)
	_, err := s.MemberRole(ctx, "acme", "alice")
	wantErr(t, "role after remove", err, auth.ErrNotFound)
}

func testVisibility(t *testing.T, s auth.Store) {
	ctx := t.Context()
	_, err := s.GetVisibility(ctx, "alice/app")
	wantErr(t, "unrecorded", err, auth.ErrNotFound)
	must(t, s.SetVisibility(ctx, "alice/app", auth.Public))
	must(t, s.SetVisibility(ctx, "alice/app", auth.Private))
	must(t, s.SetVisibility(ctx, "alice/web", auth.Public))
	for repo, want := range map[string]auth.Visibility{"alice/app": auth.Private, "alice/web": auth.Public} {
		got, err := s.GetVisibility(ctx, repo)
		must(t, err)
		if got != want {
			t.Fatalf("GetVisibility(%s) = %q, want %q", repo, got, want)
		}
	}
}

func testTokenRoundTrip(t *testing.T, s auth.Store) {
	addUser(t, s, "alice")
	want := addToken(t, s, "t1", "alice", auth.KindRefresh, "p1")
	got, err := s.GetTokenByHash(t.Context(), want.Hash)
	must(t, err)
	if got.ID != want.ID || got.User != want.User || got.Kind != want.Kind || got.Name != want.Name ||
		got.Scope != want.Scope || !bytes.Equal(got.Hash, want.Hash) || got.Parent != want.Parent ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.LastUsed.IsZero() || !got.RevokedAt.IsZero() {
		t.Fatalf("GetTokenByHash = %+v, want %+v", got, want)
	}
	_, err = s.GetTokenByHash(t.Context(), []byte("other"))
	wantErr(t, "unknown hash", err, auth.ErrNotFound)
}

func testTokenDuplicate(t *testing.T, s auth.Store) {
	addUser(t, s, "alice")
	tok := addToken(t, s, "t1", "alice", auth.KindPAT, "")
	dupID := *tok
	dupID.Hash = []byte("fresh")
	wantErr(t, "same id", s.CreateToken(t.Context(), &dupID), auth.ErrExists)
	dupHash := *tok
	dupHash.ID = "t2"
	wantErr(t, "same hash", s.CreateToken(t.Context(), &dupHash), auth.ErrExists)
}

func testTokenUnknownUser(t *testing.T, s auth.Store) {
	err := s.CreateToken(t.Context(), &auth.Token{ID: "t", User: "ghost", Kind: auth.KindPAT, Hash: []byte("h")})
	wantErr(t, "CreateToken", err, auth.ErrNotFound)
}

func testListTokens(t *testing.T, s auth.Store) {
	addUser(t, s, "alice")
	addUser(t, s, "bob")
	addToken(t, s, "a1", "alice", auth.KindPAT, "")
	addToken(t, s, "a2", "alice", auth.KindRefresh, "")
	addToken(t, s, "a3", "alice", auth.KindPAT, "")
	addToken(t, s, "b1", "bob", auth.KindPAT, "")
	toks, err := s.ListTokens(t.Context(), "alice", auth.KindPAT)
	must(t, err)
	var ids []string
	for _, tok := range toks {
		ids = append(ids, tok.ID)
	}
	if !slices.Equal(ids, []string{"a1", "a3"}) {
		t.Fatalf("ListTokens(alice, pat) = %v, want [a1 a3]", ids)
	}
	toks, err = s.ListTokens(t.Context(), "carol", auth.KindPAT)
	must(t, err)
	if toks == nil || len(toks) != 0 {
		t.Fatalf("ListTokens(carol) = %#v, want empty non-nil", toks)
	}
}

func getToken(t *testing.T, s auth.Store, tok *auth.Token) *auth.Token {
	t.Helper()
	got, err := s.GetTokenByHash(t.Context(), tok.Hash)
	must(t, err)
	return got
}

func testRevokeToken(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	pat := addToken(t, s, "p", "alice", auth.KindPAT, "")
	child := addToken(t, s, "r", "alice", auth.KindRefresh, "p")
	other := addToken(t, s, "o", "alice", auth.KindRefresh, "")
	must(t, s.RevokeToken(ctx, "alice", "p", at))
	must(t, s.RevokeToken(ctx, "alice", "p", at.Add(time.Hour)))
	for _, tok := range []*auth.Token{pat, child} {
		if got := getToken(t, s, tok); !got.RevokedAt.Equal(at) {
			t.Errorf("token %s revoked at %v, want %v", tok.ID, got.RevokedAt, at)
		}
	}
	if got := getToken(t, s, other); !got.RevokedAt.IsZero() {
		t.Errorf("unrelated token revoked at %v", got.RevokedAt)
	}
}

func testRevokeOtherUsersToken(t *testing.T, s auth.Store) {
	addUser(t, s, "alice")
	addUser(t, s, "bob")
	tok := addToken(t, s, "p", "alice", auth.KindPAT, "")
	wantErr(t, "bob revokes alice's token", s.RevokeToken(t.Context(), "bob", "p", at), auth.ErrNotFound)
	if got := getToken(t, s, tok); !got.RevokedAt.IsZero() {
		t.Fatal("token revoked by another user")
	}
}

func testRevokeTokens(t *testing.T, s auth.Store) {
	addUser(t, s, "alice")
	pat := addToken(t, s, "p", "alice", auth.KindPAT, "")
	r1 := addToken(t, s, "r1", "alice", auth.KindRefresh, "")
	r2 := addToken(t, s, "r2", "alice", auth.KindRefresh, "")
	must(t, s.RevokeTokens(t.Context(), "alice", auth.KindRefresh, at))
	for _, tok := range []*auth.Token{r1, r2} {
		if getToken(t, s, tok).RevokedAt.IsZero() {
			t.Errorf("refresh token %s not revoked", tok.ID)
		}
	}
	if !getToken(t, s, pat).RevokedAt.IsZero() {
		t.Error("access token revoked with the refresh tokens")
	}
}

func testTouchToken(t *testing.T, s auth.Store) {
	addUser(t, s, "alice")
	tok := addToken(t, s, "p", "alice", auth.KindPAT, "")
	must(t, s.TouchToken(t.Context(), "p", at.Add(time.Minute)))
	if got := getToken(t, s, tok); !got.LastUsed.Equal(at.Add(time.Minute)) {
		t.Fatalf("LastUsed = %v", got.LastUsed)
	}
	wantErr(t, "unknown token", s.TouchToken(t.Context(), "nope", at), auth.ErrNotFound)
}

func testSigningKeys(t *testing.T, s auth.Store) {
	ctx := context.Background()
	keys, err := s.ListSigningKeys(ctx)
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("empty store lists %d keys", len(keys))
	}
	k1 := &auth.SigningKey{ID: "k1", PrivateKey: []byte{1, 2, 3}, CreatedAt: at}
	k2 := &auth.SigningKey{ID: "k2", PrivateKey: []byte{4, 5}, CreatedAt: at.Add(time.Second)}
	must(t, s.CreateSigningKey(ctx, k2))
	must(t, s.CreateSigningKey(ctx, k1))
	wantErr(t, "same id", s.CreateSigningKey(ctx, k1), auth.ErrExists)
	must(t, s.RetireSigningKey(ctx, "k1", at.Add(time.Minute)))
	must(t, s.RetireSigningKey(ctx, "k1", at.Add(time.Hour)))
	keys, err = s.ListSigningKeys(ctx)
	must(t, err)
	if len(keys) != 2 || keys[0].ID != "k1" || keys[1].ID != "k2" {
		t.Fatalf("ListSigningKeys = %+v, want k1, k2 (oldest first)", keys)
	}
	if !bytes.Equal(keys[0].PrivateKey, k1.PrivateKey) || !keys[0].CreatedAt.Equal(at) ||
		!keys[0].RetiredAt.Equal(at.Add(time.Minute)) || !keys[1].RetiredAt.IsZero() {
		t.Fatalf("ListSigningKeys = %+v", keys)
	}
	wantErr(t, "retire unknown", s.RetireSigningKey(ctx, "nope", at), auth.ErrNotFound)
	must(t, s.DeleteSigningKey(ctx, "k1"))
	wantErr(t, "delete twice", s.DeleteSigningKey(ctx, "k1"), auth.ErrNotFound)
}

func testUserExists(t *testing.T, s auth.Store) {
	ctx := t.Context()
	if ok, err := s.UserExists(ctx, "alice"); err != nil || ok {
		t.Fatalf("UserExists before CreateUser = %v, %v; want false", ok, err)
	}
	addUser(t, s, "alice")
	if ok, err := s.UserExists(ctx, "alice"); err != nil || !ok {
		t.Fatalf("UserExists after CreateUser = %v, %v; want true", ok, err)
	}
	must(t, s.DeleteUser(ctx, "alice"))
	if ok, err := s.UserExists(ctx, "alice"); err != nil || ok {
		t.Fatalf("UserExists after DeleteUser = %v, %v; want false", ok, err)
	}
}

func testActiveTokenExpiry(t *testing.T, s auth.Store) {
	ctx := t.Context()
	addUser(t, s, "alice")
	addUser(t, s, "bob")
	pat := addToken(t, s, "p", "alice", auth.KindPAT, "")
	child := addToken(t, s, "r", "alice", auth.KindRefresh, "p")
	forever := &auth.Token{ID: "f", User: "alice", Kind: auth.KindPAT, Name: "forever", Scope: auth.ScopeRead,
		Hash: []byte("hash-f"), CreatedAt: at}
	must(t, s.CreateToken(ctx, forever))

	got, err := s.ActiveTokenExpiry(ctx, "alice", pat.ID)
	must(t, err)
	if !got.Equal(pat.ExpiresAt) {
		t.Errorf("expiry = %v, want %v", got, pat.ExpiresAt)
	}
	if got, err := s.ActiveTokenExpiry(ctx, "alice", forever.ID); err != nil || !got.IsZero() {
		t.Errorf("expiry of a token without one = %v, %v; want zero", got, err)
	}
	_, err = s.ActiveTokenExpiry(ctx, "bob", pat.ID)
	wantErr(t, "another user's token", err, auth.ErrNotFound)
	_, err = s.ActiveTokenExpiry(ctx, "alice", "nope")
	wantErr(t, "unknown token", err, auth.ErrNotFound)

	must(t, s.RevokeToken(ctx, "alice", pat.ID, at))
	for _, id := range []string{pat.ID, child.ID} {
		_, err = s.ActiveTokenExpiry(ctx, "alice", id)
		wantErr(t, "revoked token "+id, err, auth.ErrNotFound)
	}
	must(t, s.DeleteUser(ctx, "alice"))
	_, err = s.ActiveTokenExpiry(ctx, "alice", forever.ID)
	wantErr(t, "token of a deleted user", err, auth.ErrNotFound)
}
