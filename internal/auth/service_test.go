package auth_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

func TestService_AddUserValidates(t *testing.T) {
	s, _ := newService(t, newClock())
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "correct horse", false))
	tests := []struct {
		name, user, password string
		want                 error
	}{
		{"taken name", "alice", "another password", auth.ErrExists},
		{"upper case", "Alice", "long enough", auth.ErrInvalid},
		{"slash", "a/b", "long enough", auth.ErrInvalid},
		{"empty", "", "long enough", auth.ErrInvalid},
		{"short password", "bob", "short", auth.ErrInvalid},
		{"token-like password", "bob", auth.PATPrefix + "xxxxxxxx", auth.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.AddUser(ctx, tt.user, tt.password, false); !errors.Is(err, tt.want) {
				t.Fatalf("AddUser(%q) = %v, want %v", tt.user, err, tt.want)
			}
		})
	}
	must(t, s.AddOrg(ctx, "acme"))
	if err := s.AddOrg(ctx, "alice"); !errors.Is(err, auth.ErrExists) {
		t.Fatalf("AddOrg(alice) = %v, want ErrExists (users and orgs share names)", err)
	}
	if err := s.AddMember(ctx, "acme", "alice", "owner"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("AddMember(role owner) = %v, want ErrInvalid", err)
	}
	users, err := s.ListUsers(ctx)
	must(t, err)
	if len(users) != 1 || users[0].PasswordHash != "" {
		t.Fatalf("ListUsers = %+v, want alice without hash", users)
	}
}

