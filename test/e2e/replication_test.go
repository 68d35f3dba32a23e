//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// replicationWait bounds how long a copy may take to show at a
// destination: a poll of 1s, a retry back-off of 1s, on a loaded machine.
const replicationWait = 90 * time.Second

// TestReplication_ToReferenceRegistryAndSecondWharf: a wharf replicates a
// namespace to the CNCF reference registry and to a second wharf (under a
// prefix). A push appears at both with the same digest; a signature
// attached with oras follows its image; a deleted tag is deleted; an
// image pushed while both destinations are down reaches them once they
// are back (the event's retries); an image pushed before the rules
// existed is copied by a "reconcile now"; a repository deleted is deleted
// at both.
func TestReplication_ToReferenceRegistryAndSecondWharf(t *testing.T) {
	refRoot := t.TempDir()
	ref := startReference(t, refRoot)
	destAddr := freeLoopbackAddr(t)
	dest := startWharfAt(t, destAddr)
	// The destinations are on loopback, which rules may not name by default.
	src := startWharf(t, "--replication-backoff", "1s", "--allow-internal-destinations=true")

	before := pushRandom(t, src.Addr+"/team/old:v1")
	toRef := createReplicationRule(t, src, fmt.Sprintf(`{"url": "http://%s"}`, ref.Addr))
	toWharf := createReplicationRule(t, src, fmt.Sprintf(`{"url": %q, "dest_prefix": "site-b"}`, dest.URL))
	at := map[string]func(repoRef string) string{
		"reference": func(r string) string { return ref.Addr + "/" + r },
		"wharf":     func(r string) string { return destAddr + "/site-b/" + r },
	}

	// A push appears at both, with the same digest.
	v1img := pushRandom(t, src.Addr+"/team/app:v1")
	for where, addr := range at {
		waitForDigest(t, where, addr("team/app:v1"), v1img)
	}

	// A signature attached with oras follows its image.
	sigFile := filepath.Join(t.TempDir(), "sig.txt")
	if err := os.WriteFile(sigFile, []byte("signed by e2e"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := cmd("oras", "attach", "--plain-http", "--disable-path-validation", "--artifact-type", "application/vnd.e2e.signature",
		src.Addr+"/team/app:v1", sigFile+":text/plain").mustRun(t)
	t.Logf("oras attach: %s", out)
	sig := referrerDigest(t, src.Addr+"/team/app:v1")
	for where, addr := range at {
		waitFor(t, where+" has the signature", func() bool { return referrerDigest(t, addr("team/app:v1")) == sig })
	}

	// A deleted tag is deleted at both.
	if err := remote.Delete(mustRef(t, src.Addr+"/team/app:v1")); err != nil {
		t.Fatal(err)
	}
	for where, addr := range at {
		waitFor(t, "team/app:v1 deleted at "+where, func() bool {
			_, err := remote.Head(mustRef(t, addr("team/app:v1")))
			return err != nil
		})
	}

	// Both destinations down: a push waits, retried, until they are back.
	ref.stop(t)
	dest.stop(t)
	v2img := pushRandom(t, src.Addr+"/team/app:v2")
	waitFor(t, "a failed attempt in the rules' status", func() bool {
		return replicationStatus(t, src, toRef).LastError != "" && replicationStatus(t, src, toWharf).LastError != ""
	})
	ref = startReferenceAt(t, refRoot, ref.Addr)
	dest = startWharfAt(t, destAddr, "--data-dir", dest.DataDir)
	for where, addr := range at {
		waitForDigest(t, where, addr("team/app:v2"), v2img)
	}

	// What was pushed before the rules is copied by a reconcile.
	for _, id := range []int64{toRef, toWharf} {
		resp, err := http.Post(fmt.Sprintf("%s/v2/namespaces/team/replication/%d/reconcile", src.URL, id), "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("reconcile rule %d = %s", id, resp.Status)
		}
	}
	for where, addr := range at {
		waitForDigest(t, where, addr("team/old:v1"), before)
	}
	for _, id := range []int64{toRef, toWharf} {
		waitFor(t, fmt.Sprintf("rule %d caught up", id), func() bool {
			s := replicationStatus(t, src, id)
			return s.Pending == 0 && s.LastError == "" && s.LastOK != ""
		})
	}

	// A repository deleted (through the Hub API) goes at the destination
	// too: its manifests are deleted there.
	req, err := http.NewRequest(http.MethodDelete, src.URL+"/v2/repositories/team/old", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete repository team/old = %s", resp.Status)
	}
	for where, addr := range at {
		waitFor(t, "team/old's manifest deleted at "+where, func() bool {
			_, err := remote.Head(mustRef(t, addr("team/old@"+before.String())))
			return err != nil
		})
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushRandom pushes a small random image to ref and returns its digest.
func pushRandom(t *testing.T, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, _ := img.Digest()
	return d
}

// createReplicationRule creates a rule of namespace team through the API
// and returns its ID.
func createReplicationRule(t *testing.T, src *wharfServer, body string) int64 {
	t.Helper()
	resp, err := http.Post(src.URL+"/v2/namespaces/team/replication", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rule struct{ ID int64 }
	if err := json.NewDecoder(resp.Body).Decode(&rule); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create rule %s = %s %+v (%v)", body, resp.Status, rule, err)
	}
	return rule.ID
}

type replStatus struct {
	LastOK    string `json:"last_ok"`
	LastError string `json:"last_error"`
	Pending   int64  `json:"pending"`
}

func replicationStatus(t *testing.T, src *wharfServer, id int64) replStatus {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/v2/namespaces/team/replication/%d", src.URL, id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rule struct{ Status replStatus }
	if err := json.NewDecoder(resp.Body).Decode(&rule); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("rule %d = %s (%v)", id, resp.Status, err)
	}
	return rule.Status
}

// referrerDigest is the digest of the one referrer oras finds for ref
// ("" for none), through the referrers API or its tag fallback alike.
func referrerDigest(t *testing.T, ref string) string {
	t.Helper()
	out, err := cmd("oras", "discover", "--plain-http", "--format", "json", ref).run(t)
	if err != nil {
		return ""
	}
	var found struct {
		Referrers []struct{ Digest string } `json:"referrers"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(out), &found); err != nil {
		t.Fatalf("oras discover %s: %v\n%s", ref, err, out)
	}
	all := append(found.Referrers, found.Manifests...)
	if len(all) != 1 {
		return ""
	}
	return all[0].Digest
}

// waitForDigest waits until ref at a destination is want.
func waitForDigest(t *testing.T, where, ref string, want v1.Hash) {
	t.Helper()
	waitFor(t, ref+" at "+where, func() bool {
		d, err := remote.Head(mustRef(t, ref))
		return err == nil && d.Digest == want
	})
}

// waitFor polls ok until it holds, failing the test after replicationWait:
// the copies run in another process, whose progress the test can only
// watch.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(replicationWait)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(readyPoll * 4)
	}
}
