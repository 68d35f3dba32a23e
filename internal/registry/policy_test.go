package registry_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
	"github.com/wharf/wharf/internal/servicetest"
)

// onBothDatabases runs test with two handles on one new database, as two
// processes (two replicas, or a server and the offline CLI) hold them: on
// SQLite, and on PostgreSQL when the test services run.
func onBothDatabases(t *testing.T, test func(t *testing.T, a, b *sqldb.DB)) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	pair := func(t *testing.T, open func() (*sqldb.DB, error)) (a, b *sqldb.DB) {
		var dbs [2]*sqldb.DB
		for i := range dbs {
			db, err := open()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			dbs[i] = db
		}
		return dbs[0], dbs[1]
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "wharf.db")
		a, b := pair(t, func() (*sqldb.DB, error) { return sqldb.OpenSQLite(t.Context(), path, log) })
		test(t, a, b)
	})
	t.Run("postgres", func(t *testing.T) {
		url := servicetest.StartPostgres(t).Database(t)
		a, b := pair(t, func() (*sqldb.DB, error) { return sqldb.OpenPostgres(t.Context(), url, log) })
		test(t, a, b)
	})
}

// setting is key's entry in an Effective list.
func setting(eff []registry.Setting, key string) registry.Setting {
	for _, s := range eff {
		if s.Key == key {
			return s
		}
	}
	return registry.Setting{}
}

func mustSet(t *testing.T, p *registry.Policies, pattern, key, value string) {
	t.Helper()
	if err := p.Set(t.Context(), pattern, map[string]string{key: value}); err != nil {
		t.Fatalf("Set(%s %s=%s): %v", pattern, key, value, err)
	}
}

func TestPolicies_MostSpecificPatternWins(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, db, _ *sqldb.DB) {
		{
			p := registry.NewPolicies(db, nil)
			mustSet(t, p, "*", registry.KeyFloatingTags, "off")
			mustSet(t, p, "golden/*", registry.KeyFloatingTags, "semver")
			mustSet(t, p, "golden/legacy", registry.KeyFloatingTags, "off")
			mustSet(t, p, "golden/dotnet/*", registry.KeyFloatingTags, "off")
			mustSet(t, p, "golden/dotnet/sdk-next", registry.KeyFloatingTags, "semver")
			for repo, want := range map[string]string{
				"golden/base":            "semver", // golden/*
				"golden/legacy":          "off",    // the repository beats golden/*
				"golden/app/deep":        "semver", // * spans several segments
				"golden/dotnet/sdk":      "off",    // the longer glob beats golden/*
				"golden/dotnet/sdk-next": "semver", // the repository beats both globs
				"golden":                 "off",    // golden/* names what is under golden/ only
				"goldenrod/app":          "off",    // a prefix is whole segments
				"other/app":              "off",    // *
			} {
				got, err := p.Value(t.Context(), repo, registry.KeyFloatingTags)
				if err != nil || got != want {
					t.Errorf("Value(%s) = %q, %v; want %q", repo, got, err, want)
				}
			}
			eff, err := p.Effective(t.Context(), "golden/dotnet/sdk")
			if err != nil {
				t.Fatal(err)
			}
			if ft := setting(eff, registry.KeyFloatingTags); len(eff) != len(registry.PolicyKeys()) || ft.Pattern != "golden/dotnet/*" {
				t.Errorf("Effective(golden/dotnet/sdk) = %+v, want floating-tags from golden/dotnet/*", eff)
			}
			// A namespace's effective settings come from broader globs,
			// not from its repositories.
			eff, err = p.Effective(t.Context(), "golden/dotnet/*")
			if ft := setting(eff, registry.KeyFloatingTags); err != nil || ft.Pattern != "golden/dotnet/*" || ft.Value != "off" {
				t.Errorf("Effective(golden/dotnet/*) = %+v, %v", eff, err)
			}
			if err := p.Remove(t.Context(), "golden/dotnet/*", registry.KeyFloatingTags); err != nil {
				t.Fatal(err)
			}
			if got, _ := p.Value(t.Context(), "golden/dotnet/sdk", registry.KeyFloatingTags); got != "semver" {
				t.Errorf("after removing golden/dotnet/*: Value = %q, want semver from golden/*", got)
			}
		}
	})
}