func TestService_Authenticate(t *testing.T) {
	c := newClock()
	s, _ := newService(t, c)
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	must(t, s.AddUser(ctx, "root", "root-password", true))
	must(t, s.AddUser(ctx, "bob", "bob-password", false))
	readPAT, _, err := s.CreatePAT(ctx, "alice", "ci", auth.ScopeRead, time.Time{})
	must(t, err)
	revokedPAT, revoked, err := s.CreatePAT(ctx, "alice", "old", auth.ScopeReadWrite, time.Time{})
	must(t, err)
	must(t, s.RevokePAT(ctx, "alice", revoked.ID))
	expiringPAT, _, err := s.CreatePAT(ctx, "alice", "short", auth.ScopeReadWrite, c.Now().Add(time.Hour))
	must(t, err)
	refresh, err := s.IssueRefreshToken(ctx, auth.Subject{User: "alice"}, "docker")
	must(t, err)
	c.Advance(2 * time.Hour) // expiringPAT is now expired

	tests := []struct {
		name, user, secret string
		want               auth.Subject
		wantErr            error
	}{
		{"password", "alice", "alice-password", auth.Subject{User: "alice"}, nil},
		{"admin password", "root", "root-password", auth.Subject{User: "root", Admin: true}, nil},
		{"wrong password", "alice", "bob-password", auth.Subject{}, auth.ErrUnauthenticated},
		{"unknown user", "mallory", "alice-password", auth.Subject{}, auth.ErrUnauthenticated},
		{"empty password", "alice", "", auth.Subject{}, auth.ErrUnauthenticated},
		{"access token", "alice", readPAT, auth.Subject{User: "alice", Scope: auth.ScopeRead}, nil},
		{"access token of another user", "bob", readPAT, auth.Subject{}, auth.ErrUnauthenticated},
		{"revoked access token", "alice", revokedPAT, auth.Subject{}, auth.ErrUnauthenticated},
		{"expired access token", "alice", expiringPAT, auth.Subject{}, auth.ErrUnauthenticated},
		{"forged access token", "alice", auth.PATPrefix + "forged", auth.Subject{}, auth.ErrUnauthenticated},
		{"refresh token as password", "alice", refresh, auth.Subject{}, auth.ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Authenticate(ctx, tt.user, tt.secret, "")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate = %v, want %v", err, tt.wantErr)
			}
			got.TokenID = ""
			if got != tt.want {
				t.Fatalf("subject = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestService_AuthenticateWithPATRecordsLastUsed(t *testing.T) {
	c := newClock()
	s, _ := newService(t, c)
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	secret, tok, err := s.CreatePAT(ctx, "alice", "ci", auth.ScopeReadWrite, time.Time{})
	must(t, err)
	if !strings.HasPrefix(secret, auth.PATPrefix) || len(secret) < len(auth.PATPrefix)+40 {
		t.Fatalf("secret %q: want %s and 256 bits", secret, auth.PATPrefix)
	}
	c.Advance(time.Minute)
	sub, err := s.Authenticate(ctx, "alice", secret, "")
	must(t, err)
	if sub.TokenID != tok.ID {
		t.Fatalf("TokenID = %q, want %q", sub.TokenID, tok.ID)
	}
	toks, err := s.ListPATs(ctx, "alice")
	must(t, err)
	if len(toks) != 1 || !toks[0].LastUsed.Equal(c.Now()) || toks[0].Hash != nil {
		t.Fatalf("ListPATs = %+v, want last used %v and no hash", toks, c.Now())
	}
}

// TestService_RateLimitsFailedLogins: failures block the (account,
// address) pair after 5 free ones, the account or the address alone
// only after 30, and access-token failures count against the address only.
func TestService_RateLimitsFailedLogins(t *testing.T) {
	c := newClock()
	s, _ := newService(t, c)
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	must(t, s.AddUser(ctx, "bob", "bob-password", false))
	pat, _, err := s.CreatePAT(ctx, "alice", "ci", auth.ScopeRead, time.Time{})
	must(t, err)

	for i := range 6 { // 5 free, the sixth blocks the pair for 1s
		if _, err := s.Authenticate(ctx, "alice", "wrong", "10.0.0.1"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	_, err = s.Authenticate(ctx, "alice", "alice-password", "10.0.0.1")
	var rl *auth.RateLimitError
	if !errors.Is(err, auth.ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("blocked pair, right password: %v, want rate limited for 1s", err)
	}
	if _, err := s.Authenticate(ctx, "alice", "alice-password", "10.0.0.2"); err != nil {
		t.Fatalf("the owner from another address: %v, want in", err)
	}
	if _, err := s.Authenticate(ctx, "bob", "bob-password", "10.0.0.1"); err != nil {
		t.Fatalf("another account from the guesser's address: %v, want in", err)
	}
	c.Advance(time.Second)
	_, _ = s.Authenticate(ctx, "alice", "wrong", "10.0.0.1") // seventh: back-off doubles
	if _, err := s.Authenticate(ctx, "alice", "alice-password", "10.0.0.1"); !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("after the seventh failure: %v, want retry after 2s", err)
	}

	// Guessing spread over many addresses blocks the account itself.
	for i := range 31 {
		_, _ = s.Authenticate(ctx, "bob", "wrong", fmt.Sprintf("10.1.0.%d", i))
	}
	if _, err := s.Authenticate(ctx, "bob", "bob-password", "10.2.0.1"); !errors.Is(err, auth.ErrRateLimited) {
		t.Fatalf("account after 31 spread failures: %v, want rate limited", err)
	}
	// ...but not its access tokens, which cannot be guessed.
	if _, err := s.Authenticate(ctx, "alice", pat, "10.0.0.1"); err != nil {
		t.Fatalf("access token from a blocked pair's address: %v, want in", err)
	}
	// Guessing tokens blocks the address, not the account.
	for range 31 {
		_, _ = s.Authenticate(ctx, "alice", auth.PATPrefix+"guess", "10.3.0.1")
	}
	if _, err := s.Authenticate(ctx, "alice", pat, "10.3.0.1"); !errors.Is(err, auth.ErrRateLimited) {
		t.Fatalf("token from the token guesser's address: %v, want rate limited", err)
	}
	if _, err := s.Authenticate(ctx, "alice", pat, "10.3.0.2"); err != nil {
		t.Fatalf("token from another address: %v, want in", err)
	}
}

// TestService_ConcurrentGuessesAreCountedOneByOne: a burst of guesses for
// one account cannot slip past the limiter before the first failure is
// counted.
func TestService_ConcurrentGuessesAreCountedOneByOne(t *testing.T) {
	s, _ := newService(t, newClock())
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	var wg sync.WaitGroup
	var checked atomic.Int32
	for range 50 {
		wg.Go(func() {
			if _, err := s.Authenticate(ctx, "alice", "wrong", "10.0.0.1"); errors.Is(err, auth.ErrUnauthenticated) {
				checked.Add(1)
			}
		})
	}
	wg.Wait()
	if n := checked.Load(); n != 6 {
		t.Errorf("%d of 50 concurrent guesses were checked, want 6 (5 free and the one that blocks)", n)
	}
}

func TestService_EnsureAdmin(t *testing.T) {
	tests := []struct {
		name, password string
		existing       bool
		wantGenerated  bool
		wantCreated    bool
	}{
		{"empty database, no password: generated", "", false, true, true},
		{"empty database, given password", "given-password", false, false, true},
		{"users exist: nothing happens", "", true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newService(t, newClock())
			ctx := t.Context()
			if tt.existing {
				must(t, s.AddUser(ctx, "alice", "alice-password", false))
			}
			gen, err := s.EnsureAdmin(ctx, tt.password)
			must(t, err)
			if (gen != "") != tt.wantGenerated {
				t.Fatalf("generated = %q, want generated %v", gen, tt.wantGenerated)
			}
			password := tt.password
			if gen != "" {
				password = gen
				if len(gen) < 20 {
					t.Fatalf("generated password %q is short", gen)
				}
			}
			sub, err := s.Authenticate(ctx, auth.AdminUser, password, "")
			if tt.wantCreated {
				must(t, err)
				if !sub.Admin {
					t.Fatal("admin user is not an admin")
				}
			} else if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("admin login = %v, want unauthenticated (no admin created)", err)
			}
			again, err := s.EnsureAdmin(ctx, "")
			if err != nil || again != "" {
				t.Fatalf("second EnsureAdmin = %q, %v; want nothing", again, err)
			}
		})
	}
}

func TestService_RefreshTokens(t *testing.T) {
	c := newClock()
	s, _ := newService(t, c)
	ctx := t.Context()
	must(t, s.AddUser(ctx, "alice", "alice-password", false))
	pat, patTok, err := s.CreatePAT(ctx, "alice", "laptop", auth.ScopeRead, time.Time{})
	must(t, err)

	byPassword, err := s.IssueRefreshToken(ctx, auth.Subject{User: "alice"}, "docker")
	must(t, err)
	patSub, err := s.Authenticate(ctx, "alice", pat, "")
	must(t, err)
	byPAT, err := s.IssueRefreshToken(ctx, patSub, "docker")
	must(t, err)

	sub, err := s.Refresh(ctx, byPassword)
	must(t, err)
	if sub.User != "alice" || sub.Scope != "" {
		t.Fatalf("Refresh(password login) = %+v", sub)
	}
	sub, err = s.Refresh(ctx, byPAT)
	must(t, err)
	if sub.Scope != auth.ScopeRead {
		t.Fatalf("Refresh(PAT login) scope = %q, want the PAT's read cap", sub.Scope)
	}
	if _, err := s.Refresh(ctx, pat); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Refresh(access token) = %v, want unauthenticated", err)
	}
	if _, err := s.IssueRefreshToken(ctx, auth.Subject{}, "docker"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("refresh token for anonymous = %v, want ErrInvalid", err)
	}

	must(t, s.RevokePAT(ctx, "alice", patTok.ID))
	if _, err := s.Refresh(ctx, byPAT); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Refresh after its PAT was revoked = %v, want unauthenticated", err)
	}
	must(t, s.SetPassword(ctx, "alice", "new-password"))
	if _, err := s.Refresh(ctx, byPassword); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Refresh after password change = %v, want unauthenticated", err)
	}
	// A login made with a short-lived access token ends with it.
	weekPAT, _, err := s.CreatePAT(ctx, "alice", "ci", auth.ScopeReadWrite, c.Now().Add(7*24*time.Hour))
	must(t, err)
	weekSub, err := s.Authenticate(ctx, "alice", weekPAT, "")
	must(t, err)
	byWeekPAT, err := s.IssueRefreshToken(ctx, weekSub, "docker")
	must(t, err)

	again, err := s.IssueRefreshToken(ctx, auth.Subject{User: "alice"}, "docker")
	must(t, err)
	c.Advance(6 * 24 * time.Hour)
	if _, err := s.Refresh(ctx, byWeekPAT); err != nil {
		t.Fatalf("Refresh while its access token lives: %v", err)
	}
	c.Advance(2 * 24 * time.Hour)
	if _, err := s.Refresh(ctx, byWeekPAT); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Refresh after its access token expired = %v, want unauthenticated", err)
	}
	c.Advance(83 * 24 * time.Hour)
	if _, err := s.Refresh(ctx, again); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("Refresh after 91 days = %v, want unauthenticated", err)
	}
}

