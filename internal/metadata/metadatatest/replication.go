package metadatatest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// RunReplication runs the contract of metadata.ReplicationStore: rules,
// their sealed passwords and their run status.
func RunReplication(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	t.Run("Rules_CreateGetListDeleteAndStatus", func(t *testing.T) {
		t.Parallel()
		s, ok := newStore(t).(metadata.ReplicationStore)
		if !ok {
			t.Fatal("the store is not a metadata.ReplicationStore")
		}
		testReplicationRules(t, s)
	})
	tests := []struct {
		name string
		test func(*testing.T, metadata.Store, metadata.ReplicationStore)
	}{
		{"Writes_RecordTasksForCoveringRulesOnly", testReplicationRecord},
		{"Claim_InOrderPerRuleAndRepository_FailRetries", testReplicationClaimOrder},
		{"Claim_ConcurrentWorkersTakeEachTaskOnce", testReplicationClaimConcurrent},
		{"Claim_RenewedLeaseHoldsALapsedOneIsTaken", testReplicationRenewClaims},
		{"Status_BacklogLagAndFailures", testReplicationStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			rs, ok := s.(metadata.ReplicationStore)
			if !ok {
				t.Fatalf("%T is not a metadata.ReplicationStore", s)
			}
			tc.test(t, s, rs)
		})
	}
}

func createRule(t *testing.T, s metadata.ReplicationStore, pattern string) int64 {
	t.Helper()
	ns, _, _ := strings.Cut(pattern, "/")
	id, err := s.CreateReplicationRule(t.Context(), &metadata.ReplicationRule{Namespace: ns, Pattern: pattern, URL: "http://b.test"})
	if err != nil {
		t.Fatalf("CreateReplicationRule(%s): %v", pattern, err)
	}
	return id
}

func taskKey(x metadata.ReplicationTask) string {
	ref := x.Tag
	if ref == "" && x.Digest != "" {
		ref = x.Digest.String()[:15]
	}
	return fmt.Sprintf("rule%d %s %s:%s", x.RuleID, x.Action, x.Repo, ref)
}

func claimTasks(t *testing.T, s metadata.ReplicationStore, w string, now time.Time, n int) []metadata.ReplicationTask {
	t.Helper()
	ts, err := s.ClaimReplicationTasks(t.Context(), w, now, now.Add(time.Minute), n)
	if err != nil {
		t.Fatalf("ClaimReplicationTasks: %v", err)
	}
	return ts
}

func taskKeys(ts []metadata.ReplicationTask) []string {
	out := []string{}
	for _, x := range ts {
		out = append(out, taskKey(x))
	}
	return out
}

// drainTasks finishes what is due and claims again until nothing is.
func drainTasks(t *testing.T, s metadata.ReplicationStore, now time.Time) []string {
	t.Helper()
	var out []string
	for {
		ts := claimTasks(t, s, "w", now, 100)
		if len(ts) == 0 {
			return out
		}
		for _, x := range ts {
			if err := s.FinishReplicationTask(t.Context(), x.ID, "w"); err != nil {
				t.Fatalf("FinishReplicationTask(%d): %v", x.ID, err)
			}
			out = append(out, taskKey(x))
		}
	}
}

