package metadatatest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// RunPolicies runs the contract of metadata.PolicyStore.
func RunPolicies(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.PolicyStore)
	}{
		{"SetPolicies_ListRoundTripsInOrder", testPoliciesRoundTrip},
		{"SetPolicies_ReplacesThePatternsValue", testPoliciesReplace},
		{"DeletePolicy_RemovesOneMissingIsNotFound", testPoliciesDelete},
		{"PolicyVersion_MovesOnEveryChangeOnly", testPolicyVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ps, ok := s.(metadata.PolicyStore)
			if !ok {
				t.Fatalf("%T is not a metadata.PolicyStore", s)
			}
			tc.test(t, ps)
		})
	}
}

// policyRows drops the times, which come from the store's clock.
func policyRows(t *testing.T, s metadata.PolicyStore, pattern string) []metadata.Policy {
	t.Helper()
	ps, err := s.ListPolicies(t.Context(), pattern)
	if err != nil {
		t.Fatalf("ListPolicies(%q): %v", pattern, err)
	}
	for i := range ps {
		if ps[i].SetAt.IsZero() {
			t.Errorf("policy %s %s has no SetAt", ps[i].Pattern, ps[i].Key)
		}
		ps[i].SetAt = time.Time{}
	}
	return ps
}

func setPolicies(t *testing.T, s metadata.PolicyStore, ps ...metadata.Policy) {
	t.Helper()
	if err := s.SetPolicies(t.Context(), ps); err != nil {
		t.Fatalf("SetPolicies: %v", err)
	}
}

func testPoliciesRoundTrip(t *testing.T, s metadata.PolicyStore) {
	if got := policyRows(t, s, ""); len(got) != 0 {
		t.Fatalf("empty store lists %v", got)
	}
	setPolicies(t, s,
		metadata.Policy{Pattern: "golden/*", Key: "floating-tags", Value: "semver", SetBy: "alice"},
		metadata.Policy{Pattern: "gallery/ui", Key: "b", Value: "2", SetBy: "bob"},
		metadata.Policy{Pattern: "gallery/ui", Key: "a", Value: "1", SetBy: "bob"},
	)
	want := []metadata.Policy{
		{Pattern: "gallery/ui", Key: "a", Value: "1", SetBy: "bob"},
		{Pattern: "gallery/ui", Key: "b", Value: "2", SetBy: "bob"},
		{Pattern: "golden/*", Key: "floating-tags", Value: "semver", SetBy: "alice"},
	}
	if got := policyRows(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("ListPolicies(\"\") = %+v, want %+v", got, want)
	}
	if got := policyRows(t, s, "gallery/ui"); !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("ListPolicies(gallery/ui) = %+v, want %+v", got, want[:2])
	}
	// A pattern is a key, not a glob, to the store.
	if got := policyRows(t, s, "golden/app"); len(got) != 0 {
		t.Errorf("ListPolicies(golden/app) = %+v, want none", got)
	}
}

func testPoliciesReplace(t *testing.T, s metadata.PolicyStore) {
	setPolicies(t, s, metadata.Policy{Pattern: "team/*", Key: "k", Value: "old", SetBy: "alice"})
	setPolicies(t, s, metadata.Policy{Pattern: "team/*", Key: "k", Value: "new", SetBy: "bob"})
	want := []metadata.Policy{{Pattern: "team/*", Key: "k", Value: "new", SetBy: "bob"}}
	if got := policyRows(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("after replacing: %+v, want %+v", got, want)
	}
}

func testPoliciesDelete(t *testing.T, s metadata.PolicyStore) {
	setPolicies(t, s,
		metadata.Policy{Pattern: "team/app", Key: "a", Value: "1"},
		metadata.Policy{Pattern: "team/app", Key: "b", Value: "2"})
	if err := s.DeletePolicy(t.Context(), "team/app", "a"); err != nil {
		t.Fatalf("DeletePolicy: %v", err)
	}
	if err := s.DeletePolicy(t.Context(), "team/app", "a"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("DeletePolicy of a removed policy = %v, want ErrNotFound", err)
	}
	if err := s.DeletePolicy(t.Context(), "team/*", "b"); !errors.Is(err, metadata.ErrNotFound) {
		t.Errorf("DeletePolicy of another pattern's key = %v, want ErrNotFound", err)
	}
	want := []metadata.Policy{{Pattern: "team/app", Key: "b", Value: "2"}}
	if got := policyRows(t, s, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("after DeletePolicy: %+v, want %+v", got, want)
	}
}

func testPolicyVersion(t *testing.T, s metadata.PolicyStore) {
	ctx := t.Context()
	version := func() int64 {
		t.Helper()
		v, err := s.PolicyVersion(ctx)
		if err != nil {
			t.Fatalf("PolicyVersion: %v", err)
		}
		return v
	}
	v0 := version()
	if v := version(); v != v0 {
		t.Fatalf("PolicyVersion moved without a change: %d then %d", v0, v)
	}
	setPolicies(t, s, metadata.Policy{Pattern: "team/app", Key: "k", Value: "1"})
	v1 := version()
	if v1 == v0 {
		t.Errorf("PolicyVersion did not move on SetPolicies")
	}
	if err := s.DeletePolicy(ctx, "team/app", "nope"); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("DeletePolicy of a missing key = %v", err)
	}
	if v := version(); v != v1 {
		t.Errorf("PolicyVersion moved on a DeletePolicy that removed nothing")
	}
	if err := s.DeletePolicy(ctx, "team/app", "k"); err != nil {
		t.Fatal(err)
	}
	if v := version(); v == v1 {
		t.Errorf("PolicyVersion did not move on DeletePolicy")
	}
}
