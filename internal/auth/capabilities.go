package auth

import "context"

// Can reports whether sub may do action on res, for a page deciding what
// to offer (a delete button, a settings tab). It decides as Authorize
// does but never writes an audit line, now or if Authorize starts to:
// a page view asks about many repositories and actions the viewer never
// attempts, and a refusal there is not an event. Whoever refuses a
// request logs it.
func (s *Service) Can(ctx context.Context, sub Subject, res Resource, action string) (bool, error) {
	may, err := s.rights(ctx, sub, res, []string{action})
	if err != nil {
		return false, err
	}
	return may[action], nil
}
