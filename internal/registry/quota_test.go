package registry_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/wharf/wharf/internal/metadata/sqldb"
	"github.com/wharf/wharf/internal/registry"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		iec  bool
		bad  bool
	}{
		{in: "10GB", want: 10e9}, {in: "10gb", want: 10e9}, {in: "1.5 TB", want: 1.5e12},
		{in: "500MiB", want: 500 << 20, iec: true}, {in: "2GiB", want: 2 << 30, iec: true},
		{in: "1048576", want: 1 << 20}, {in: "100B", want: 100}, {in: "3k", want: 3000},
		{in: "", bad: true}, {in: "GB", bad: true}, {in: "-1GB", bad: true}, {in: "10 parsecs", bad: true},
		{in: "1.2.3MB", bad: true}, {in: "99999999999TB", bad: true},
	} {
		got, iec, err := registry.ParseSize(c.in)
		if c.bad != (err != nil) || !c.bad && (got != c.want || iec != c.iec) {
			t.Errorf("ParseSize(%q) = %d, %v, %v; want %d, %v, error %v", c.in, got, iec, err, c.want, c.iec, c.bad)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, c := range []struct {
		n    int64
		iec  bool
		want string
	}{
		{0, false, "0 B"}, {999, false, "999 B"}, {10e9, false, "10 GB"}, {10.2e9, false, "10.2 GB"},
		{500 << 20, true, "500 MiB"}, {1536, true, "1.5 KiB"},
	} {
		if got := registry.FormatSize(c.n, c.iec); got != c.want {
			t.Errorf("FormatSize(%d, %v) = %q; want %q", c.n, c.iec, got, c.want)
		}
	}
}

// TestQuotaPolicy_OnlyOnNamespaces: a quota bounds a namespace; it cannot
// be set on a repository or a deeper glob, and its value must be a size.
func TestQuotaPolicy_OnlyOnNamespaces(t *testing.T) {
	db, err := sqldb.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "wharf.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	svc := floatingService(t, db)
	for _, c := range []struct {
		pattern, value string
		ok             bool
	}{
		{"alice/*", "10GB", true}, {"*", "500MiB", true}, {"alice/*", "none", true},
		{"alice/app", "10GB", false}, {"alice/team/*", "10GB", false}, {"alice/*", "lots", false}, {"alice/*", "0", false},
	} {
		err := svc.Policies().Set(t.Context(), c.pattern, map[string]string{registry.KeyQuota: c.value})
		if c.ok != (err == nil) || err != nil && !errors.Is(err, registry.ErrPolicyInvalid) {
			t.Errorf("quota=%s on %s: %v; want accepted %v (else ErrPolicyInvalid)", c.value, c.pattern, err, c.ok)
		}
	}
}
