package config_test

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDatabaseURL(t *testing.T) {
	const pg = "postgres://wharf:pw@db.internal:5432/wharf?sslmode=require"
	tests := []struct {
		name       string
		flags      []string
		env        map[string]string
		yaml       string
		wantDriver string
		wantURL    string
	}{
		{"default is the data directory's SQLite file", nil, nil, "", "sqlite", filepath.Join("d", "wharf.db")},
		{"flag names PostgreSQL", []string{"--database-url", pg}, nil, "", "postgres", pg},
		{"postgresql:// too", []string{"--database-url", "postgresql://u@h:1/db"}, nil, "", "postgres", "postgresql://u@h:1/db"},
		{"environment", nil, map[string]string{"WHARF_DATABASE_URL": pg}, "", "postgres", pg},
		{"YAML", nil, nil, "database:\n  url: " + pg + "\n", "postgres", pg},
		{"a path is a SQLite file", []string{"--database-url", "/srv/meta.db"}, nil, "", "sqlite", "/srv/meta.db"},
		{"flag beats environment", []string{"--database-url", pg}, map[string]string{"WHARF_DATABASE_URL": "/x.db"}, "", "postgres", pg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--data-dir", "d"}, tt.flags...)
			if tt.yaml != "" {
				args = append(args, "--config", writeFile(t, tt.yaml))
			}
			c, err := load(t, args, tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Database.Driver != tt.wantDriver || c.Database.URL != tt.wantURL {
				t.Errorf("driver, url = %q, %q; want %q, %q", c.Database.Driver, c.Database.URL, tt.wantDriver, tt.wantURL)
			}
			if tt.wantDriver == "sqlite" && c.Database.SQLite.Path != tt.wantURL {
				t.Errorf("sqlite path = %q; want %q", c.Database.SQLite.Path, tt.wantURL)
			}
		})
	}
}

func TestDatabaseURL_InvalidPostgresURL(t *testing.T) {
	for _, u := range []string{"postgres://", "postgres://host:5432", "postgres://h:1/"} {
		_, err := load(t, []string{"--database-url", u}, nil)
		if err == nil || !strings.Contains(err.Error(), "database.url") {
			t.Errorf("Load with --database-url %q: err = %v; want one naming database.url", u, err)
		}
	}
}
