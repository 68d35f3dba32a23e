package authtest

import (
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/auth"
)

// RunFailures runs the contract suite of auth.FailureStore, the failed-
// login counters. newStore must return a new, empty store for each call
// and register its own cleanup with t.
func RunFailures(t *testing.T, newStore func(t *testing.T) auth.FailureStore) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, auth.FailureStore)
	}{
		{"LoginFailures_OnlyKeysWithCounters", testFailuresMissing},
		{"AddLoginFailure_CountsAndKeepsLatestTime", testFailuresCount},
		{"AddLoginFailure_StartsOverAfterForget", testFailuresForget},
		{"AddLoginFailure_KeysAreIndependentAndAnyString", testFailuresKeys},
		{"AddLoginFailure_ConcurrentFailuresAllCount", testFailuresConcurrent},
		{"ClearLoginFailures_OnlyThoseKeys", testFailuresClear},
		{"PruneLoginFailures_DeletesOnlyOlder", testFailuresPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newStore(t))
		})
	}
}

// noForget is a forget time before every failure the tests record.
var noForget = at.Add(-time.Hour)

func addFailure(t *testing.T, s auth.FailureStore, key string, now time.Time) auth.LoginFailure {
	t.Helper()
	f, err := s.AddLoginFailure(t.Context(), key, now, noForget)
	must(t, err)
	return f
}

func failures(t *testing.T, s auth.FailureStore, keys ...string) map[string]auth.LoginFailure {
	t.Helper()
	got, err := s.LoginFailures(t.Context(), keys)
	must(t, err)
	return got
}

func wantFailures(t *testing.T, what string, got, want map[string]auth.LoginFailure) {
	t.Helper()
	if !maps.EqualFunc(got, want, func(a, b auth.LoginFailure) bool { return a.Count == b.Count && a.Last.Equal(b.Last) }) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

func testFailuresMissing(t *testing.T, s auth.FailureStore) {
	wantFailures(t, "empty store", failures(t, s, "user:alice", "addr:10.0.0.1"), map[string]auth.LoginFailure{})
	wantFailures(t, "no keys", failures(t, s), map[string]auth.LoginFailure{})
	addFailure(t, s, "user:alice", at)
	wantFailures(t, "one of two", failures(t, s, "user:alice", "addr:10.0.0.1"),
		map[string]auth.LoginFailure{"user:alice": {Count: 1, Last: at}})
}

func testFailuresCount(t *testing.T, s auth.FailureStore) {
	for i := 1; i <= 3; i++ {
		now := at.Add(time.Duration(i) * time.Second)
		f := addFailure(t, s, "user:alice", now)
		if f.Count != i || !f.Last.Equal(now) {
			t.Fatalf("failure %d: AddLoginFailure = %+v, want count %d at %v", i, f, i, now)
		}
	}
	wantFailures(t, "after three", failures(t, s, "user:alice"),
		map[string]auth.LoginFailure{"user:alice": {Count: 3, Last: at.Add(3 * time.Second)}})
}

func testFailuresForget(t *testing.T, s auth.FailureStore) {
	addFailure(t, s, "user:alice", at)
	addFailure(t, s, "user:alice", at)
	later := at.Add(2 * time.Hour)
	// The previous failure is exactly at forgetBefore: not before it, so
	// still counted.
	f, err := s.AddLoginFailure(t.Context(), "user:alice", at.Add(time.Minute), at)
	must(t, err)
	if f.Count != 3 {
		t.Fatalf("failure at the forget boundary: count %d, want 3", f.Count)
	}
	f, err = s.AddLoginFailure(t.Context(), "user:alice", later, later.Add(-time.Hour))
	must(t, err)
	if f.Count != 1 || !f.Last.Equal(later) {
		t.Fatalf("failure after a quiet hour: %+v, want count 1 at %v", f, later)
	}
}

func testFailuresKeys(t *testing.T, s auth.FailureStore) {
	// Keys hold whatever a client sent as a user name.
	keys := []string{"pair:alice\x0010.0.0.1", "pair:alice\x0010.0.0.2", "user:Ünïcode ✓", "addr:" + strings.Repeat("x", 10000)}
	for i, k := range keys {
		for range i + 1 {
			addFailure(t, s, k, at)
		}
	}
	want := map[string]auth.LoginFailure{}
	for i, k := range keys {
		want[k] = auth.LoginFailure{Count: i + 1, Last: at}
	}
	wantFailures(t, "every key", failures(t, s, keys...), want)
}

func testFailuresConcurrent(t *testing.T, s auth.FailureStore) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.AddLoginFailure(t.Context(), "user:alice", at, noForget)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	wantFailures(t, "after concurrent failures", failures(t, s, "user:alice"),
		map[string]auth.LoginFailure{"user:alice": {Count: n, Last: at}})
}

func testFailuresClear(t *testing.T, s auth.FailureStore) {
	addFailure(t, s, "user:alice", at)
	addFailure(t, s, "user:bob", at)
	must(t, s.ClearLoginFailures(t.Context(), []string{"user:alice", "user:missing"}))
	must(t, s.ClearLoginFailures(t.Context(), nil))
	wantFailures(t, "after clearing alice", failures(t, s, "user:alice", "user:bob"),
		map[string]auth.LoginFailure{"user:bob": {Count: 1, Last: at}})
	if f := addFailure(t, s, "user:alice", at); f.Count != 1 {
		t.Fatalf("failure after clearing: count %d, want 1", f.Count)
	}
}

func testFailuresPrune(t *testing.T, s auth.FailureStore) {
	addFailure(t, s, "user:old", at)
	addFailure(t, s, "user:edge", at.Add(time.Minute))
	addFailure(t, s, "user:new", at.Add(2*time.Minute))
	n, err := s.PruneLoginFailures(t.Context(), at.Add(time.Minute))
	must(t, err)
	if n != 1 {
		t.Fatalf("PruneLoginFailures deleted %d, want 1", n)
	}
	wantFailures(t, "after pruning", failures(t, s, "user:old", "user:edge", "user:new"),
		map[string]auth.LoginFailure{
			"user:edge": {Count: 1, Last: at.Add(time.Minute)},
			"user:new":  {Count: 1, Last: at.Add(2 * time.Minute)},
		})
}
