package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/servicetest"
)

func TestRetention_PreviewIsWhatTheRunDeletes_SQLite(t *testing.T) {
	testRetentionPreviewIsWhatTheRunDeletes(t)
}

func TestRetention_PreviewIsWhatTheRunDeletes_Postgres(t *testing.T) {
	url := servicetest.StartPostgres(t).Database(t)
	testRetentionPreviewIsWhatTheRunDeletes(t, registrytest.WithConfig(func(c *config.Config) { c.Database.URL = url }))
}

type retentionPreview struct {
	Delete []retentionDeletion `json:"delete"`
}

type retentionDeletion struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	Reason     string `json:"reason"`
}

// deletionKeys are a preview's or a run's deletions as repo:tag and
// repo@digest, sorted.
func deletionKeys(p retentionPreview) []string {
	var out []string
	for _, d := range p.Delete {
		if d.Tag != "" {
			out = append(out, d.Repository+":"+d.Tag)
		} else {
			out = append(out, d.Repository+"@"+d.Digest)
		}
	}
	slices.Sort(out)
	return out
}

func testRetentionPreviewIsWhatTheRunDeletes(t *testing.T, opts ...registrytest.Option) {
	clock := clocktest.At(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	srv := registrytest.NewServer(t, append(opts, registrytest.WithClock(clock.Now))...)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := func(s string) name.Reference {
		t.Helper()
		r, err := name.ParseReference(host+"/"+s, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	newImage := func() v1.Image {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	digestOf := func(img v1.Image) string {
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	push := func(img v1.Image, tags ...string) string {
		t.Helper()
		d := digestOf(img)
		if len(tags) == 0 {
			tags = []string{"@" + d}
		}
		for _, tag := range tags {
			sep := ":"
			if strings.HasPrefix(tag, "@") {
				sep = ""
			}
			if err := remote.Write(ref("team/app"+sep+tag), img); err != nil {
				t.Fatalf("push %s: %v", tag, err)
			}
		}
		clock.Advance(time.Hour)
		return d
	}
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.2.0", "2.0.0", "2.0.1"} {
		digests[v] = push(newImage(), v)
	}
	// Shared digests: latest names 2.0.1's manifest, which stays with it;
	// prod names 1.0.1's, which its tag loses but prod keeps.
	pull := func(s string) v1.Image {
		t.Helper()
		img, err := remote.Image(ref(s))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	push(pull("team/app:2.0.1"), "latest")
	push(pull("team/app:1.0.1"), "prod")
	// An index whose platforms have no tag of their own.
	amd, arm := newImage(), newImage()
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: amd}, mutate.IndexAddendum{Add: arm})
	if err := remote.WriteIndex(ref("team/app:multi"), idx); err != nil {
		t.Fatal(err)
	}
	// A signature of a kept tag, an old untagged image and its SBOM.
	keptSig := push(mutate.Subject(newImage(), descriptorOf(t, ref("team/app:2.0.1"))).(v1.Image))
	orphan := push(newImage())
	orphanSBOM := push(mutate.Subject(newImage(), descriptorOf(t, ref("team/app@"+orphan))).(v1.Image))
	clock.Advance(10 * 24 * time.Hour)
	young := push(newImage())

	api := func(method, path, body string, want int) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return b
	}
	// A value the rules do not accept is refused with what is wrong.
	bad := api("POST", "/v2/namespaces/team/repositories/app/policies", `{"retention": "last=0"}`, http.StatusBadRequest)
	if !bytes.Contains(bad, []byte(`"code":"POLICY_INVALID"`)) || !bytes.Contains(bad, []byte("last=0: want a whole number from 1")) {
		t.Errorf("bad rule answered %s", bad)
	}
	api("POST", "/v2/namespaces/team/repositories/app/policies",
		`{"retention": "semver-minors=2 semver-patches=1; match=latest|prod|multi; untagged=7d"}`, http.StatusOK)

	var preview retentionPreview
	if err := json.Unmarshal(api("GET", "/v2/namespaces/team/repositories/app/retention/preview", "", http.StatusOK), &preview); err != nil {
		t.Fatal(err)
	}
	want := []string{"team/app:1.0.0", "team/app:1.0.1", "team/app:1.1.0", "team/app:1.1.1", "team/app:2.0.0",
		"team/app@" + orphan, "team/app@" + orphanSBOM}
	slices.Sort(want)
	if got := deletionKeys(preview); !slices.Equal(got, want) {
		t.Fatalf("preview deletes\n%q\nwant\n%q", got, want)
	}
	for _, d := range preview.Delete {
		if d.Tag == "1.0.1" && !strings.Contains(d.Reason, "its manifest stays, tagged prod") {
			t.Errorf("1.0.1's reason %q does not say prod keeps its manifest", d.Reason)
		}
	}
	// The namespace's preview is the same here: one repository has rules.
	var nsPreview retentionPreview
	if err := json.Unmarshal(api("GET", "/v2/namespaces/team/retention/preview", "", http.StatusOK), &nsPreview); err != nil {
		t.Fatal(err)
	}
	if got := deletionKeys(nsPreview); !slices.Equal(got, want) {
		t.Errorf("namespace preview deletes %q, want %q", got, want)
	}

	var run struct {
		ID               int64 `json:"id"`
		DeletedTags      int64 `json:"deleted_tags"`
		DeletedManifests int64 `json:"deleted_manifests"`
		Failures         int64 `json:"failures"`
	}
	if err := json.Unmarshal(api("POST", "/v2/namespaces/team/retention/run", "{}", http.StatusOK), &run); err != nil {
		t.Fatal(err)
	}
	if run.DeletedTags != 5 || run.DeletedManifests != 2 || run.Failures != 0 {
		t.Errorf("run = %+v, want 5 tags and 2 manifests deleted", run)
	}
	// What is left is what the preview did not name.
	tags, err := remote.List(ref("team/app").Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1.2.0", "2.0.1", "latest", "multi", "prod"}; !slices.Equal(tags, want) {
		t.Errorf("tags after the run %q, want %q", tags, want)
	}
	for _, d := range []string{digests["1.0.1"], digestOf(amd), digestOf(arm), keptSig, young} {
		if _, err := remote.Head(ref("team/app@" + d)); err != nil {
			t.Errorf("%s should stay: %v", d, err)
		}
	}
	for _, d := range []string{orphan, orphanSBOM} {
		if _, err := remote.Head(ref("team/app@" + d)); err == nil {
			t.Errorf("%s should be gone", d)
		}
	}
	// The run's report lists exactly the preview's deletions.
	var runs struct {
		Runs []struct {
			ID      int64 `json:"id"`
			Trigger string
			Deleted []struct {
				Repository string `json:"repository"`
				Tags       []struct {
					Tag, Digest, Reason, Error string
				} `json:"tags"`
				Manifests []struct {
					Digest, Reason, Error string
				} `json:"manifests"`
			} `json:"deleted"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(api("GET", "/v2/retention/runs", "", http.StatusOK), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs.Runs) != 1 || runs.Runs[0].ID != run.ID || runs.Runs[0].Trigger != "manual" {
		t.Fatalf("runs = %+v, want the one run %d", runs.Runs, run.ID)
	}
	var reported retentionPreview
	for _, p := range runs.Runs[0].Deleted {
		for _, tg := range p.Tags {
			reported.Delete = append(reported.Delete, retentionDeletion{p.Repository, tg.Tag, tg.Digest, tg.Reason})
		}
		for _, m := range p.Manifests {
			reported.Delete = append(reported.Delete, retentionDeletion{p.Repository, "", m.Digest, m.Reason})
		}
	}
	if got := deletionKeys(reported); !slices.Equal(got, want) {
		t.Errorf("the run's report lists %q, want %q", got, want)
	}
	// The manifests the run untagged are the next run's untagged ones,
	// but for 1.0.1's, which prod still names.
	var after retentionPreview
	if err := json.Unmarshal(api("GET", "/v2/namespaces/team/repositories/app/retention/preview", "", http.StatusOK), &after); err != nil {
		t.Fatal(err)
	}
	var next []string
	for _, v := range []string{"1.0.0", "1.1.0", "1.1.1", "2.0.0"} {
		next = append(next, "team/app@"+digests[v])
	}
	slices.Sort(next)
	if got := deletionKeys(after); !slices.Equal(got, next) {
		t.Errorf("after the run the preview deletes %q, want %q", got, next)
	}
}

func descriptorOf(t *testing.T, r name.Reference) v1.Descriptor {
	t.Helper()
	d, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	return d.Descriptor
}

// serve applies the policies at start (and every interval after), and
// each deletion is an audit line by the retention actor.
func TestServe_AppliesRetentionAtStartWithAuditLines(t *testing.T) {
	dir := t.TempDir()
	first := registrytest.NewServer(t, registrytest.WithDataDir(dir))
	first.PushRandom(t, "team/app", "a")
	first.PushRandom(t, "team/app", "b")
	req, _ := http.NewRequest("POST", first.URL+"/v2/namespaces/team/policies", strings.NewReader(`{"retention":"match=b"}`))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set policy: %v %v", resp, err)
	}
	first.Stop()

	sink := newLogSink()
	srv, _ := newServer(t, dir, slog.New(sink), func(c *config.Config) { c.Retention.Interval = time.Hour })
	_, cancel, served := serve(t, srv)
	deleted := sink.await(t, "deleted")
	if deleted["user"] != "retention" || deleted["repository"] != "team/app" || deleted["reference"] != "a" || deleted["kind"] != "tag" {
		t.Errorf("audit line %v", deleted)
	}
	run := sink.await(t, "retention run")
	if run["trigger"] != "schedule" || run["deleted_tags"] != "1" || run["scope"] != "*" {
		t.Errorf("run line %v", run)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
