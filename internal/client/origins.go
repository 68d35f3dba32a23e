package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
)

// origins remembers, per registry host, a repository each blob was last
// pulled from or pushed to, so that a later push to another repository of
// the same registry can ask for a cross-repository mount instead of
// sending the bytes. It lives in <store root>/wharf/origins.json, beside
// (not inside) the OCI layout.
type origins struct {
	path string
}

// originsFile is {"host": {"sha256:…": "repo/path"}}.
type originsFile map[string]map[string]string

func newOrigins(root string) origins {
	return origins{path: filepath.Join(root, "wharf", "origins.json")}
}

func (o origins) read() (originsFile, error) {
	b, err := os.ReadFile(o.path)
	if errors.Is(err, fs.ErrNotExist) {
		return originsFile{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := originsFile{}
	if err := json.Unmarshal(b, &m); err != nil {
		// A damaged hint file only costs mounts; start afresh.
		return originsFile{}, nil
	}
	return m, nil
}

// lookup returns the remembered repository of each digest at host.
func (o origins) lookup(host string) map[string]string {
	m, err := o.read()
	if err != nil {
		return nil
	}
	return m[host]
}

// record notes that the blobs are in repo at host. Failing to record is
// not an error worth failing a push or pull for; it is returned for tests.
func (o origins) record(host, repo string, digests []string) error {
	if len(digests) == 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(o.path), 0o755); err != nil {
		return err
	}
	lock := flock.New(o.path + ".lock")
	if err := lock.Lock(); err != nil {
		return err
	}
	defer lock.Unlock()
	m, err := o.read()
	if err != nil {
		return err
	}
	if m[host] == nil {
		m[host] = map[string]string{}
	}
	for _, d := range digests {
		m[host][d] = repo
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := o.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.path); err != nil {
		return fmt.Errorf("record blob origins: %w", err)
	}
	return nil
}
