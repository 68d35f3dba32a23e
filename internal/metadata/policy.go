package metadata

import (
	"context"
	"time"
)

// Policy is one setting, Key=Value, for the repositories Pattern names
// (a repository name or a namespace glob; internal/registry decides what
// patterns and keys mean, the store only keeps them).
type Policy struct {
	Pattern string
	Key     string
	Value   string
	// SetBy is the account that set it ("" when unknown).
	SetBy string
	// SetAt is when it was set, by the store's clock.
	SetAt time.Time
}

// PolicyStore keeps the policies. Every change moves a version counter,
// so that a process caching the policies (they are read on every push)
// learns with one cheap read whether any process changed them.
type PolicyStore interface {
	// SetPolicies records each policy, replacing the value a pattern has
	// for that key, all in one transaction. SetAt is the store's clock.
	SetPolicies(ctx context.Context, ps []Policy) error
	// DeletePolicy removes pattern's value for key, or returns ErrNotFound.
	DeletePolicy(ctx context.Context, pattern, key string) error
	// ListPolicies lists the policies of pattern, or every policy when
	// pattern is "", ordered by pattern then key.
	ListPolicies(ctx context.Context, pattern string) ([]Policy, error)
	// PolicyVersion returns a number that changes whenever a policy is
	// set or removed.
	PolicyVersion(ctx context.Context) (int64, error)
}
