package server_test

import (
	"net/http"
	"testing"
)

// TestAuth_MountWithoutSource: a mount without from= mounts when the
// caller may pull some repository holding the blob, whichever way it
// authenticates, and otherwise becomes a plain upload session that
// reveals nothing: the blob stays unknown in the target repository.
func TestAuth_MountWithoutSource(t *testing.T) {
	w := newAuthWorld(t)
	narrow := w.tokenFor(t, "alice", userPassword, "repository:alice/new:pull,push")
	for _, tc := range []struct {
		name, blobOf, user, auth, target string
		want                             int
	}{
		{"own private repository", "alice/priv", "alice", "basic", "alice/new", http.StatusCreated},
		{"own repository, token scoped to the target only", "alice/priv", "alice", "bearer", "alice/new", http.StatusCreated},
		{"another namespace's public repository", "acme/pub", "alice", "basic", "alice/new", http.StatusCreated},
		{"org private repository, read member", "acme/priv", "carol", "basic", "carol/new", http.StatusCreated},
		{"org private repository, not a member", "acme/priv", "alice", "basic", "alice/new", http.StatusAccepted},
		{"another user's private repository", "alice/priv", "bob", "basic", "bob/new", http.StatusAccepted},
		{"admin", "acme/priv", "admin", "basic", "admin/new", http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := w.layer[tc.blobOf]
			h := basic(tc.user, userPassword)
			switch {
			case tc.auth == "bearer":
				h = bearerAuth(narrow)
			case tc.user == "admin":
				h = basic("admin", adminPassword)
			}
			got := w.do(t, "POST", "/v2/"+tc.target+"/blobs/uploads/?mount="+d.String(), h, nil)
			check(t, "mount", got, "POST", tc.want, "")
			head := w.do(t, "HEAD", "/v2/"+tc.target+"/blobs/"+d.String(), basic("admin", adminPassword), nil)
			switch tc.want {
			case http.StatusCreated:
				if loc := got.header.Get("Location"); loc != "/v2/"+tc.target+"/blobs/"+d.String() {
					t.Errorf("Location %q", loc)
				}
				check(t, "HEAD of the mounted blob", head, "HEAD", http.StatusOK, "")
			case http.StatusAccepted:
				if got.header.Get("Docker-Upload-UUID") == "" {
					t.Errorf("no upload session: %v", got.header)
				}
				check(t, "HEAD of the blob that was not mounted", head, "HEAD", http.StatusNotFound, "")
			}
		})
	}
}
