package registry

// UploadLockCount is the number of ids in the upload lock map, for tests
// that check it stays bounded.
func (s *Service) UploadLockCount() int { return s.uploadLocks.len() }
