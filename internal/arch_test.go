package internal_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/wharf/wharf/"

// rule forbids packages at or under from to import packages at or under
// to. Paths starting internal/ or cmd/ are in this module; others are the
// standard library. A transitive rule also forbids reaching to through any
// chain of imports; a direct rule forbids only the import itself, for
// edges that are fine one layer down (server wires sqldb, which uses
// database/sql).
type rule struct {
	from, to   string
	transitive bool
	why        string
}

// allowedVia lists, per transitive rule (from → to), the libraries through
// which it may be reached: an object-store client speaks HTTP to the
// store, which is not the store speaking HTTP to wharf's callers.
var allowedVia = map[[2]string][]string{
	{"internal/blobstore", "net/http"}: {"github.com/minio/minio-go/v7"},
}

// rules is DESIGN.md's "Arrows point one way" as a list of forbidden edges.
var rules = []rule{
	// Stores and the domain never speak HTTP.
	{"internal/registry", "net/http", true, "the domain never speaks HTTP"},
	{"internal/metadata", "net/http", true, "a store never speaks HTTP"},
	{"internal/blobstore", "net/http", true, "a store never speaks HTTP"},

	// The domain never reaches up, nor past its store interfaces.
	{"internal/registry", "internal/distribution", true, "the domain never imports a handler"},
	{"internal/registry", "internal/server", true, "the domain never imports the server"},
	{"internal/registry", "internal/web", true, "the domain never imports a handler"},
	{"internal/registry", "internal/metadata/sqldb", true, "the domain sees the metadata interface; server picks the driver"},
	{"internal/registry", "internal/blobstore/fs", true, "the domain sees the blobstore interface; server picks the driver"},

	// Stores never reach up, and know nothing of each other.
	{"internal/metadata", "internal/registry", true, "a store never imports the domain"},
	{"internal/metadata", "internal/distribution", true, "a store never imports a handler"},
	{"internal/metadata", "internal/server", true, "a store never imports the server"},
	{"internal/metadata", "internal/web", true, "a store never imports a handler"},
	{"internal/metadata", "internal/blobstore", true, "metadata and blobs are independent stores"},
	{"internal/blobstore", "internal/registry", true, "a store never imports the domain"},
	{"internal/blobstore", "internal/distribution", true, "a store never imports a handler"},
	{"internal/blobstore", "internal/server", true, "a store never imports the server"},
	{"internal/blobstore", "internal/web", true, "a store never imports a handler"},
	{"internal/blobstore", "internal/metadata", true, "metadata and blobs are independent stores"},

	// Handlers go through the domain.
	{"internal/distribution", "internal/server", true, "handlers never import the server that mounts them"},
	{"internal/distribution", "internal/metadata/sqldb", true, "handlers go through registry, never a store driver"},
	{"internal/distribution", "internal/blobstore/fs", true, "handlers go through registry, never a store driver"},
	{"internal/distribution", "internal/metadata", false, "handlers go through registry, never a store"},
	{"internal/distribution", "internal/blobstore", false, "handlers go through registry, never a store"},
	{"internal/web", "internal/metadata", false, "the UI goes through registry, never a store"},
	{"internal/web", "internal/blobstore", false, "the UI goes through registry, never a store"},
	{"internal/web", "internal/metadata/sqldb", true, "the UI goes through registry, never a store driver"},
	{"internal/web", "internal/distribution", true, "the UI sits beside the OCI handlers, not on them"},
	{"internal/web", "internal/server", true, "handlers never import the server that mounts them"},

	// No SQL above metadata.
	{"internal/registry", "database/sql", true, "no SQL above metadata"},
	{"internal/distribution", "database/sql", true, "no SQL above metadata"},
	{"internal/web", "database/sql", true, "no SQL above metadata"},
	{"internal/server", "database/sql", false, "no SQL above metadata"},
	{"internal/blobstore", "database/sql", true, "blobs are not in SQL"},

	// An import goes in as a push does: through the registry service.
	{"internal/importer", "database/sql", true, "an import writes through registry, never SQL"},
	{"internal/importer", "internal/metadata/sqldb", true, "an import writes through registry, never a store driver"},
	{"internal/importer", "internal/blobstore", false, "an import writes through registry, never a store"},
	{"internal/importer", "net/http", true, "an import reads files and calls the domain; it never speaks HTTP"},

	// A migration copies below the registry service (it keeps recorded
	// times and pushers), but through the store interfaces, never SQL.
	{"internal/migrate", "database/sql", true, "a migration copies through metadata.Bulk, never SQL"},
	{"internal/migrate", "internal/metadata/sqldb", true, "a migration sees the store interfaces; server picks the drivers"},
	{"internal/migrate", "internal/blobstore/fs", true, "a migration sees the store interfaces; server picks the drivers"},
	{"internal/migrate", "internal/blobstore/s3", true, "a migration sees the store interfaces; server picks the drivers"},
	{"internal/migrate", "internal/registry", true, "a migration copies stores, not pushes"},
	{"internal/migrate", "net/http", true, "a migration never speaks HTTP"},

	// Webhooks speak HTTP only as a client, and reach the outbox through
	// its store interface.
	{"internal/notify", "database/sql", true, "webhooks reach the outbox through metadata.WebhookStore, never SQL"},
	{"internal/notify", "internal/metadata/sqldb", true, "webhooks see the store interface; server picks the driver"},
	{"internal/notify", "internal/server", true, "webhooks never import the server"},
	{"internal/notify", "internal/web", true, "webhooks never import a handler"},
	{"internal/notify", "internal/distribution", true, "webhooks never import a handler"},

	// Auth decides who and may they; it neither serves nor stores.
	{"internal/auth", "net/http", true, "auth is a library; handlers speak HTTP"},
	{"internal/auth", "database/sql", true, "auth reaches storage through its Store interface"},
	{"internal/auth", "internal/metadata/sqldb", true, "auth sees its Store interface; server picks the driver"},
	{"internal/auth", "internal/server", true, "auth never imports the server"},
	{"internal/auth", "internal/distribution", true, "auth never imports a handler"},

	// Configuration is a leaf; main is flags and wiring only.
	{"internal/config", "internal", true, "config depends on nothing in wharf"},
	{"internal/config", "net/http", true, "config depends on nothing that serves"},
	{"cmd/wharf", "internal/metadata", false, "main wires through server.New, never a store"},
	{"cmd/wharf", "internal/blobstore", false, "main wires through server.New, never a store"},
	{"cmd/wharf", "internal/registry", false, "main wires through server.New"},
	{"cmd/wharf", "internal/distribution", false, "main wires through server.New"},

	// The client speaks to registries over HTTP only, ours included.
	{"internal/client", "internal/server", true, "the client talks to registries over HTTP"},
	{"internal/client", "internal/distribution", true, "the client talks to registries over HTTP"},
	{"internal/client", "internal/registry", true, "the client talks to registries over HTTP"},
	{"internal/client", "internal/metadata", true, "the client talks to registries over HTTP"},
	{"internal/client", "internal/blobstore", true, "the client talks to registries over HTTP"},
}

