package internal_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wharf/wharf/"

// forbidden lists, per package prefix, imports that would break the one-way
// flow HTTP → distribution → registry → metadata/blobstore.
var forbidden = map[string][]string{
	"internal/registry":     {"net/http", "database/sql", module + "internal/distribution", module + "internal/server", module + "internal/metadata/sqldb", module + "internal/blobstore/fs"},
	"internal/metadata":     {"net/http", module + "internal/registry", module + "internal/distribution", module + "internal/server", module + "internal/blobstore"},
	"internal/blobstore":    {"net/http", "database/sql", module + "internal/registry", module + "internal/distribution", module + "internal/server", module + "internal/metadata"},
	"internal/distribution": {"database/sql", module + "internal/server", module + "internal/metadata/sqldb", module + "internal/blobstore/fs"},
	"internal/server":       {"database/sql"},
	"internal/auth":         {"net/http", "database/sql", module + "internal/metadata/sqldb", module + "internal/registry", module + "internal/distribution", module + "internal/server"},
	"internal/config":       {"net/http", module + "internal/server", module + "internal/registry"},
}

// TestImportDirections fails when a package imports what its layer must
// not, directly: stores never reach up, the domain never speaks HTTP or
// SQL, handlers never reach past the domain.
func TestImportDirections(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module)
		for prefix, bad := range forbidden {
			if rel != prefix && !strings.HasPrefix(rel, prefix+"/") {
				continue
			}
			checked++
			for _, imp := range p.Imports {
				for _, b := range bad {
					if imp == b || strings.HasPrefix(imp, b+"/") {
						t.Errorf("%s imports %s: forbidden for %s (see docs/architecture.md)", p.ImportPath, imp, prefix)
					}
				}
			}
		}
	}
	if checked < 8 {
		t.Fatalf("checked only %d packages; is the module path right?", checked)
	}
}
