package main

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wharf/wharf/internal/blobstore/s3"
)

// composeFile is the part of a compose file the test reads.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

type composeService struct {
	Image       string        `yaml:"image"`
	Command     stringList    `yaml:"command"`
	Entrypoint  stringList    `yaml:"entrypoint"`
	Environment stringMap     `yaml:"environment"`
	DependsOn   dependencyMap `yaml:"depends_on"`
	Ports       []string      `yaml:"ports"`
	Volumes     []string      `yaml:"volumes"`
}

// stringList is a command in either compose form: a list, or one string
// split on spaces.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	return n.Decode((*[]string)(l))
}

// stringMap is an environment in either compose form: a map, or a list of
// KEY=VALUE.
type stringMap map[string]string

func (m *stringMap) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		*m = stringMap{}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			(*m)[k] = v
		}
		return nil
	}
	return n.Decode((*map[string]string)(m))
}

// dependencyMap is depends_on in either form: a list of services (each
// service_started), or a map of service to condition.
type dependencyMap map[string]string

func (m *dependencyMap) UnmarshalYAML(n *yaml.Node) error {
	*m = dependencyMap{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			(*m)[s] = "service_started"
		}
		return nil
	}
	var full map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&full); err != nil {
		return err
	}
	for s, d := range full {
		(*m)[s] = cmpOr(d.Condition, "service_started")
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// volume is a compose volume mapping's source and target.
func volume(spec string) (source, target string) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 {
		return "", parts[0]
	}
	return parts[0], parts[1]
}