func TestPolicies_DefaultWithoutAnyPolicy(t *testing.T) {
	p := registry.NewPolicies(openSQLitePolicies(t), nil)
	if got, err := p.Value(t.Context(), "team/app", registry.KeyFloatingTags); err != nil || got != "off" {
		t.Errorf("Value = %q, %v; want the default off", got, err)
	}
}

func TestPolicies_RefusesUnknownKeysBadValuesAndPatterns(t *testing.T) {
	p := registry.NewPolicies(openSQLitePolicies(t), nil)
	for _, tc := range []struct {
		pattern string
		values  map[string]string
		want    error
	}{
		{"team/app", map[string]string{"floating-tag": "semver"}, registry.ErrPolicyInvalid},
		{"team/app", map[string]string{registry.KeyFloatingTags: "yes"}, registry.ErrPolicyInvalid},
		{"team/app", map[string]string{}, registry.ErrPolicyInvalid},
		{"team/*/app", map[string]string{registry.KeyFloatingTags: "off"}, registry.ErrPolicyInvalid},
		{"team*", map[string]string{registry.KeyFloatingTags: "off"}, registry.ErrPolicyInvalid},
		{"Team/App", map[string]string{registry.KeyFloatingTags: "off"}, registry.ErrPolicyInvalid},
		{"team/", map[string]string{registry.KeyFloatingTags: "off"}, registry.ErrPolicyInvalid},
		// One bad value refuses the whole set.
		{"team/app", map[string]string{registry.KeyFloatingTags: "semver", "nope": "1"}, registry.ErrPolicyInvalid},
	} {
		if err := p.Set(t.Context(), tc.pattern, tc.values); !errors.Is(err, tc.want) {
			t.Errorf("Set(%q, %v) = %v, want %v", tc.pattern, tc.values, err, tc.want)
		}
	}
	if all, err := p.List(t.Context(), ""); err != nil || len(all) != 0 {
		t.Errorf("refused sets stored %v (%v)", all, err)
	}
	if err := p.Remove(t.Context(), "team/app", registry.KeyFloatingTags); !errors.Is(err, registry.ErrPolicyUnknown) {
		t.Errorf("Remove of an unset policy = %v, want ErrPolicyUnknown", err)
	}
}

// A change through another handle on the database (another replica, the
// offline CLI) applies to this process's next read: its cache checks the
// database's version each time.
func TestPolicies_ChangeByAnotherProcessAppliesAtTheNextRead(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a, b *sqldb.DB) {
		{
			here, there := registry.NewPolicies(a, nil), registry.NewPolicies(b, nil)
			read := func() string {
				t.Helper()
				v, err := here.Value(t.Context(), "team/app", registry.KeyFloatingTags)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			if v := read(); v != "off" {
				t.Fatalf("before any policy: %q", v)
			}
			mustSet(t, there, "team/*", registry.KeyFloatingTags, "semver")
			if v := read(); v != "semver" {
				t.Errorf("after another process set team/*: %q, want semver", v)
			}
			if err := there.Remove(t.Context(), "team/*", registry.KeyFloatingTags); err != nil {
				t.Fatal(err)
			}
			if v := read(); v != "off" {
				t.Errorf("after another process removed team/*: %q, want off", v)
			}
		}
	})
}

func TestPatternNamespace(t *testing.T) {
	for pattern, want := range map[string]string{
		"golden/*": "golden", "golden/dotnet/*": "golden", "gallery/ui": "gallery", "app": "", "*": "",
	} {
		if got := registry.PatternNamespace(pattern); got != want {
			t.Errorf("PatternNamespace(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func openSQLitePolicies(t testing.TB) *sqldb.DB {
	t.Helper()
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "wharf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
