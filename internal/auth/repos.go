package auth

import (
	"context"
	"errors"
)

// EnsureVisibility records the server default for a repository that has
// no recorded visibility yet. The server calls it when a push may create
// the repository, so that changing the default later leaves existing
// repositories as they were.
func (s *Service) EnsureVisibility(ctx context.Context, repo string) error {
	_, err := s.store.GetVisibility(ctx, repo)
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	return s.store.SetVisibility(ctx, repo, s.cfg.DefaultVisibility)
}

// SubjectFor returns the subject a verified bearer token names: the user
// with its admin flag, or anonymous for an empty name. A user deleted
// since the token was issued is ErrUnauthenticated.
func (s *Service) SubjectFor(ctx context.Context, user string) (Subject, error) {
	if user == "" {
		return Subject{}, nil
	}
	u, err := s.store.GetUser(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return Subject{}, ErrUnauthenticated
	}
	if err != nil {
		return Subject{}, err
	}
	return Subject{User: u.Name, Admin: u.Admin}, nil
}
