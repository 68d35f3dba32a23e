package auth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wharf/wharf/internal/auth"
)

// TestService_RememberedLoginsFollowPasswordChanges: a verified password
// is remembered for a while, but a password change or a removed user is
// honoured at once, whether made by this process or by another replica.
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

	// Another replica (a second Service over the same database) changes
	// the password, or removes the user: this one follows at once.
	if _, err := svc.Authenticate(ctx, "alice", "second-password", ""); err != nil {
		t.Fatal(err)
	}
	other := auth.NewService(db, auth.Config{PasswordParams: cheap, Now: c.Now})
	must(t, other.SetPassword(ctx, "alice", "third-password"))
	if _, err := svc.Authenticate(ctx, "alice", "second-password", ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("password changed elsewhere: err = %v, want ErrUnauthenticated", err)
	}
	if _, err := svc.Authenticate(ctx, "alice", "third-password", ""); err != nil {
		t.Fatal(err)
	}
	// Remembered: answered without hashing.
	release := auth.OccupyHashSlots(svc)
	if _, err := svc.Authenticate(ctx, "alice", "third-password", ""); err != nil {
		t.Fatalf("remembered login with every hashing slot taken: %v", err)
	}
	release()
	must(t, other.RemoveUser(ctx, "alice"))
	if _, err := svc.Authenticate(ctx, "alice", "third-password", ""); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("user removed elsewhere: err = %v, want ErrUnauthenticated", err)
	}
}
