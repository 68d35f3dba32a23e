package main

import (
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// k8sObject is the part of a Kubernetes object the test reads; Spec is
// decoded by kind.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type deploymentSpec struct {
	Replicas int           `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
			Containers                    []k8sContainer
			Volumes                       []struct {
				Name string `yaml:"name"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe  *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe   *k8sProbe `yaml:"livenessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type ingressSpec struct {
	TLS []struct {
		Hosts []string `yaml:"hosts"`
	} `yaml:"tls"`
	Rules []struct {
		Host string `yaml:"host"`
		HTTP struct {
			Paths []struct {
				Path    string `yaml:"path"`
				Backend struct {
					Service struct {
						Name string `yaml:"name"`
						Port struct {
							Name   string `yaml:"name"`
							Number int    `yaml:"number"`
						} `yaml:"port"`
					} `yaml:"service"`
				} `yaml:"backend"`
			} `yaml:"paths"`
		} `yaml:"http"`
	} `yaml:"rules"`
}

type pdbSpec struct {
	MinAvailable   *int          `yaml:"minAvailable"`
	MaxUnavailable *int          `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

// readK8s reads every object of every file in dir, by kind.
func readK8s(t *testing.T, dir string) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	objs := map[string][]k8sObject{}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(r)
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			objs[o.Kind] = append(objs[o.Kind], o)
		}
		r.Close()
	}
	return objs
}

func one(t *testing.T, objs map[string][]k8sObject, kind string) k8sObject {
	t.Helper()
	if len(objs[kind]) != 1 {
		t.Fatalf("kubernetes/: %d %s objects; want 1", len(objs[kind]), kind)
	}
	return objs[kind][0]
}

func decodeSpec(t *testing.T, o k8sObject, spec any) {
	t.Helper()
	if err := o.Spec.Decode(spec); err != nil {
		t.Fatalf("%s %s: spec: %v", o.Kind, o.Metadata.Name, err)
	}
}

