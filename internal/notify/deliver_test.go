package notify_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/config"
	"github.com/wharf/wharf/internal/registrytest"
)

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a loopback webhook receiver whose answer a test sets.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{status: http.StatusNoContent}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) answer(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = status
}

// take returns what the receiver got since the last call.
func (rc *receiver) take() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.got
	rc.got = nil
	return out
}

// verify checks a delivery as a receiver would, written from the
// Standard Webhooks specification rather than with notify's code: one of
// the space-separated v1 signatures is the HMAC-SHA256, keyed with the
// base64 after "whsec_", of "id.timestamp.body".
func verify(t *testing.T, secret string, r received, now time.Time) {
	t.Helper()
	id, ts, sigs := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.header.Get("webhook-signature")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		t.Fatalf("delivery without webhook-id (%q) or webhook-timestamp (%q)", id, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d < -5*time.Minute || d > 5*time.Minute {
		t.Fatalf("webhook-timestamp %s is %v from now", ts, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(r.body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return
		}
	}
	t.Fatalf("no signature in %q verifies with %s", sigs, secret)
}

type world struct {
	srv   *registrytest.Server
	clock *clocktest.Clock
	rc    *receiver
}

func newWorld(t *testing.T, cfg func(*config.Config)) *world {
	clock := clocktest.New()
	opts := []registrytest.Option{registrytest.WithClock(clock.Now)}
	if cfg != nil {
		opts = append(opts, registrytest.WithConfig(cfg))
	}
	return &world{srv: registrytest.NewServer(t, opts...), clock: clock, rc: newReceiver(t)}
}

// api calls the JSON API and decodes its answer into out (if not nil).
func (w *world) api(t *testing.T, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, w.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, b, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

type hook struct {
	ID      int64    `json:"id"`
	Secrets []string `json:"secrets"`
}

func (w *world) createHook(t *testing.T, ns string, spec map[string]any) hook {
	t.Helper()
	spec["url"] = w.rc.URL + "/hook"
	var h hook
	w.api(t, http.MethodPost, "/v2/namespaces/"+ns+"/webhooks", spec, http.StatusCreated, &h)
	if len(h.Secrets) != 1 || !strings.HasPrefix(h.Secrets[0], "whsec_") {
		t.Fatalf("created hook's secrets = %q, want one whsec_", h.Secrets)
	}
	return h
}

func (w *world) push(t *testing.T, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(w.srv.URL)
	r, err := name.ParseReference(u.Host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

// deliver runs delivery rounds until none claims anything.
func (w *world) deliver(t *testing.T) {
	t.Helper()
	for range 100 {
		n, err := w.srv.Webhooks.DeliverDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("deliveries never ran out")
}

func TestDelivery_SignedInEachFormatToALoopbackReceiver(t *testing.T) {
	for _, format := range []string{"cncf", "dockerhub", "cloudevents"} {
		t.Run(format, func(t *testing.T) {
			w := newWorld(t, func(c *config.Config) { c.Webhooks.RegistryURL = "https://registry.example" })
			h := w.createHook(t, "team", map[string]any{"format": format, "events": []string{"push"}})
			d := w.push(t, "team/app:v1")
			w.push(t, "other/app:v1") // another namespace: not delivered
			w.deliver(t)
			got := w.rc.take()
			if len(got) != 1 {
				t.Fatalf("receiver got %d deliveries, want 1", len(got))
			}
			verify(t, h.Secrets[0], got[0], w.clock.Now())
			var body map[string]any
			if err := json.Unmarshal(got[0].body, &body); err != nil {
				t.Fatal(err)
			}
			ct := got[0].header.Get("Content-Type")
			var digest, tag, repo any
			switch format {
			case "cncf":
				ev := body["events"].([]any)[0].(map[string]any)
				target := ev["target"].(map[string]any)
				digest, tag, repo = target["digest"], target["tag"], target["repository"]
				if ev["action"] != "push" || ev["id"] != got[0].header.Get("webhook-id") ||
					target["url"] != "https://registry.example/v2/team/app/manifests/"+d.String() ||
					ct != "application/vnd.docker.distribution.events.v1+json" {
					t.Errorf("envelope = %s (%s)", got[0].body, ct)
				}
			case "dockerhub":
				pd, repository := body["push_data"].(map[string]any), body["repository"].(map[string]any)
				digest, tag, repo = body["digest"], pd["tag"], repository["namespace"].(string)+"/"+repository["name"].(string)
				if repository["repo_name"] != "registry.example/team/app" {
					t.Errorf("repo_name = %v", repository["repo_name"])
				}
			case "cloudevents":
				data := body["data"].(map[string]any)
				digest, tag, repo = data["digest"], data["tag"], data["repository"]
				if body["specversion"] != "1.0" || body["type"] != "io.wharf.image.push" || body["subject"] != "team/app:v1" ||
					ct != "application/cloudevents+json" {
					t.Errorf("event = %s (%s)", got[0].body, ct)
				}
			}
			if digest != d.String() || tag != "v1" || repo != "team/app" {
				t.Errorf("payload names %v %v:%v, want team/app:v1 %s", digest, repo, tag, d)
			}
		})
	}
}

func TestDelivery_RotationSignsWithBothSecrets(t *testing.T) {
	w := newWorld(t, nil)
	old := w.createHook(t, "team", map[string]any{})
	var rotated hook
	w.api(t, http.MethodPost, fmt.Sprintf("/v2/namespaces/team/webhooks/%d/rotate", old.ID), nil, http.StatusOK, &rotated)
	if len(rotated.Secrets) != 2 || rotated.Secrets[1] != old.Secrets[0] {
		t.Fatalf("secrets after rotate = %q, want a new one then %q", rotated.Secrets, old.Secrets[0])
	}
	w.push(t, "team/app:v1")
	w.deliver(t)
	got := w.rc.take()
	if len(got) != 1 {
		t.Fatalf("receiver got %d deliveries, want 1", len(got))
	}
	verify(t, old.Secrets[0], got[0], w.clock.Now())
	verify(t, rotated.Secrets[0], got[0], w.clock.Now())

	var done hook
	w.api(t, http.MethodDelete, fmt.Sprintf("/v2/namespaces/team/webhooks/%d/rotate", old.ID), nil, http.StatusOK, &done)
	if len(done.Secrets) != 1 || done.Secrets[0] != rotated.Secrets[0] {
		t.Fatalf("secrets after the rotation = %q, want %q", done.Secrets, rotated.Secrets[:1])
	}
}

// tagsOf reads repository:tag of each CNCF delivery.
func tagsOf(t *testing.T, got []received) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range got {
		var env struct {
			Events []struct {
				Target struct{ Repository, Tag string }
			}
		}
		if err := json.Unmarshal(r.body, &env); err != nil || len(env.Events) != 1 {
			t.Fatalf("body %s: %v", r.body, err)
		}
		tg := env.Events[0].Target
		out[tg.Repository] = append(out[tg.Repository], tg.Tag)
	}
	return out
}

func TestDelivery_ReceiverDownGetsEverythingAfterwardsInOrder(t *testing.T) {
	w := newWorld(t, func(c *config.Config) { c.Webhooks.Backoff = time.Second; c.Webhooks.MaxAttempts = 50 })
	w.createHook(t, "team", map[string]any{"events": []string{"push"}})
	w.rc.answer(http.StatusServiceUnavailable)
	var want = map[string][]string{}
	for i := range 4 {
		for _, repo := range []string{"team/a", "team/b"} {
			tag := fmt.Sprint("v", i)
			w.push(t, repo+":"+tag)
			want[repo] = append(want[repo], tag)
		}
	}
	// Down for a while: each round tries the first of each repository
	// only, and backs off.
	for range 5 {
		w.deliver(t)
		w.clock.Advance(time.Minute)
	}
	if down := tagsOf(t, w.rc.take()); len(down["team/a"]) < 5 || len(down["team/b"]) < 5 {
		t.Fatalf("while down the receiver was tried %v, want the first tags retried", down)
	} else {
		for repo, tags := range down {
			for _, tag := range tags {
				if tag != "v0" {
					t.Fatalf("while down %s:%s was sent before v0 was delivered", repo, tag)
				}
			}
		}
	}
	w.rc.answer(http.StatusOK)
	w.clock.Advance(time.Hour)
	w.deliver(t)
	got := tagsOf(t, w.rc.take())
	for repo, tags := range want {
		if fmt.Sprint(got[repo]) != fmt.Sprint(tags) {
			t.Errorf("after the receiver came back, %s got %v, want %v in order", repo, got[repo], tags)
		}
	}
}

func TestDelivery_DeadLetterIsRedeliveredThroughTheAPI(t *testing.T) {
	w := newWorld(t, func(c *config.Config) { c.Webhooks.Backoff = time.Second; c.Webhooks.MaxAttempts = 2 })
	h := w.createHook(t, "team", map[string]any{"events": []string{"push", "delete"}, "format": "cloudevents"})
	w.rc.answer(http.StatusInternalServerError)
	w.push(t, "team/app:v1")
	w.deliver(t)
	w.clock.Advance(time.Minute)
	w.deliver(t)
	if n := len(w.rc.take()); n != 2 {
		t.Fatalf("receiver was tried %d times, want 2 (max_attempts)", n)
	}
	w.clock.Advance(time.Hour)
	w.deliver(t)
	if n := len(w.rc.take()); n != 0 {
		t.Fatalf("a dead delivery was tried again %d times", n)
	}
	var dead struct {
		Results []struct {
			ID        int64  `json:"id"`
			State     string `json:"state"`
			Attempts  int    `json:"attempts"`
			LastError string `json:"last_error"`
		} `json:"results"`
	}
	base := fmt.Sprintf("/v2/namespaces/team/webhooks/%d/deliveries", h.ID)
	w.api(t, http.MethodGet, base+"?state=dead", nil, http.StatusOK, &dead)
	if len(dead.Results) != 1 || dead.Results[0].Attempts != 2 || !strings.Contains(dead.Results[0].LastError, "500") {
		t.Fatalf("dead letters = %+v, want the push after 2 attempts answered 500", dead.Results)
	}
	w.api(t, http.MethodPost, fmt.Sprintf("%s/%d/redeliver", base, dead.Results[0].ID), nil, http.StatusAccepted, nil)
	w.api(t, http.MethodPost, fmt.Sprintf("%s/%d/redeliver", base, dead.Results[0].ID), nil, http.StatusNotFound, nil)
	w.rc.answer(http.StatusOK)
	w.deliver(t)
	got := w.rc.take()
	if len(got) != 1 {
		t.Fatalf("after redeliver the receiver got %d, want 1", len(got))
	}
	verify(t, h.Secrets[0], got[0], w.clock.Now())

	resp, err := http.Get(w.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, line := range []string{`wharf_webhook_deliveries_total{outcome="failed"} 1`,
		`wharf_webhook_deliveries_total{outcome="dead"} 1`, `wharf_webhook_deliveries_total{outcome="delivered"} 1`} {
		if !strings.Contains(string(metrics), line+"\n") {
			t.Errorf("/metrics has no line %s", line)
		}
	}
}