// pkg is what `go list -json` says about one package.
type pkg struct {
	ImportPath string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// under reports whether path is prefix or inside it; a module-relative
// prefix (internal/…, cmd/…) is matched inside this module only.
func under(path, prefix string) bool {
	if strings.HasPrefix(prefix, "internal") || strings.HasPrefix(prefix, "cmd/") {
		prefix = module + prefix
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// sqlDriver holds only the interfaces a value implements to be storable
// in SQL (github.com/google/uuid implements them); reaching it through a
// library is not doing SQL.
const sqlDriver = "database/sql/driver"

// violations lists every forbidden edge in pkgs, naming the rule it breaks
// and, for a transitive one, the direct import it goes through.
func violations(pkgs []pkg) []string {
	byPath := map[string]pkg{}
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !under(p.ImportPath, r.from) {
				continue
			}
			for _, imp := range p.Imports {
				if under(imp, r.to) {
					out = append(out, edge(p.ImportPath, imp, "", r))
					continue
				}
				if !r.transitive || slices.ContainsFunc(allowedVia[[2]string{r.from, r.to}], func(v string) bool { return imp == v || strings.HasPrefix(imp, v+"/") }) {
					continue
				}
				dep := byPath[imp]
				if i := slices.IndexFunc(dep.Deps, func(d string) bool { return under(d, r.to) && d != sqlDriver }); i >= 0 {
					out = append(out, edge(p.ImportPath, dep.Deps[i], imp, r))
				}
			}
		}
	}
	return out
}

func edge(from, to, via string, r rule) string {
	short := func(s string) string { return strings.TrimPrefix(s, module) }
	e := "forbidden import " + short(from) + " → " + short(to)
	if via != "" {
		e += " (through " + short(via) + ")"
	}
	return e + ": " + r.from + " must not depend on " + r.to + ": " + r.why + " (DESIGN.md, “Arrows point one way”)"
}

// listModule runs `go list -deps -json` over the module's packages and
// keeps, per package, its imports and dependencies.
func listModule(t *testing.T) []pkg {
	t.Helper()
	// -e: a package another session is halfway through editing should not
	// hide the import graph of all the others.
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Imports,Deps", module+"...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportDirections holds the layers: HTTP → distribution → registry →
// metadata/blobstore, no HTTP below distribution, no SQL above metadata.
func TestImportDirections(t *testing.T) {
	pkgs := listModule(t)
	// A rule about a package that is not there proves nothing: make sure
	// the layers the rules are about exist under these names.
	for _, want := range []string{"internal/registry", "internal/metadata", "internal/metadata/sqldb", "internal/blobstore",
		"internal/blobstore/fs", "internal/distribution", "internal/server", "internal/config", "internal/client", "internal/importer", "cmd/wharf"} {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return p.ImportPath == module+want }) {
			t.Errorf("go list does not show %s; update the rules if it moved", want)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestImportDirections_CatchesForbiddenEdges checks the checker on a made-up
// graph, so that a rule that matches nothing cannot pass unnoticed.
func TestImportDirections_CatchesForbiddenEdges(t *testing.T) {
	m := func(s string) string { return module + s }
	pkgs := []pkg{
		{ImportPath: m("internal/registry"), Imports: []string{m("internal/registry/helper"), m("internal/metadata"), "github.com/google/uuid"}},
		{ImportPath: "github.com/google/uuid", Imports: []string{"database/sql/driver"}, Deps: []string{"database/sql/driver"}},
		{ImportPath: m("internal/registry/helper"), Imports: []string{"net/http"}, Deps: []string{"net/http"}},
		{ImportPath: m("internal/metadata"), Imports: []string{"context"}, Deps: []string{"context"}},
		{ImportPath: m("internal/metadata/sqldb"), Imports: []string{"database/sql", m("internal/metadata")}},
		{ImportPath: m("internal/server"), Imports: []string{m("internal/metadata/sqldb"), "database/sql"},
			Deps: []string{"database/sql", m("internal/metadata/sqldb")}},
		{ImportPath: m("internal/distribution"), Imports: []string{m("internal/blobstore/fs"), "net/http"}},
		{ImportPath: m("internal/blobstore/fs"), Imports: []string{"os"}},
		{ImportPath: m("internal/registrytest"), Imports: []string{m("internal/server")}}, // no rule
	}
	got := violations(pkgs)
	for _, want := range []string{
		"internal/registry/helper → net/http",                             // direct, in a subpackage
		"internal/registry → net/http (through internal/registry/helper)", // transitive
		"internal/server → database/sql",                                  // direct rule
		"internal/distribution → internal/blobstore/fs",                   // driver, and a store at all
	} {
		if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, want) }) {
			t.Errorf("no violation reported for %s; got:\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, v := range got {
		if strings.Contains(v, "sqldb → database/sql") || strings.Contains(v, "registrytest") ||
			strings.Contains(v, "internal/server → internal/metadata/sqldb") || strings.Contains(v, "internal/registry → internal/metadata:") {
			t.Errorf("allowed edge reported: %s", v)
		}
	}
	if len(got) != 5 {
		t.Errorf("got %d violations, want 5:\n%s", len(got), strings.Join(got, "\n"))
	}
}
