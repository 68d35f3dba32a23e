package auth

import (
	"context"
	"errors"
)

// Team management: who may change accounts and organisations. Registry
// administrators manage users (create, remove, reset passwords) and
// create organisations; an organisation's admins (and registry
// administrators) manage its members. The web UI, the JSON API and the
// offline CLI all change accounts through the Service's methods, which
// write the audit lines, naming the acting user (SubjectFrom; "" for the
// CLI, which runs with the database's owner's rights).

// ErrForbidden means the caller may not manage what it asked to.
var ErrForbidden = errors.New("auth: not allowed")

// MayManageOrg reports whether sub may add and remove org's members.
func (s *Service) MayManageOrg(ctx context.Context, sub Subject, org string) (bool, error) {
	if sub.Admin {
		return true, nil
	}
	if sub.Anonymous() {
		return false, nil
	}
	role, err := s.store.MemberRole(ctx, org, sub.User)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return role == RoleAdmin, err
}

// IsOrg reports whether name is an organisation (not a user).
func (s *Service) IsOrg(ctx context.Context, name string) (bool, error) {
	_, err := s.store.GetOrg(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// actor names the caller in audit lines.
func actor(ctx context.Context) string { return SubjectFrom(ctx).User }
