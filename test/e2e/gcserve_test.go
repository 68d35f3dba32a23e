//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type gcRunsPage struct {
	Count   int `json:"count"`
	Results []struct {
		ID             int64  `json:"id"`
		Trigger        string `json:"trigger"`
		Outcome        string `json:"outcome"`
		StartedAt      string `json:"started_at"`
		BytesReclaimed int64  `json:"bytes_reclaimed"`
	} `json:"results"`
}

func gcRuns(t *testing.T, srv *wharfServer) gcRunsPage {
	t.Helper()
	resp, err := http.Get(srv.URL + "/v2/admin/gc/runs?page_size=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page gcRunsPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/admin/gc/runs = %d, %v", resp.StatusCode, err)
	}
	return page
}

// TestGCInServe: `wharf serve --gc-interval 1s` collects on its own while
// images are pushed and deleted. Once a scheduled run has started past
// the grace period after the last delete, every image still tagged is
// whole for crane, the deleted ones are gone, and the runs' reports say
// they reclaimed space.
func TestGCInServe(t *testing.T) {
	crane := requireTool(t, "crane")
	srv := startWharf(t, "--gc-interval", "1s", "--gc-grace", "1s", "--gc-untagged-age", "1s")
	repo := srv.Addr + "/team/app"
	var kept, dropped []string
	for i := range 12 {
		img, err := random.Image(32<<10, 2)
		if err != nil {
			t.Fatal(err)
		}
		tag := fmt.Sprintf("v%d", i)
		ref, err := name.ParseReference(repo+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			cmd(crane, "delete", "--insecure", repo+"@"+d.String()).mustRun(t)
			dropped = append(dropped, repo+"@"+d.String())
		} else {
			kept = append(kept, repo+":"+tag)
		}
		time.Sleep(200 * time.Millisecond) // so that scheduled runs fall between the pushes
	}
	lastDelete := time.Now()

	// Wait for a scheduled run that started after the grace had passed
	// for the last delete, and ended.
	deadline := time.Now().Add(30 * time.Second)
	for {
		page := gcRuns(t, srv)
		if len(page.Results) > 0 {
			r := page.Results[0]
			started, _ := time.Parse(time.RFC3339Nano, r.StartedAt)
			if r.Outcome != "running" && started.After(lastDelete.Add(time.Second)) {
				var reclaimed int64
				for _, r := range page.Results {
					if r.Trigger != "schedule" || r.Outcome != "ok" {
						t.Errorf("run %d: %s %s", r.ID, r.Trigger, r.Outcome)
					}
					reclaimed += r.BytesReclaimed
				}
				t.Logf("%d scheduled runs reclaimed %d bytes", page.Count, reclaimed)
				if page.Count < 3 || reclaimed < 4*2*(32<<10) {
					t.Errorf("%d runs reclaimed %d bytes; want several, and at least the 4 deleted images' layers", page.Count, reclaimed)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled run after the last delete within 30s:\n%s", srv.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, ref := range kept {
		cmd(crane, "validate", "--insecure", "--remote", ref).mustRun(t)
	}
	for _, ref := range dropped {
		if out, err := cmd(crane, "manifest", "--insecure", ref).run(t); err == nil {
			t.Errorf("deleted image %s is still there:\n%s", ref, out)
		}
	}
}