// selects reports whether a selector's labels all appear in labels (an
// empty selector selects nothing here: it would select every pod).
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestDeployKubernetes loads the wharf configuration of
// docs/deploy/kubernetes (the Deployment's environment, its Secret and
// the image's defaults) and checks the objects around it: probes on
// /readyz and /healthz at the port wharf listens on, a Service and an
// Ingress that reach that port, a PodDisruptionBudget that selects the
// Deployment's pods and lets one go, and a Secret that holds every key
// the Deployment takes from it.
func TestDeployKubernetes(t *testing.T) {
	objs := readK8s(t, filepath.Join(deployDir, "kubernetes"))
	img := readImage(t)
	dep := one(t, objs, "Deployment")
	var ds deploymentSpec
	decodeSpec(t, dep, &ds)
	pods := ds.Template.Metadata.Labels
	if ds.Replicas < 2 || !selects(ds.Selector.MatchLabels, pods) {
		t.Errorf("Deployment: %d replicas, selector %v of pods labelled %v; want several replicas of its own pods",
			ds.Replicas, ds.Selector.MatchLabels, pods)
	}
	var c *k8sContainer
	for i := range ds.Template.Spec.Containers {
		if ds.Template.Spec.Containers[i].Name == "wharf" {
			c = &ds.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("Deployment: no container named wharf")
	}
	if len(c.Command) > 0 {
		t.Fatalf("Deployment: replaces the image's entrypoint (%q)", c.Command)
	}

	// The environment: the image's, the Secret's, then the container's.
	secret := one(t, objs, "Secret")
	secretData := maps.Clone(secret.StringData)
	if secretData == nil {
		secretData = map[string]string{}
	}
	for k, v := range secret.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("Secret %s: data.%s is not base64: %v", secret.Metadata.Name, k, err)
		}
		secretData[k] = string(b)
	}
	env := maps.Clone(img.env)
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil || ef.SecretRef.Name != secret.Metadata.Name {
			t.Fatalf("Deployment: envFrom %+v; want the Secret %s", ef, secret.Metadata.Name)
		}
		maps.Copy(env, secretData)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secretData[ref.Key]
			if ref.Name != secret.Metadata.Name || !ok {
				t.Errorf("Deployment: %s comes from secret %s key %s, which the Secret %s does not hold", e.Name, ref.Name, ref.Key, secret.Metadata.Name)
			}
			env[e.Name] = v
		default:
			t.Fatalf("Deployment: %s: only values and secretKeyRef are understood by this test", e.Name)
		}
	}
	cfg := serveConfig(t, "Deployment", cmpOrList(c.Args, img.cmd), env)
	_, sc := sharedStores(t, "Deployment", cfg, env)
	if cfg.Storage.S3.Redirect {
		checkPublic(t, "Deployment", cmpOr(cfg.Storage.S3.PublicEndpoint, sc.Endpoint))
	}

	// Probes and Service reach the port wharf listens on.
	listen, _ := strconv.Atoi(port(t, cfg.Addr))
	containerPort := func(p string) int {
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
		return -1
	}
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("Deployment: no %s httpGet", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || containerPort(p.probe.HTTPGet.Port) != listen {
			t.Errorf("Deployment: %s GETs %s on port %s (%d); want %s on %d, where wharf listens",
				p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port, containerPort(p.probe.HTTPGet.Port), p.path, listen)
		}
	}

	// A read-only root file system leaves wharf only its mounts to write.
	if c.SecurityContext.ReadOnlyRootFilesystem {
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || under(cfg.DataDir, m.MountPath)
		}
		if !mounted {
			t.Errorf("Deployment: root file system read-only, and the data directory %s is on no volume", cfg.DataDir)
		}
	}
	if g := ds.Template.Spec.TerminationGracePeriodSeconds; g != nil && time.Duration(*g)*time.Second <= cfg.ShutdownTimeout {
		t.Errorf("Deployment: terminationGracePeriodSeconds %d does not outlast shutdown_timeout %s: uploads are killed mid-drain", *g, cfg.ShutdownTimeout)
	}

	svc := one(t, objs, "Service")
	var ss serviceSpec
	decodeSpec(t, svc, &ss)
	if !selects(ss.Selector, pods) {
		t.Errorf("Service: selector %v does not select the Deployment's pods %v", ss.Selector, pods)
	}
	for _, p := range ss.Ports {
		if containerPort(cmpOr(p.TargetPort, strconv.Itoa(p.Port))) != listen {
			t.Errorf("Service: port %s targets %q, not wharf's port %d", p.Name, p.TargetPort, listen)
		}
	}

	ing := one(t, objs, "Ingress")
	var is ingressSpec
	decodeSpec(t, ing, &is)
	tlsHosts := map[string]bool{}
	for _, tls := range is.TLS {
		for _, h := range tls.Hosts {
			tlsHosts[h] = true
		}
	}
	for _, r := range is.Rules {
		if !tlsHosts[r.Host] {
			t.Errorf("Ingress: host %s has no TLS: docker refuses plain-HTTP registries", r.Host)
		}
		for _, p := range r.HTTP.Paths {
			b := p.Backend.Service
			found := false
			for _, sp := range ss.Ports {
				found = found || b.Name == svc.Metadata.Name && (b.Port.Name != "" && b.Port.Name == sp.Name || b.Port.Number == sp.Port)
			}
			if !found || !strings.HasPrefix("/v2/", p.Path) {
				t.Errorf("Ingress: %s%s goes to service %s port %+v; want /v2/ sent to a port of Service %s", r.Host, p.Path, b.Name, b.Port, svc.Metadata.Name)
			}
		}
	}
	// ingress-nginx: stream bodies of any size both ways, as nginx.conf does.
	for k, want := range map[string]string{
		"nginx.ingress.kubernetes.io/proxy-body-size":         "0",
		"nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
		"nginx.ingress.kubernetes.io/proxy-buffering":         "off",
	} {
		if got := ing.Metadata.Annotations[k]; got != want {
			t.Errorf("Ingress: annotation %s = %q; want %q", k, got, want)
		}
	}

	pdb := one(t, objs, "PodDisruptionBudget")
	var ps pdbSpec
	decodeSpec(t, pdb, &ps)
	if !selects(ps.Selector.MatchLabels, pods) {
		t.Errorf("PodDisruptionBudget: selector %v does not select the Deployment's pods %v", ps.Selector.MatchLabels, pods)
	}
	switch {
	case ps.MinAvailable != nil && (*ps.MinAvailable < 1 || *ps.MinAvailable >= ds.Replicas):
		t.Errorf("PodDisruptionBudget: minAvailable %d of %d replicas: want at least 1, and fewer than all (or no node drains)", *ps.MinAvailable, ds.Replicas)
	case ps.MaxUnavailable != nil && (*ps.MaxUnavailable < 1 || *ps.MaxUnavailable >= ds.Replicas):
		t.Errorf("PodDisruptionBudget: maxUnavailable %d of %d replicas", *ps.MaxUnavailable, ds.Replicas)
	case ps.MinAvailable == nil && ps.MaxUnavailable == nil:
		t.Error("PodDisruptionBudget: neither minAvailable nor maxUnavailable")
	}
}

// checkPublic fails unless endpoint looks reachable by registry clients
// outside the cluster, as redirect URLs must be: https, and a host name
// that is not cluster-internal.
func checkPublic(t *testing.T, what, endpoint string) {
	t.Helper()
	host := strings.TrimPrefix(endpoint, "https://")
	if host == endpoint || !strings.Contains(host, ".") ||
		strings.HasSuffix(host, ".svc") || strings.Contains(host, ".svc.") || strings.HasSuffix(host, ".cluster.local") {
		t.Errorf("%s: redirects blob GETs to %s, which clients outside the cluster cannot reach over https", what, endpoint)
	}
}
