package auth

// OccupyHashSlots takes every password-hashing slot of s until release is
// called, so that a test can tell a login answered from memory (which
// needs no slot) from one that hashes.
func OccupyHashSlots(s *Service) (release func()) {
	n := cap(s.guard.slots)
	for range n {
		s.guard.slots <- struct{}{}
	}
	return func() {
		for range n {
			<-s.guard.slots
		}
	}
}