// dependsOn reports whether from waits for service to reach condition,
// directly or through the services it waits for.
func (c composeFile) dependsOn(from, service, condition string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(s string) bool {
		if seen[s] {
			return false
		}
		seen[s] = true
		for dep, cond := range c.Services[s].DependsOn {
			if dep == service && cond == condition || walk(dep) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// TestDeployCompose loads docs/deploy/compose.yaml: three wharf replicas
// whose configurations load and name the same PostgreSQL and bucket, which
// the file's own postgres and S3 services provide with the same
// credentials (the bucket created before anything uses it), behind the
// nginx of nginx.conf, which sends /v2 to every replica, unbuffered and
// without a size cap.
func TestDeployCompose(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	img := readImage(t)

	var replicas []string
	for name, s := range cf.Services {
		if strings.HasPrefix(s.Image, "wharf:") {
			replicas = append(replicas, name)
		}
	}
	slices.Sort(replicas)
	if len(replicas) != 3 {
		t.Fatalf("compose.yaml runs wharf as %v; want three replicas", replicas)
	}

	var dbURL, storageURL, addr string
	for _, name := range replicas {
		s := cf.Services[name]
		if len(s.Entrypoint) > 0 {
			t.Fatalf("%s: replaces the image's entrypoint (%q)", name, s.Entrypoint)
		}
		args := cmpOrList(s.Command, img.cmd)
		env := merged(img.env, s.Environment)
		cfg := serveConfig(t, name, args, env)
		db, sc := sharedStores(t, name, cfg, env)
		if dbURL == "" {
			dbURL, storageURL, addr = cfg.Database.URL, cfg.Storage.URL, cfg.Addr
		}
		if cfg.Database.URL != dbURL || cfg.Storage.URL != storageURL || cfg.Addr != addr {
			t.Errorf("%s: database %q, storage %q, addr %q; the replicas must agree (%q, %q, %q)",
				name, cfg.Database.URL, cfg.Storage.URL, cfg.Addr, dbURL, storageURL, addr)
		}
		if len(cfg.TrustedProxies) == 0 {
			t.Errorf("%s: behind a load balancer without trusted_proxies: client addresses and https are lost", name)
		}
		if cfg.Storage.S3.Redirect {
			checkPublic(t, name, cmpOr(cfg.Storage.S3.PublicEndpoint, sc.Endpoint))
		}

		// The database is the file's postgres service, with its credentials.
		pgHost, pgPort, _ := net.SplitHostPort(db.Host)
		pg, ok := cf.Services[pgHost]
		if !ok || !strings.HasPrefix(pg.Image, "postgres:") || pgPort != "5432" {
			t.Errorf("%s: database at %s is not the compose file's postgres service on 5432", name, db.Host)
		} else {
			pass, _ := db.User.Password()
			if db.User.Username() != pg.Environment["POSTGRES_USER"] || pass != pg.Environment["POSTGRES_PASSWORD"] ||
				strings.Trim(db.Path, "/") != pg.Environment["POSTGRES_DB"] {
				t.Errorf("%s: database URL user, password or name differ from %s's POSTGRES_USER/PASSWORD/DB", name, pgHost)
			}
			if cf.Services[name].DependsOn[pgHost] != "service_healthy" {
				t.Errorf("%s: does not wait for %s to be healthy", name, pgHost)
			}
		}
		checkComposeS3(t, cf, name, sc)
	}
	checkComposeLB(t, cf, replicas, port(t, addr))
}

func cmpOrList(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// checkComposeS3 checks that replica's bucket is the compose file's
// versitygw, with the same keys, and that a service the replica waits for
// creates the bucket (versitygw serves each directory of its root as one).
func checkComposeS3(t *testing.T, cf composeFile, replica string, sc s3.Config) {
	t.Helper()
	host, p, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(sc.Endpoint, "http://"), "https://"))
	gw, ok := cf.Services[host]
	if !ok || !strings.HasPrefix(gw.Image, "versity/versitygw:") {
		t.Errorf("%s: S3 endpoint %s is not the compose file's versitygw service", replica, sc.Endpoint)
		return
	}
	if i := slices.Index(gw.Command, "--port"); i < 0 || i+1 >= len(gw.Command) || port(t, gw.Command[i+1]) != p {
		t.Errorf("%s: S3 endpoint port %s is not the one %s listens on (%q)", replica, p, host, gw.Command)
	}
	if gw.Environment["ROOT_ACCESS_KEY"] != sc.AccessKey || gw.Environment["ROOT_SECRET_KEY"] != sc.SecretKey {
		t.Errorf("%s: S3 credentials differ from %s's ROOT_ACCESS_KEY/ROOT_SECRET_KEY", replica, host)
	}
	i := slices.Index(gw.Command, "posix")
	if i < 0 || i+1 >= len(gw.Command) {
		t.Fatalf("%s: command %q does not serve a posix directory", host, gw.Command)
	}
	root := gw.Command[i+1]
	var rootVolume string
	for _, v := range gw.Volumes {
		if src, dst := volume(v); dst == root {
			rootVolume = src
		}
	}
	if rootVolume == "" {
		t.Fatalf("%s: its root %s is not on a volume", host, root)
	}
	for name, s := range cf.Services {
		argv := append(slices.Clone(s.Entrypoint), s.Command...)
		for _, v := range s.Volumes {
			src, dst := volume(v)
			if src != rootVolume || len(argv) == 0 || argv[0] != "mkdir" || !slices.Contains(argv, dst+"/"+sc.Bucket) {
				continue
			}
			if !cf.dependsOn(replica, name, "service_completed_successfully") {
				t.Errorf("%s: does not wait for %s, which creates bucket %s", replica, name, sc.Bucket)
			}
			return
		}
	}
	t.Errorf("%s: nothing creates bucket %q in %s's root, and wharf does not create buckets", replica, sc.Bucket, host)
}

// checkComposeLB checks the load balancer: an nginx service whose mounted
// configuration proxies /v2 to every replica on its listen port, with the
// port the service publishes.
func checkComposeLB(t *testing.T, cf composeFile, replicas []string, wharfPort string) {
	t.Helper()
	var lbName, confPath string
	for name, s := range cf.Services {
		for _, v := range s.Volumes {
			if src, dst := volume(v); dst == "/etc/nginx/nginx.conf" && strings.HasPrefix(s.Image, "nginx:") {
				lbName, confPath = name, filepath.Join(deployDir, src)
			}
		}
	}
	if lbName == "" {
		t.Fatal("compose.yaml: no nginx service mounts an nginx.conf")
	}
	for _, r := range replicas {
		if _, ok := cf.Services[lbName].DependsOn[r]; !ok {
			t.Errorf("%s: does not wait for %s (nginx resolves upstream names once, at start)", lbName, r)
		}
	}
	b, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatalf("%s mounts %v", lbName, err)
	}
	var upstreams []string
	for _, r := range replicas {
		upstreams = append(upstreams, r+":"+wharfPort)
	}
	var listen []string
	for _, p := range cf.Services[lbName].Ports {
		i := strings.LastIndexByte(p, ':')
		listen = append(listen, p[i+1:])
	}
	checkNginx(t, string(b), upstreams, listen)
}

// checkNginx checks an nginx.conf: a server listening on one of listen
// sends /v2/ to an upstream of exactly upstreams, without a body size cap
// and without buffering either way, over HTTP/1.1.
func checkNginx(t *testing.T, src string, upstreams, listen []string) {
	t.Helper()
	conf, err := parseNginx(src)
	if err != nil {
		t.Fatal(err)
	}
	https := conf.all("http")
	if len(https) != 1 {
		t.Fatalf("nginx.conf: %d http blocks; want 1", len(https))
	}
	http := https[0]
	found := false
	for _, srv := range http.all("server") {
		if l := effective("listen", srv); len(l) == 0 || !slices.Contains(listen, l[0]) {
			continue
		}
		found = true
		loc, err := locationFor(srv, "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		chain := []*nginxDirective{http, srv, loc}
		for directive, want := range map[string]string{
			"client_max_body_size":    "0",
			"proxy_request_buffering": "off",
			"proxy_buffering":         "off",
			"proxy_http_version":      "1.1",
		} {
			if got := effective(directive, chain...); len(got) != 1 || got[0] != want {
				t.Errorf("nginx.conf: /v2/ has %s %q; want %s", directive, got, want)
			}
		}
		pass := effective("proxy_pass", chain...)
		if len(pass) != 1 || !strings.HasPrefix(pass[0], "http://") {
			t.Fatalf("nginx.conf: /v2/ proxy_pass %q; want http://UPSTREAM", pass)
		}
		name := strings.TrimPrefix(pass[0], "http://")
		var servers []string
		for _, up := range http.all("upstream") {
			if len(up.args) == 1 && up.args[0] == name {
				for _, s := range up.all("server") {
					servers = append(servers, s.args[0])
				}
			}
		}
		slices.Sort(servers)
		if !slices.Equal(servers, upstreams) {
			t.Errorf("nginx.conf: upstream %s = %v; want every replica: %v", name, servers, upstreams)
		}
		// Without them wharf cannot tell https from http nor the client's
		// address, and its token realm would name the upstream.
		set := map[string]bool{}
		for _, args := range effectiveAll("proxy_set_header", chain...) {
			set[strings.ToLower(args[0])] = len(args) == 2 && args[1] != ""
		}
		for _, h := range []string{"host", "x-forwarded-for", "x-forwarded-proto"} {
			if !set[h] {
				t.Errorf("nginx.conf: /v2/ does not pass the %s header", h)
			}
		}
	}
	if !found {
		t.Errorf("nginx.conf: no server listens on %v, the port the compose file publishes", listen)
	}
}