func testReplicationRecord(t *testing.T, ms metadata.Store, s metadata.ReplicationStore) {
	ctx := t.Context()
	all := createRule(t, s, "ns/*")
	app := createRule(t, s, "ns/app")
	createRule(t, s, "ns/app2") // exact: not ns/app
	createRule(t, s, "other/*") // another namespace
	m := newManifest("ns/app", "one")
	putManifest(t, ms, m, "v1")
	sig := newManifest("ns/app", "sig")
	putManifest(t, ms, sig) // by digest, as a signature is pushed
	if err := ms.DeleteTag(ctx, "ns/app", "v1"); err != nil {
		t.Fatal(err)
	}
	// A whole repository deleted makes a task; a pull does not.
	if ws, ok := ms.(metadata.WebhookStore); ok {
		if err := ws.RecordEvents(ctx, []metadata.Event{{Action: metadata.EventPull, Repo: "ns/app", Tag: "v1", Count: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ms.DeleteRepository(ctx, "ns/app"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("rule%d delete ns/app:", all),
		fmt.Sprintf("rule%d delete ns/app:", app),
		fmt.Sprintf("rule%d push ns/app:v1", all),
		fmt.Sprintf("rule%d push ns/app:v1", app),
		fmt.Sprintf("rule%d push ns/app:%s", all, sig.Digest.String()[:15]),
		fmt.Sprintf("rule%d push ns/app:%s", app, sig.Digest.String()[:15]),
		fmt.Sprintf("rule%d delete ns/app:v1", all),
		fmt.Sprintf("rule%d delete ns/app:v1", app),
	}
	got := drainTasks(t, s, time.Now())
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("tasks = %q, want %q", got, want)
	}
	// A rule deleted takes its backlog with it.
	putManifest(t, ms, newManifest("ns/app", "two"), "v2")
	if err := s.DeleteReplicationRule(ctx, app); err != nil {
		t.Fatal(err)
	}
	if got := drainTasks(t, s, time.Now()); !slices.Equal(got, []string{fmt.Sprintf("rule%d push ns/app:v2", all)}) {
		t.Errorf("after deleting rule %d: tasks = %q, want only rule %d's", app, got, all)
	}
}

func testReplicationClaimOrder(t *testing.T, ms metadata.Store, s metadata.ReplicationStore) {
	ctx := t.Context()
	rule := createRule(t, s, "ns/*")
	putManifest(t, ms, newManifest("ns/a", "one"), "v1")
	putManifest(t, ms, newManifest("ns/a", "two"), "v2")
	putManifest(t, ms, newManifest("ns/b", "three"), "v1")
	now := time.Now()
	first := claimTasks(t, s, "w1", now, 100)
	want := []string{fmt.Sprintf("rule%d push ns/a:v1", rule), fmt.Sprintf("rule%d push ns/b:v1", rule)}
	if got := taskKeys(first); !slices.Equal(got, want) {
		t.Fatalf("first claim = %q, want %q (ns/a:v2 waits for ns/a:v1)", got, want)
	}
	if got := claimTasks(t, s, "w2", now, 100); len(got) != 0 {
		t.Fatalf("claim while leased = %q, want none", taskKeys(got))
	}
	// A failed attempt keeps its place: ns/a:v2 still waits behind it.
	retry := now.Add(time.Minute)
	if err := s.FailReplicationTask(ctx, first[0].ID, "w1", "destination: 503", retry); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "FailReplicationTask by another worker", s.FailReplicationTask(ctx, first[1].ID, "w2", "x", retry), metadata.ErrConflict)
	if err := s.FinishReplicationTask(ctx, first[1].ID, "w1"); err != nil {
		t.Fatal(err)
	}
	if got := claimTasks(t, s, "w2", now, 100); len(got) != 0 {
		t.Fatalf("claim before the retry is due = %q, want none", taskKeys(got))
	}
	again := claimTasks(t, s, "w2", retry, 100)
	if len(again) != 1 || again[0].ID != first[0].ID || again[0].Attempts != 1 || again[0].LastError != "destination: 503" {
		t.Fatalf("claim at the retry = %+v, want ns/a:v1 with one failed attempt", again)
	}
	wantErr(t, "FinishReplicationTask by the worker that lost it", s.FinishReplicationTask(ctx, first[0].ID, "w1"), metadata.ErrConflict)
	if err := s.FinishReplicationTask(ctx, first[0].ID, "w2"); err != nil {
		t.Fatal(err)
	}
	if got := drainTasks(t, s, retry); !slices.Equal(got, []string{fmt.Sprintf("rule%d push ns/a:v2", rule)}) {
		t.Errorf("then = %q, want ns/a:v2", got)
	}
}

func testReplicationClaimConcurrent(t *testing.T, ms metadata.Store, s metadata.ReplicationStore) {
	createRule(t, s, "ns/*")
	claimConcurrently(t, ms, func(worker string, now time.Time) ([]int64, error) {
		ts, err := s.ClaimReplicationTasks(t.Context(), worker, now, now.Add(time.Minute), 2)
		ids := make([]int64, 0, len(ts))
		for _, x := range ts {
			ids = append(ids, x.ID)
		}
		return ids, err
	})
}

func testReplicationRenewClaims(t *testing.T, ms metadata.Store, s metadata.ReplicationStore) {
	ctx := t.Context()
	rule := createRule(t, s, "ns/*")
	putManifest(t, ms, newManifest("ns/a", "one"), "v1")
	putManifest(t, ms, newManifest("ns/b", "two"), "v1")
	now := time.Now()
	renew := func(worker string, at time.Time, want int) {
		t.Helper()
		if n, err := s.RenewReplicationClaims(ctx, worker, at.Add(time.Minute)); err != nil || n != want {
			t.Fatalf("RenewReplicationClaims(%s) at +%v = %d, %v; want %d", worker, at.Sub(now), n, err, want)
		}
	}
	held := claimTasks(t, s, "w1", now, 100) // leased for a minute
	if len(held) != 2 {
		t.Fatalf("claimed %q, want both repositories' pushes", taskKeys(held))
	}
	renew("w1", now.Add(40*time.Second), 2)
	renew("w2", now.Add(40*time.Second), 0)
	renew("", now.Add(40*time.Second), 0) // unclaimed rows are nobody's
	if got := claimTasks(t, s, "w2", now.Add(90*time.Second), 100); len(got) != 0 {
		t.Fatalf("claim past the first lease but within its renewal = %q, want none", taskKeys(got))
	}
	if err := s.FinishReplicationTask(ctx, held[0].ID, "w1"); err != nil {
		t.Fatal(err)
	}
	renew("w1", now.Add(90*time.Second), 1)
	// w1 stops renewing (it died): once the renewed lease lapses, w2 takes
	// the task, and w1's heartbeat can no longer take it back.
	later := now.Add(151 * time.Second)
	taken := claimTasks(t, s, "w2", later, 100)
	if want := []string{fmt.Sprintf("rule%d push ns/b:v1", rule)}; !slices.Equal(taskKeys(taken), want) {
		t.Fatalf("claim after the renewed lease lapsed = %q, want %q", taskKeys(taken), want)
	}
	renew("w1", later, 0)
	wantErr(t, "FinishReplicationTask by the worker that died", s.FinishReplicationTask(ctx, taken[0].ID, "w1"), metadata.ErrConflict)
	if err := s.FinishReplicationTask(ctx, taken[0].ID, "w2"); err != nil {
		t.Fatal(err)
	}
}

func testReplicationStatus(t *testing.T, ms metadata.Store, s metadata.ReplicationStore) {
	ctx := t.Context()
	rule := createRule(t, s, "ns/*")
	if got, err := s.GetReplicationRule(ctx, rule); err != nil || got.Pending != 0 || !got.Oldest.IsZero() {
		t.Fatalf("empty backlog: %+v, %v", got, err)
	}
	before := time.Now().Add(-time.Second)
	putManifest(t, ms, newManifest("ns/a", "one"), "v1", "latest")
	got, err := s.GetReplicationRule(ctx, rule)
	if err != nil || got.Pending != 2 || got.Oldest.Before(before) {
		t.Fatalf("after a push of two tags: pending %d oldest %v (%v), want 2 since %v", got.Pending, got.Oldest, err, before)
	}
	for range 2 {
		if err := s.RecordReplicationRun(ctx, rule, time.Now(), "destination: 503"); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := s.ListReplicationRules(ctx, "ns"); err != nil || len(list) != 1 || list[0].Failures != 2 || list[0].Pending != 2 {
		t.Fatalf("ListReplicationRules = %+v, %v; want 2 failures, 2 pending", list, err)
	}
	u := &metadata.ReplicationRule{ID: rule, Pattern: "ns/app", URL: "https://c.test", DestPrefix: "b", Username: "bot"}
	if err := s.UpdateReplicationRule(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetReplicationRule(ctx, rule); got.Pattern != "ns/app" || got.URL != "https://c.test" || got.DestPrefix != "b" || got.Username != "bot" {
		t.Errorf("after UpdateReplicationRule: %+v", got)
	}
	u.ID = rule + 1000
	wantErr(t, "UpdateReplicationRule of none", s.UpdateReplicationRule(ctx, u), metadata.ErrNotFound)
}

func testReplicationRules(t *testing.T, s metadata.ReplicationStore) {
	ctx := t.Context()
	r := &metadata.ReplicationRule{Namespace: "ns", Pattern: "ns/*", URL: "https://b.test", DestPrefix: "site-b",
		Username: "robot", CreatedBy: "alice"}
	id, err := s.CreateReplicationRule(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateReplicationRule(ctx, &metadata.ReplicationRule{Namespace: "other", Pattern: "other/app", URL: "http://c.test"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetReplicationPassword(ctx, id, "v1:sealed"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetReplicationRule(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.IsZero() {
		t.Error("CreatedAt is zero")
	}
	r.ID, r.CreatedAt, r.SealedPassword = id, got.CreatedAt, "v1:sealed"
	if !reflect.DeepEqual(got, r) {
		t.Errorf("GetReplicationRule = %+v, want %+v", got, r)
	}
	if list, err := s.ListReplicationRules(ctx, "ns"); err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("ListReplicationRules(ns) = %+v, %v; want the one rule", list, err)
	}
	if all, err := s.ListReplicationRules(ctx, ""); err != nil || len(all) != 2 {
		t.Errorf("ListReplicationRules(\"\") = %d rules, %v; want 2", len(all), err)
	}

	ok := time.Unix(1000, 0)
	if err := s.RecordReplicationRun(ctx, id, ok, ""); err != nil {
		t.Fatal(err)
	}
	failed := ok.Add(time.Minute)
	if err := s.RecordReplicationRun(ctx, id, failed, "destination: 503"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetReplicationRule(ctx, id)
	if !got.LastRun.Equal(failed) || !got.LastOK.Equal(ok) || got.LastError != "destination: 503" {
		t.Errorf("after a success then a failure: run %v ok %v error %q", got.LastRun, got.LastOK, got.LastError)
	}
	if err := s.RecordReplicationRun(ctx, id, failed.Add(time.Minute), ""); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetReplicationRule(ctx, id); got.LastError != "" || !got.LastOK.Equal(got.LastRun) {
		t.Errorf("a success clears the error: %+v", got)
	}

	if err := s.DeleteReplicationRule(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetReplicationRule(ctx, id)
	wantErr(t, "GetReplicationRule after delete", err, metadata.ErrNotFound)
	wantErr(t, "DeleteReplicationRule again", s.DeleteReplicationRule(ctx, id), metadata.ErrNotFound)
	wantErr(t, "RecordReplicationRun of none", s.RecordReplicationRun(ctx, id, ok, ""), metadata.ErrNotFound)
	wantErr(t, "SetReplicationPassword of none", s.SetReplicationPassword(ctx, id, "x"), metadata.ErrNotFound)
}
