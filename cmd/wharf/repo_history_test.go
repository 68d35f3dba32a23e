package main

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wharf/wharf/internal/client"
	"github.com/wharf/wharf/internal/registrytest"
)

// TestRepoHistory_Transcript moves a tag, deletes it and puts it back
// with `wharf repo history` and `wharf repo rollback` against an
// in-process wharf, then makes the tag immutable and sees rollback
// refused with wharf's message.
func TestRepoHistory_Transcript(t *testing.T) {
	srv := registrytest.NewServer(t, registrytest.WithAuth("s3cret-admin"))
	host := strings.TrimPrefix(srv.URL, "http://")
	wharfEnv(t)
	tag := host + "/admin/app:latest"
	creds := &authn.Basic{Username: "admin", Password: "s3cret-admin"}
	push := func() string {
		t.Helper()
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		r, err := name.ParseReference(tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img, remote.WithContext(t.Context()), remote.WithAuth(creds)); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return d.String()
	}
	a, b := push(), push()
	// A repository the caller may not read is not found, as on Docker Hub.
	if _, _, err := wharf(t, nil, "repo", "history", tag); !errors.Is(err, client.ErrNameUnknown) {
		t.Errorf("history before login: err = %v, want ErrNameUnknown", err)
	}
	mustWharfIn(t, []byte("s3cret-admin\n"), "login", host, "--username", "admin", "--password-stdin")
	rows := func() [][]string {
		t.Helper()
		out := mustWharf(t, "repo", "history", tag)
		t.Logf("$ wharf repo history %s\n%s", tag, out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if got := strings.Join(strings.Fields(lines[0]), " "); got != "WHEN (UTC) HOW BY FROM TO" {
			t.Fatalf("history header %q", got)
		}
		var out2 [][]string
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			out2 = append(out2, f[2:]) // after the date and time
		}
		return out2
	}
	wantRows := func(step string, want ...[]string) {
		t.Helper()
		got := rows()
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", step, len(got), len(want))
		}
		for i := range want {
			if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
				t.Errorf("%s: row %d = %v, want %v", step, i, got[i], want[i])
			}
		}
	}
	wantRows("after two pushes", []string{"push", "admin", a, b}, []string{"push", "admin", "-", a})

	out := mustWharf(t, "repo", "rollback", tag, "--steps", "1")
	if !strings.HasSuffix(out, "admin/app:latest now points to "+a+"\n") {
		t.Errorf("rollback --steps 1 printed %q", out)
	}
	wantRows("after the rollback", []string{"rollback", "admin", b, a}, []string{"push", "admin", a, b}, []string{"push", "admin", "-", a})

	mustWharf(t, "repo", "rm", tag)
	mustWharf(t, "repo", "rollback", tag, "--steps", "1") // the deleted tag comes back
	mustWharf(t, "repo", "rollback", tag, "--to", b)
	wantRows("after delete, restore and --to",
		[]string{"rollback", "admin", a, b}, []string{"rollback", "admin", "-", a}, []string{"delete", "admin", a, "-"},
		[]string{"rollback", "admin", b, a}, []string{"push", "admin", a, b}, []string{"push", "admin", "-", a})
	if out := mustWharf(t, "repo", "history", "-n", "1", tag); strings.Count(out, "\n") != 2 {
		t.Errorf("history -n 1 printed %q, want the header and one row", out)
	}

	// An immutable tag is not rolled back, and the message says why.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v2/namespaces/admin/policies", bytes.NewReader([]byte(`{"immutable-tags":"latest"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", "s3cret-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("set immutable-tags: %v %v", resp, err)
	}
	resp.Body.Close()
	_, _, err = wharf(t, nil, "repo", "rollback", tag, "--to", a)
	if !errors.Is(err, client.ErrDenied) || !strings.Contains(err.Error(), `tag "latest" is immutable in admin/app (policy immutable-tags=latest, set on admin/*)`) {
		t.Errorf("rollback of an immutable tag: err = %v, want DENIED naming the rule", err)
	}
	for _, bad := range [][]string{
		{"repo", "rollback", tag},
		{"repo", "rollback", tag, "--steps", "9"},
		{"repo", "rollback", tag, "--to", "sha256:nope"},
		{"repo", "history", host + "/admin/app"},
		{"repo", "history", host + "/a/b/c:latest"},
	} {
		if _, _, err := wharf(t, nil, bad...); err == nil {
			t.Errorf("wharf %s succeeded, want an error", strings.Join(bad, " "))
		}
	}
}
