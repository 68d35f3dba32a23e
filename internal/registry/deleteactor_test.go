package registry_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

// Every way a manifest, a tag or a repository goes is a delete event that
// names who did it: the caller of a delete (API, UI and Hub API all act
// through these methods with the caller as actor), retention, and the
// garbage collection.
func TestDeleteEvents_NameTheirActorOnEveryPath(t *testing.T) {
	c := clocktest.New()
	path := filepath.Join(t.TempDir(), "metadata.db")
	svc := replicaOn(t, path, c)
	db, err := sqldb.OpenSQLite(t.Context(), path, nil, sqldb.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.CreateWebhook(t.Context(), &metadata.Webhook{Namespace: "team", Pattern: "team/*",
		URL: "http://receiver.test/", Events: []string{metadata.EventDelete}, Format: "cncf", Secrets: []string{"whsec_a"}}); err != nil {
		t.Fatal(err)
	}
	as := func(user string) context.Context { return registry.WithActor(context.Background(), user) }
	alice := as("alice")
	short := func(d string) string { return d[len(d)-6:] }
	var want []string
	digests := map[string]string{}
	for _, tag := range []string{"v1", "v2", "v3"} {
		digests[tag] = mustPush(t, svc, alice, "team/app", tag, tag).String()
		c.Advance(time.Minute)
	}
	mustPush(t, svc, alice, "team/gone", "v1", "gone")
	untagged := digest.FromBytes(imageManifest("untagged")).String()
	mustPush(t, svc, alice, "team/app", untagged, "untagged")

	if err := svc.DeleteManifest(as("bob"), "team/app", "v1"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "team/app:v1@"+short(digests["v1"])+" by bob")
	if err := svc.DeleteManifest(as("carol"), "team/app", digests["v2"]); err != nil {
		t.Fatal(err)
	}
	want = append(want, "team/app:@"+short(digests["v2"])+" by carol")
	if err := svc.DeleteRepository(as("dave"), "team/gone"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "team/gone:@ by dave")

	// Retention, scheduled by nobody in particular: v3 goes.
	c.Advance(time.Minute)
	mustPush(t, svc, alice, "team/app", "v4", "v4")
	if err := svc.Policies().Set(alice, "team/*", map[string]string{registry.KeyRetention: "last=1"}); err != nil {
		t.Fatal(err)
	}
	if run, err := svc.ScheduledRetention(context.Background(), "a", time.Hour); err != nil || run == nil || run.DeletedTags != 1 {
		t.Fatalf("retention run = %+v, %v; want v3 deleted", run, err)
	}
	want = append(want, "team/app:v3@"+short(digests["v3"])+" by "+registry.RetentionActor)

	// The collection, past the tag history's window, takes the manifests
	// the tag deletes left untagged and the one pushed by digest.
	c.Advance(15 * 24 * time.Hour)
	if _, err := svc.CollectGarbage(context.Background(), registry.GCOptions{Untagged: true, Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{digests["v1"], digests["v3"], untagged} {
		want = append(want, "team/app:@"+short(d)+" by "+registry.GCActor)
	}

	var got []string
	for {
		ds, err := db.ClaimDeliveries(t.Context(), "w", c.Now(), c.Now().Add(time.Minute), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			if err := db.FinishDelivery(t.Context(), d.ID, "w", c.Now()); err != nil {
				t.Fatal(err)
			}
			dg := ""
			if d.Digest != "" && d.Repo != "team/gone" {
				dg = short(d.Digest.String())
			}
			got = append(got, fmt.Sprintf("%s:%s@%s by %s", d.Repo, d.Tag, dg, d.Actor))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("delete events:\n got %q\nwant %q", got, want)
	}
}
