package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

// TestService_RememberedLoginsFollowPasswordChanges: a verified password
// is remembered for a while, but a password change or a removed user in
// this process is honoured at once, and the cache expires on its own
// for changes made elsewhere.
func TestService_RememberedLoginsFollowPasswordChanges(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	svc, db := newService(t, c)
	must(t, svc.AddUser(ctx, "alice", "first-password", false))
	if _, err := svc.Authenticate(ctx, "alice", "first-password", ""); err != nil {
		t.Fatal(err)
	}
	must(t, svc.SetPassword(ctx, "alice", "second-password"))
	if _, err := svc.Authenticate(ctx, "alice", "first-password", ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("old password after SetPassword: err = %v, want ErrUnauthenticated", err)
	}

	// Another process (a second Service over the same database) changes
	// the password: this one trusts its memory for at most the TTL.
	if _, err := svc.Authenticate(ctx, "alice", "second-password", ""); err != nil {
		t.Fatal(err)
	}
	other := auth.NewService(db, auth.Config{PasswordParams: cheap, Now: c.Now})
	must(t, other.SetPassword(ctx, "alice", "third-password"))
	c.Advance(31 * time.Second)
	if _, err := svc.Authenticate(ctx, "alice", "second-password", ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("password changed elsewhere, after the TTL: err = %v, want ErrUnauthenticated", err)
	}

	if _, err := svc.Authenticate(ctx, "alice", "third-password", ""); err != nil {
		t.Fatal(err)
	}
	must(t, svc.RemoveUser(ctx, "alice"))
	if _, err := svc.Authenticate(ctx, "alice", "third-password", ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("removed user: err = %v, want ErrUnauthenticated", err)
	}
}
