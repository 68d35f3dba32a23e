package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/clocktest"
	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
)

// TestMetrics_Replication: /metrics has each rule's attempts by outcome
// and the bytes this process sent, and the backlog and lag of every
// rule as the database has them.
func TestMetrics_Replication(t *testing.T) {
	ctx := t.Context()
	clock := clocktest.New()
	src, dest := registrytest.NewServer(t, registrytest.WithClock(clock.Now)), registrytest.NewServer(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	ok, err := src.Replication.CreateRule(ctx, "team", replicate.RuleSpec{URL: dest.URL}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := src.Replication.CreateRule(ctx, "team", replicate.RuleSpec{URL: down.URL}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(strings.TrimPrefix(src.URL, "http://")+"/team/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	// What a copy to an empty destination sends: each blob and the manifest.
	var sent int64
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		sent += n
	}
	cfg, _ := img.RawConfigFile()
	m, _ := img.RawManifest()
	sent += int64(len(cfg) + len(m))

	if n, err := src.Replication.ReplicateDue(ctx); err != nil || n != 2 {
		t.Fatalf("ReplicateDue = %d, %v; want both rules' copies", n, err)
	}
	clock.Advance(90 * time.Second)
	_, body := get(t, src.URL+"/metrics")
	for _, want := range []string{
		series("wharf_replication_tasks_total", ok, `,outcome="done"`, 1),
		series("wharf_replication_tasks_total", ok, `,outcome="failed"`, 0),
		series("wharf_replication_tasks_total", bad, `,outcome="done"`, 0),
		series("wharf_replication_tasks_total", bad, `,outcome="failed"`, 1),
		series("wharf_replication_sent_bytes_total", ok, "", sent),
		series("wharf_replication_pending", ok, "", 0),
		series("wharf_replication_pending", bad, "", 1),
		series("wharf_replication_lag_seconds", ok, "", 0),
		series("wharf_replication_lag_seconds", bad, "", 90),
	} {
		if !strings.Contains(body, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func series(metric string, rule int64, labels string, v int64) string {
	return fmt.Sprintf(`%s{namespace="team"%s,rule="%d"} %d`, metric, labels, rule, v)
}
