package metadatatest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wharf/wharf/internal/metadata"
)

// RunWebhooks runs the contract of metadata.WebhookStore: hooks, and the
// outbox that the writes of the store fill in their own transactions.
func RunWebhooks(t *testing.T, newStore func(t *testing.T) metadata.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(*testing.T, metadata.Store, metadata.WebhookStore)
	}{
		{"Webhooks_CreateGetListUpdateDelete", testWebhooksCRUD},
		{"Writes_RecordDeliveriesForMatchingHooksOnly", testWebhooksRecordMatching},
		{"Writes_RolledBackRecordNothing", testWebhooksRolledBack},
		{"Deletes_CarryTheChangeActor", testWebhooksDeleteActor},
		{"TagPlanMoves_RecordTagEvents", testWebhooksTagPlan},
		{"RecordEvents_AndPullBatches", testWebhooksRecordEvents},
		{"GoldenTagPush_RecordsBaseUpdated", testWebhooksBaseUpdated},
		{"Claim_LeasesInOrderPerHookAndRepository", testWebhooksClaimOrder},
		{"Claim_LapsedLeaseIsTakenOver", testWebhooksLeaseLapse},
		{"Claim_ConcurrentWorkersTakeEachDeliveryOnce", testWebhooksClaimConcurrent},
		{"Fail_RetriesThenDeadLettersAndRedelivers", testWebhooksFailDead},
		{"PruneDeliveries_RemovesOldDeliveredOnly", testWebhooksPrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			ws, ok := s.(metadata.WebhookStore)
			if !ok {
				t.Fatalf("%T is not a metadata.WebhookStore", s)
			}
			tc.test(t, s, ws)
		})
	}
}

func createHook(t *testing.T, s metadata.WebhookStore, pattern string, events ...string) int64 {
	t.Helper()
	h := &metadata.Webhook{Namespace: "ns", Pattern: pattern, URL: "http://example.test/" + pattern,
		Events: events, Format: "cncf", Secrets: []string{"whsec_a"}}
	id, err := s.CreateWebhook(t.Context(), h)
	if err != nil {
		t.Fatalf("CreateWebhook(%s): %v", pattern, err)
	}
	return id
}

// eventKey is what a test compares of a delivery.
func eventKey(d metadata.Delivery) string {
	return fmt.Sprintf("hook%d %s %s:%s", d.HookID, d.Action, d.Repo, d.Tag)
}

// claimAll claims every due delivery for worker w at now.
func claimAll(t *testing.T, s metadata.WebhookStore, w string, now time.Time) []metadata.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(t.Context(), w, now, now.Add(time.Minute), 100)
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	return ds
}

func keys(ds []metadata.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, eventKey(d))
	}
	return out
}

// finishAll delivers ds and claims what became due, until nothing is.
func drain(t *testing.T, s metadata.WebhookStore, now time.Time) []string {
	t.Helper()
	var out []string
	for {
		ds := claimAll(t, s, "w", now)
		if len(ds) == 0 {
			return out
		}
		for _, d := range ds {
			if err := s.FinishDelivery(t.Context(), d.ID, "w", now); err != nil {
				t.Fatalf("FinishDelivery(%d): %v", d.ID, err)
			}
			out = append(out, eventKey(d))
		}
	}
}

