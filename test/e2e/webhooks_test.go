//go:build e2e

package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// hookReceiver records the pushes delivered to it, checking each
// signature. It can be down, and it can hold the next delivery until
// released, so that a test can kill wharf while a delivery is under way.
type hookReceiver struct {
	t      *testing.T
	secret string

	mu       sync.Mutex
	acked    map[string][]string // repository → tags, in the order first answered 200
	ids      map[string]int      // webhook-id → times received
	done     map[string]bool     // webhook-ids answered 200
	dups     int                 // deliveries answered 200 again
	down     bool                // answer 503
	holdNext bool
	held     chan string   // the held delivery's webhook-id
	release  chan struct{} // closed to let the held delivery end
	changed  chan struct{} // receives after every delivery
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(rc.secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		rc.t.Errorf("delivery %s: signature %q does not verify", id, r.Header.Get("webhook-signature"))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env struct {
		Events []struct {
			Action string
			Target struct{ Repository, Tag string }
		}
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Events) != 1 {
		rc.t.Errorf("delivery %s: body %s: %v", id, body, err)
		return
	}
	rc.mu.Lock()
	if rc.down {
		rc.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.ids[id]++
	hold := rc.holdNext
	rc.holdNext = false
	rc.mu.Unlock()
	if hold {
		rc.held <- id
		select {
		case <-rc.release:
		case <-r.Context().Done():
		}
		return // never answered: the sender died meanwhile
	}
	rc.mu.Lock()
	// At least once: wharf may have been killed after this receiver
	// answered and before it recorded the answer; the same webhook-id
	// then comes again, which a receiver drops.
	if tg := env.Events[0].Target; !rc.done[id] {
		rc.acked[tg.Repository] = append(rc.acked[tg.Repository], tg.Tag)
		rc.done[id] = true
	} else {
		rc.dups++
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	select {
	case rc.changed <- struct{}{}:
	default:
	}
}

// TestWebhooks_KilledDuringDeliveryLosesNoEvent: wharf is killed with
// SIGKILL while a receiver holds a delivery; started again on the same
// data directory, it delivers every push at least once, the held one
// again, in order per repository.
func TestWebhooks_KilledDuringDeliveryLosesNoEvent(t *testing.T) {
	rc := &hookReceiver{t: t, acked: map[string][]string{}, ids: map[string]int{}, done: map[string]bool{}, down: true,
		held: make(chan string, 1), release: make(chan struct{}), changed: make(chan struct{}, 1)}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	defer close(rc.release)

	addr := freeLoopbackAddr(t)
	// The held delivery must still be under way when wharf is killed:
	// the timeout leaves the test 5s for that, and is what the restarted
	// wharf waits (plus 5s) before it takes the lapsed claim over.
	// The receiver is on loopback, which hooks may not name by default.
	args := []string{"--webhook-poll", "100ms", "--webhook-backoff", "100ms", "--webhook-timeout", "5s", "--allow-internal-destinations=true"}
	srv := startWharfAt(t, addr, args...)
	body := fmt.Sprintf(`{"url": %q, "events": ["push"], "format": "cncf"}`, hs.URL+"/hook")
	resp, err := http.Post(srv.URL+"/v2/namespaces/team/webhooks", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var hook struct{ Secrets []string }
	_ = json.NewDecoder(resp.Body).Decode(&hook)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(hook.Secrets) != 1 {
		t.Fatalf("create hook = %d %+v", resp.StatusCode, hook)
	}
	rc.mu.Lock()
	rc.secret = hook.Secrets[0]
	rc.mu.Unlock()

	want := map[string][]string{}
	for i := range 4 {
		for _, repo := range []string{"team/app", "team/web"} {
			img, err := random.Image(256, 1)
			if err != nil {
				t.Fatal(err)
			}
			tag := fmt.Sprint("v", i)
			ref, err := name.ParseReference(addr + "/" + repo + ":" + tag)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img); err != nil {
				t.Fatal(err)
			}
			want[repo] = append(want[repo], tag)
		}
	}
	// Up again, and holding the first delivery that comes.
	rc.mu.Lock()
	rc.down, rc.holdNext = false, true
	rc.mu.Unlock()
	var heldID string
	select {
	case heldID = <-rc.held:
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery reached the receiver\n--- wharf log ---\n%s", srv.logTail())
	}
	if err := srv.kill(); err != nil {
		t.Fatal(err)
	}
	// The same data directory: the later --data-dir wins.
	srv = startWharfAt(t, addr, append(args, "--data-dir", srv.DataDir)...)

	deadline := time.After(60 * time.Second)
	for {
		rc.mu.Lock()
		done := len(rc.acked["team/app"]) >= 4 && len(rc.acked["team/web"]) >= 4
		rc.mu.Unlock()
		if done {
			break
		}
		select {
		case <-rc.changed:
		case <-time.After(time.Second): // look again: a signal may have been dropped
		case <-deadline:
			rc.mu.Lock()
			defer rc.mu.Unlock()
			t.Fatalf("after the restart the receiver has %v, want %v\n--- wharf log ---\n%s", rc.acked, want, srv.logTail())
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for repo, tags := range want {
		if fmt.Sprint(rc.acked[repo]) != fmt.Sprint(tags) {
			t.Errorf("%s delivered %v, want %v in order", repo, rc.acked[repo], tags)
		}
	}
	if rc.ids[heldID] < 2 {
		t.Errorf("the delivery held while wharf was killed (%s) came %d times, want again after the restart", heldID, rc.ids[heldID])
	}
	t.Logf("deliveries received: %d distinct, the held one %d times, %d answered twice", len(rc.ids), rc.ids[heldID], rc.dups)
}
