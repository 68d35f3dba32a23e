package main

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wharf/wharf/internal/blobstore/s3"
	"github.com/wharf/wharf/internal/config"
)

// The examples in docs/deploy are tested here without running them (this
// machine has no compose or cluster): every wharf configuration they hold
// goes through serve's own flag parsing, config.Load and validation, and
// the wiring around it — replicas, load balancer, probes, selectors,
// secrets — is checked against that configuration.

const deployDir = "../../docs/deploy"

// image is what the container image (build/container/Dockerfile) gives
// every container that does not override it.
type image struct {
	env  map[string]string
	cmd  []string
	user string
}

// readImage reads the Dockerfile's ENV, CMD and USER.
func readImage(t *testing.T) image {
	t.Helper()
	b, err := os.ReadFile("../../build/container/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	img := image{env: map[string]string{}}
	var line string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") && line == "" {
			continue
		}
		if cont, ok := strings.CutSuffix(text, "\\"); ok {
			line += cont + " "
			continue
		}
		line += text
		instr, rest, _ := strings.Cut(line, " ")
		line = ""
		switch strings.ToUpper(instr) {
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %q: this test reads only KEY=VALUE", rest)
				}
				img.env[k] = v
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &img.cmd); err != nil {
				t.Fatalf("Dockerfile: CMD %s: want the JSON form: %v", rest, err)
			}
		case "USER":
			img.user = strings.TrimSpace(rest)
		}
	}
	if img.env["WHARF_DATA_DIR"] == "" || len(img.cmd) == 0 {
		t.Fatalf("Dockerfile: no WHARF_DATA_DIR or CMD found (env %v, cmd %v)", img.env, img.cmd)
	}
	return img
}

// serveConfig loads the configuration a container running wharf with args
// and env would serve with, through serve's own flags and config.Load.
func serveConfig(t *testing.T, what string, args []string, env map[string]string) config.Config {
	t.Helper()
	if _, ok := env["WHARF_CONFIG"]; ok || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--config") }) {
		t.Fatalf("%s: reads a mounted config file, which this test does not follow yet", what)
	}
	cmd, rest, err := NewRootCmd().Find(args)
	if err != nil || cmd.Name() != "serve" {
		t.Fatalf("%s: args %q do not run wharf serve (%v)", what, args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("%s: args %q: %v", what, args, err)
	}
	if cmd.Flags().NArg() > 0 {
		t.Fatalf("%s: serve takes no arguments, got %q", what, cmd.Flags().Args())
	}
	cfg, err := config.Load(cmd.Flags(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s: the configuration does not load:\n%v", what, err)
	}
	return cfg
}

// sharedStores checks that cfg runs on PostgreSQL and S3 with credentials,
// as every replica of a shared deployment must, and returns the parsed
// database URL and S3 settings.
func sharedStores(t *testing.T, what string, cfg config.Config, env map[string]string) (*url.URL, s3.Config) {
	t.Helper()
	if cfg.Database.Driver != "postgres" || cfg.Storage.Driver != "s3" {
		t.Fatalf("%s: runs on %s + %s; a replica must share PostgreSQL and S3", what, cfg.Database.Driver, cfg.Storage.Driver)
	}
	db, err := url.Parse(cfg.Database.URL)
	if err != nil {
		t.Fatalf("%s: database URL: %v", what, err)
	}
	// The driver's own parsing, which serve runs before connecting.
	sc, err := s3.ParseURL(cfg.Storage.URL)
	if err != nil {
		t.Fatalf("%s: storage URL: %v", what, err)
	}
	sc.AccessKey, sc.SecretKey = cfg.Storage.S3.AccessKey, cfg.Storage.S3.SecretKey
	if sc.AccessKey == "" {
		sc.AccessKey, sc.SecretKey = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
	}
	if sc.AccessKey == "" || sc.SecretKey == "" {
		t.Errorf("%s: no S3 credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or storage.s3.access_key/secret_key)", what)
	}
	if cfg.Auth.Mode == config.AuthToken && env["WHARF_ADMIN_PASSWORD"] == "" {
		t.Errorf("%s: token auth without WHARF_ADMIN_PASSWORD: nobody could log in to a fresh registry", what)
	}
	return db, sc
}

// merged is the image's environment overridden by a container's.
func merged(base, over map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range base {
		env[k] = v
	}
	for k, v := range over {
		env[k] = v
	}
	return env
}

// port is the port of a host:port listen address.
func port(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[i+1:]
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
