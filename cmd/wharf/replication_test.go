package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/registrytest"
	"github.com/wharf/wharf/internal/replicate"
)

// TestReplicationCommands lists a data directory's replication rules and
// shows one's status offline, beside the server that runs them.
func TestReplicationCommands(t *testing.T) {
	srv := registrytest.NewServer(t)
	id, err := srv.Replication.CreateRule(t.Context(), "team",
		replicate.RuleSpec{URL: "https://site-b.example", Repositories: "app*", DestPrefix: "a", Username: "robot", Password: "pw"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	srv.PushRandom(t, "team/app", "v1") // pending: no worker runs here
	run := offline(t, srv.DataDir)

	ls := run("replication", "ls")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^ID\s+REPOSITORIES\s+DESTINATION\s+PENDING\s+LAG\s+LAST RUN\s+LAST ERROR\n%d\s+team/app\*\s+https://site-b\.example/a\s+1\s+\S+\s+never\s*$`, id)).MatchString(ls) {
		t.Errorf("replication ls:\n%s", ls)
	}
	if out := run("replication", "ls", "other"); strings.Count(out, "\n") != 1 {
		t.Errorf("replication ls other (no rules):\n%s", out)
	}
	st := run("replication", "status", fmt.Sprint(id))
	for _, want := range []string{`namespace:\s+team`, `repositories:\s+team/app\*`, `destination:\s+https://site-b\.example/a`,
		`username:\s+robot \(password set\)`, `created:\s+\d{4}-\S+ by alice`, `last run:\s+never`, `pending:\s+1`, `failures:\s+0`} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(st) {
			t.Errorf("replication status lacks %s:\n%s", want, st)
		}
	}
	if _, _, err := runRootIn(t.Context(), "", "replication", "status", "999", "--data-dir", srv.DataDir); err == nil || !strings.Contains(err.Error(), "no such replication rule") {
		t.Errorf("status of no rule: %v", err)
	}
}