func testWebhooksCRUD(t *testing.T, _ metadata.Store, s metadata.WebhookStore) {
	ctx := t.Context()
	h := &metadata.Webhook{Namespace: "ns", Pattern: "ns/*", URL: "http://a.test/hook", Events: []string{"push", "delete"},
		Format: "cloudevents", Secrets: []string{"whsec_new", "whsec_old"}, CreatedBy: "alice"}
	id, err := s.CreateWebhook(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	other := &metadata.Webhook{Namespace: "other", Pattern: "other/app", URL: "http://b.test", Events: []string{"pull"},
		Format: "cncf", Secrets: []string{"whsec_b"}}
	if _, err := s.CreateWebhook(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetWebhook(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.IsZero() {
		t.Error("CreatedAt is zero")
	}
	h.ID, h.CreatedAt = id, got.CreatedAt
	if !reflect.DeepEqual(got, h) {
		t.Errorf("GetWebhook = %+v, want %+v", got, h)
	}
	list, err := s.ListWebhooks(ctx, "ns")
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("ListWebhooks(ns) = %+v, %v; want the one hook", list, err)
	}
	if all, err := s.ListWebhooks(ctx, ""); err != nil || len(all) != 2 {
		t.Errorf("ListWebhooks(\"\") = %d hooks, %v; want 2", len(all), err)
	}
	h.Secrets, h.Events, h.URL = []string{"whsec_newer"}, []string{"push"}, "http://a.test/v2"
	if err := s.UpdateWebhook(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetWebhook(ctx, id); !reflect.DeepEqual(got, h) {
		t.Errorf("after UpdateWebhook: %+v, want %+v", got, h)
	}
	if err := s.DeleteWebhook(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetWebhook(ctx, id)
	wantErr(t, "GetWebhook after delete", err, metadata.ErrNotFound)
	wantErr(t, "DeleteWebhook again", s.DeleteWebhook(ctx, id), metadata.ErrNotFound)
	h.ID = id + 1000
	wantErr(t, "UpdateWebhook of none", s.UpdateWebhook(ctx, h), metadata.ErrNotFound)
}

func testWebhooksRecordMatching(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	ctx := t.Context()
	all := createHook(t, s, "ns/*", "push", "delete")
	app := createHook(t, s, "ns/app", "push")
	createHook(t, s, "ns/app2", "push")  // exact: not ns/app
	createHook(t, s, "other/*", "push")  // another namespace
	createHook(t, s, "ns/*", "pull")     // another event
	createHook(t, s, "ns/ap*", "delete") // a prefix inside a name
	m := newManifest("ns/app", "one")
	putManifest(t, ms, m, "v1", "latest")
	if err := ms.DeleteTag(ctx, "ns/app", "latest"); err != nil {
		t.Fatal(err)
	}
	if err := ms.DeleteManifest(ctx, "ns/app", m.Digest); err != nil {
		t.Fatal(err)
	}
	ds := claimAll(t, s, "w", time.Now())
	// Only the first of each hook and repository is due.
	want := []string{
		fmt.Sprintf("hook%d push ns/app:v1", all),
		fmt.Sprintf("hook%d push ns/app:v1", app),
		fmt.Sprintf("hook%d delete ns/app:latest", all+5),
	}
	if got := keys(ds); !slices.Equal(got, want) {
		t.Fatalf("first claim = %q, want %q", got, want)
	}
	d := ds[0]
	if d.Digest != m.Digest || d.MediaType != m.MediaType || d.Size != int64(len(m.Content)) ||
		d.EventID == "" || d.State != metadata.DeliveryPending || d.CreatedAt.IsZero() {
		t.Errorf("delivery = %+v, want the push of %s, pending, with an event ID", d, m.Digest)
	}
	for _, d := range ds {
		if err := s.FinishDelivery(ctx, d.ID, "w", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	want = []string{
		fmt.Sprintf("hook%d push ns/app:latest", all),
		fmt.Sprintf("hook%d push ns/app:latest", app),
		fmt.Sprintf("hook%d delete ns/app:", all+5),
		fmt.Sprintf("hook%d delete ns/app:latest", all),
		fmt.Sprintf("hook%d delete ns/app:", all),
	}
	if got := drain(t, s, time.Now()); !slices.Equal(got, want) {
		t.Errorf("then = %q, want %q", got, want)
	}
	if err := ms.DeleteRepository(ctx, "ns/app"); err != nil {
		t.Fatal(err)
	}
	want = []string{fmt.Sprintf("hook%d delete ns/app:", all), fmt.Sprintf("hook%d delete ns/app:", all+5)}
	if got := drain(t, s, time.Now()); !slices.Equal(got, want) {
		t.Errorf("after DeleteRepository = %q, want %q", got, want)
	}
}

// testWebhooksDeleteActor: every kind of delete names who did it, from
// the write context's ChangeInfo, as the tag history does.
func testWebhooksDeleteActor(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	as := func(actor string) context.Context {
		return metadata.WithChangeInfo(t.Context(), metadata.ChangeInfo{Actor: actor})
	}
	createHook(t, s, "ns/*", "delete")
	m := newManifest("ns/app", "one")
	putManifest(t, ms, m, "v1")
	if err := ms.DeleteTag(as("alice"), "ns/app", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := ms.DeleteManifest(as("bob"), "ns/app", m.Digest); err != nil {
		t.Fatal(err)
	}
	putManifest(t, ms, newManifest("ns/gone", "two"), "v1")
	if err := ms.DeleteRepository(as("carol"), "ns/gone"); err != nil {
		t.Fatal(err)
	}
	want := []string{"delete ns/app:v1 by alice", "delete ns/app: by bob", "delete ns/gone: by carol"}
	if c, ok := ms.(metadata.Collector); ok {
		u := newManifest("ns/untagged", "three")
		putManifest(t, ms, u)
		ok, err := c.DeleteUntaggedManifest(as("gc"), metadata.ManifestRef{Repo: "ns/untagged", Digest: u.Digest}, time.Now().Add(time.Hour))
		if err != nil || !ok {
			t.Fatalf("DeleteUntaggedManifest = %v, %v", ok, err)
		}
		want = append(want, "delete ns/untagged: by gc")
	}
	var got []string
	for {
		ds := claimAll(t, s, "w", time.Now())
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			if err := s.FinishDelivery(t.Context(), d.ID, "w", time.Now()); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %s:%s by %s", d.Action, d.Repo, d.Tag, d.Actor))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delete deliveries = %q, want %q", got, want)
	}
}

func testWebhooksRolledBack(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	createHook(t, s, "ns/*", "push")
	m := newManifest("ns/app", "one")
	m.RequiredBlobs = m.Blobs
	if err := ms.PutManifest(t.Context(), m, []string{"v1"}); !errors.Is(err, metadata.ErrMissingReference) {
		t.Fatalf("PutManifest without blobs = %v, want ErrMissingReference", err)
	}
	if got := claimAll(t, s, "w", time.Now()); len(got) != 0 {
		t.Errorf("a refused push left deliveries: %q", keys(got))
	}
}

func testWebhooksTagPlan(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	tp, ok := ms.(metadata.TagPlanner)
	if !ok {
		t.Skipf("%T is not a TagPlanner", ms)
	}
	hook := createHook(t, s, "ns/*", "tag", "push")
	m := newManifest("ns/app", "one")
	plan := func([]metadata.TagTarget) ([]metadata.TagMove, error) {
		return []metadata.TagMove{{Name: "1", Digest: m.Digest, PushedBy: "bob"}}, nil
	}
	if err := tp.PutManifestPlanned(t.Context(), m, []string{"1.0.0"}, plan); err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("hook%d push ns/app:1.0.0", hook), fmt.Sprintf("hook%d tag ns/app:1", hook)}
	if got := drain(t, s, time.Now()); !slices.Equal(got, want) {
		t.Errorf("deliveries = %q, want %q", got, want)
	}
}

func testWebhooksRecordEvents(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	ctx := t.Context()
	hook := createHook(t, s, "ns/*", "pull", "gc")
	putManifest(t, ms, newManifest("ns/app", "one"), "v1")
	if err := ms.AddPulls(ctx, []metadata.Pull{{Repo: "ns/app", Tag: "v1", Count: 7, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordEvents(ctx, []metadata.Event{{Action: metadata.EventGC, Repo: "ns/app", Detail: `{"bytes":1}`},
		{Action: metadata.EventGC, Detail: `{"bytes":2}`}, {Action: metadata.EventGC, Repo: "other/app"}}); err != nil {
		t.Fatal(err)
	}
	// The registry-wide event has no repository to wait behind.
	ds := claimAll(t, s, "w", time.Now())
	if len(ds) != 2 || ds[0].Action != metadata.EventPull || ds[0].Count != 7 || ds[0].HookID != hook ||
		ds[1].Action != metadata.EventGC || ds[1].Repo != "" || ds[1].Detail != `{"bytes":2}` {
		t.Fatalf("claim = %+v, want the batch of 7 pulls and the registry-wide gc event", ds)
	}
	for _, d := range ds {
		if err := s.FinishDelivery(ctx, d.ID, "w", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ds = claimAll(t, s, "w", time.Now())
	if len(ds) != 1 || ds[0].Action != metadata.EventGC || ds[0].Repo != "ns/app" || ds[0].Detail != `{"bytes":1}` {
		t.Fatalf("claim = %+v, want the gc event of ns/app with its detail, not other/app's", ds)
	}
}

func testWebhooksBaseUpdated(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	hook := createHook(t, s, "ns/*", "base.updated")
	plain := newManifest("ns/app", "app")
	putManifest(t, ms, plain, "v1")
	golden := newManifest("ns/base", "base")
	golden.Lineage = &metadata.Lineage{Repo: golden.Repo, Digest: golden.Digest, Chain: "chain", First: "first", Layers: 1, Golden: true}
	putManifest(t, ms, golden, "1.2")
	want := []string{fmt.Sprintf("hook%d base.updated ns/base:1.2", hook)}
	if got := drain(t, s, time.Now()); !slices.Equal(got, want) {
		t.Errorf("deliveries = %q, want %q", got, want)
	}
}

func testWebhooksClaimOrder(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	ctx := t.Context()
	hook := createHook(t, s, "ns/*", "push")
	for i := range 3 {
		putManifest(t, ms, newManifest("ns/a", fmt.Sprint("a", i)), fmt.Sprint("a", i))
		putManifest(t, ms, newManifest("ns/b", fmt.Sprint("b", i)), fmt.Sprint("b", i))
	}
	now := time.Now()
	first := claimAll(t, s, "w1", now)
	want := []string{fmt.Sprintf("hook%d push ns/a:a0", hook), fmt.Sprintf("hook%d push ns/b:b0", hook)}
	if got := keys(first); !slices.Equal(got, want) {
		t.Fatalf("claim = %q, want %q", got, want)
	}
	if got := claimAll(t, s, "w2", now); len(got) != 0 {
		t.Fatalf("a second worker claimed %q while the first deliveries are leased", keys(got))
	}
	wantErr(t, "FinishDelivery by another worker", s.FinishDelivery(ctx, first[0].ID, "w2", now), metadata.ErrConflict)
	if err := s.FinishDelivery(ctx, first[0].ID, "w1", now); err != nil {
		t.Fatal(err)
	}
	want = []string{fmt.Sprintf("hook%d push ns/a:a1", hook)}
	if got := keys(claimAll(t, s, "w2", now)); !slices.Equal(got, want) {
		t.Fatalf("after a0 delivered: claim = %q, want %q", got, want)
	}
}

func testWebhooksClaimConcurrent(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	createHook(t, s, "ns/*", "push")
	claimConcurrently(t, ms, func(worker string, now time.Time) ([]int64, error) {
		ds, err := s.ClaimDeliveries(t.Context(), worker, now, now.Add(time.Minute), 2)
		ids := make([]int64, 0, len(ds))
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		return ids, err
	})
}

// claimConcurrently pushes to a dozen repositories, lets four workers
// claim what that recorded, two rows at a time, all at once, and checks
// that each row went to one worker.
func claimConcurrently(t *testing.T, ms metadata.Store, claim func(worker string, now time.Time) ([]int64, error)) {
	t.Helper()
	const repos = 12
	for i := range repos {
		putManifest(t, ms, newManifest(fmt.Sprint("ns/r", i), fmt.Sprint(i)), "v1")
	}
	now := time.Now()
	var mu sync.Mutex
	claimed := map[int64]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			worker := fmt.Sprint("w", w)
			for range 3 {
				ids, err := claim(worker, now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, id := range ids {
					if other, ok := claimed[id]; ok {
						t.Errorf("row %d claimed by %s and %s", id, other, worker)
					}
					claimed[id] = worker
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != repos {
		t.Errorf("%d rows claimed, want all %d", len(claimed), repos)
	}
}

func testWebhooksLeaseLapse(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	ctx := t.Context()
	createHook(t, s, "ns/*", "push")
	putManifest(t, ms, newManifest("ns/a", "one"), "v1")
	now := time.Now()
	got := claimAll(t, s, "dead-worker", now)
	if len(got) != 1 {
		t.Fatalf("claim = %q, want one", keys(got))
	}
	later := now.Add(time.Minute + time.Second) // claimAll leases for a minute
	again := claimAll(t, s, "w2", later)
	if len(again) != 1 || again[0].ID != got[0].ID {
		t.Fatalf("after the lease lapsed: claim = %q, want the same delivery", keys(again))
	}
	wantErr(t, "FinishDelivery by the worker whose lease lapsed",
		s.FinishDelivery(ctx, got[0].ID, "dead-worker", later), metadata.ErrConflict)
	if err := s.FinishDelivery(ctx, got[0].ID, "w2", later); err != nil {
		t.Fatal(err)
	}
}

func testWebhooksFailDead(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	ctx := t.Context()
	hook := createHook(t, s, "ns/*", "push")
	putManifest(t, ms, newManifest("ns/a", "one"), "v1")
	putManifest(t, ms, newManifest("ns/a", "two"), "v2")
	now := time.Now()
	d := claimAll(t, s, "w", now)[0]
	if err := s.FailDelivery(ctx, d.ID, "w", "503 Service Unavailable", now.Add(time.Hour), false); err != nil {
		t.Fatal(err)
	}
	// Being retried, v1 still holds v2 back.
	if got := claimAll(t, s, "w", now.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("claim during v1's back-off = %q, want none", keys(got))
	}
	d = claimAll(t, s, "w", now.Add(time.Hour))[0]
	if d.Attempts != 1 || d.LastError != "503 Service Unavailable" || d.Tag != "v1" {
		t.Fatalf("retried delivery = %+v, want v1 after one failed attempt", d)
	}
	if err := s.FailDelivery(ctx, d.ID, "w", "refused", now.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	// Dead, it no longer holds v2 back.
	want := []string{fmt.Sprintf("hook%d push ns/a:v2", hook)}
	if got := drain(t, s, now.Add(time.Hour)); !slices.Equal(got, want) {
		t.Fatalf("after v1 died: %q, want %q", got, want)
	}
	dead, err := s.ListDeliveries(ctx, hook, metadata.DeliveryDead, 10)
	if err != nil || len(dead) != 1 || dead[0].ID != d.ID || dead[0].Attempts != 2 {
		t.Fatalf("ListDeliveries(dead) = %+v, %v; want v1 with 2 attempts", dead, err)
	}
	if all, _ := s.ListDeliveries(ctx, hook, "", 0); len(all) != 2 || all[0].Tag != "v2" {
		t.Errorf("ListDeliveries(any) = %q, want v2 then v1", keys(all))
	}
	wantErr(t, "Redeliver of another hook's", s.Redeliver(ctx, hook+1, d.ID, now), metadata.ErrNotFound)
	if err := s.Redeliver(ctx, hook, d.ID, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "Redeliver of a pending one", s.Redeliver(ctx, hook, d.ID, now), metadata.ErrNotFound)
	re := claimAll(t, s, "w", now.Add(2*time.Hour))
	if len(re) != 1 || re[0].ID != d.ID || re[0].Attempts != 0 {
		t.Fatalf("after Redeliver: claim = %+v, want v1 afresh", re)
	}
}

func testWebhooksPrune(t *testing.T, ms metadata.Store, s metadata.WebhookStore) {
	ctx := t.Context()
	hook := createHook(t, s, "ns/*", "push")
	putManifest(t, ms, newManifest("ns/a", "one"), "v1")
	putManifest(t, ms, newManifest("ns/b", "two"), "v2")
	now := time.Now()
	ds := claimAll(t, s, "w", now)
	if err := s.FinishDelivery(ctx, ds[0].ID, "w", now); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneDeliveries(ctx, now.Add(time.Second))
	if err != nil || n != 1 {
		t.Fatalf("PruneDeliveries = %d, %v; want 1", n, err)
	}
	left, _ := s.ListDeliveries(ctx, hook, "", 0)
	if len(left) != 1 || left[0].ID != ds[1].ID {
		t.Errorf("left = %q, want the undelivered one", keys(left))
	}
}