func TestService_Visibility(t *testing.T) {
	s, _ := newService(t, newClock())
	ctx := t.Context()
	v, err := s.Visibility(ctx, "alice/app")
	must(t, err)
	if v != auth.Private {
		t.Fatalf("default visibility = %q, want private", v)
	}
	must(t, s.SetVisibility(ctx, "alice/app", auth.Public))
	if v, _ := s.Visibility(ctx, "alice/app"); v != auth.Public {
		t.Fatalf("visibility = %q, want public", v)
	}
	if err := s.SetVisibility(ctx, "alice/app", "secret"); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("SetVisibility(secret) = %v, want ErrInvalid", err)
	}
	// With a public default, a repository is public once a push records
	// it; one without a record (a missing repository) still answers
	// private, so that it cannot be told from an existing private one.
	pub := auth.NewService(newStore(t), auth.Config{DefaultVisibility: auth.Public})
	if v, _ := pub.Visibility(ctx, "any/repo"); v != auth.Private {
		t.Fatalf("unrecorded visibility with public default = %q, want private", v)
	}
	must(t, pub.EnsureVisibility(ctx, "any/repo"))
	if v, _ := pub.Visibility(ctx, "any/repo"); v != auth.Public {
		t.Fatalf("recorded visibility with public default = %q, want public", v)
	}
	must(t, pub.SetVisibility(ctx, "any/repo", auth.Private))
	must(t, pub.EnsureVisibility(ctx, "any/repo"))
	if v, _ := pub.Visibility(ctx, "any/repo"); v != auth.Private {
		t.Fatalf("EnsureVisibility overwrote a recorded visibility: %q", v)
	}
}

func TestCheckPassword_RejectsMalformedHashes(t *testing.T) {
	good, err := auth.HashPassword("secret-password", cheap)
	must(t, err)
	if !auth.CheckPassword(good, "secret-password") || auth.CheckPassword(good, "secret-passworD") {
		t.Fatal("CheckPassword does not tell right from wrong")
	}
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		strings.Replace(good, "m=64", "m=99999999", 1), strings.Replace(good, "t=1", "t=0", 1)} {
		if auth.CheckPassword(h, "secret-password") {
			t.Errorf("CheckPassword(%q) matched", h)
		}
	}
	other, _ := auth.HashPassword("secret-password", cheap)
	if other == good || !slices.Contains([]bool{auth.CheckPassword(other, "secret-password")}, true) {
		t.Fatal("hashes are not salted")
	}
}
