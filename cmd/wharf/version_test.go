package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/wharf/wharf/internal/config"
	"testing"
)

func TestVersion_FlagAndCommandPrintTheSameLine(t *testing.T) {
	cmdOut := mustWharf(t, "version")
	flagOut := mustWharf(t, "--version")
	if cmdOut != flagOut {
		t.Errorf("wharf version = %q, wharf --version = %q; want the same line", cmdOut, flagOut)
	}
	if !strings.HasPrefix(cmdOut, "wharf ") || !strings.Contains(cmdOut, runtime.Version()) {
		t.Errorf("wharf version = %q, want wharf's version and %s", cmdOut, runtime.Version())
	}
}

func TestVersion_JSON(t *testing.T) {
	var info struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	}
	if err := json.Unmarshal([]byte(mustWharf(t, "version", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version == "" || info.GoVersion != runtime.Version() {
		t.Errorf("version --json = %+v", info)
	}
}

func TestHealthcheck_ExitsByStatus(t *testing.T) {
	var sick atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if _, _, err := wharf(t, nil, "healthcheck", "--url", srv.URL+"/healthz"); err != nil {
		t.Errorf("healthcheck of a healthy server: %v", err)
	}
	sick.Store(true)
	if _, _, err := wharf(t, nil, "healthcheck", "--url", srv.URL+"/healthz"); err == nil {
		t.Error("healthcheck of a server answering 503 succeeded")
	}
	srv.Close()
	if _, _, err := wharf(t, nil, "healthcheck", "--url", srv.URL+"/healthz"); err == nil {
		t.Error("healthcheck of a stopped server succeeded")
	}
}

func TestHealthURL_FollowsServeSettings(t *testing.T) {
	for _, tc := range []struct {
		addr string
		tls  bool
		want string
	}{
		{":5000", false, "http://127.0.0.1:5000/healthz"},
		{"0.0.0.0:8080", false, "http://127.0.0.1:8080/healthz"},
		{"[::]:5000", true, "https://[::1]:5000/healthz"},
		{"10.0.0.5:443", true, "https://10.0.0.5:443/healthz"},
	} {
		cfg := config.Default()
		cfg.Addr = tc.addr
		if tc.tls {
			cfg.TLS.SelfSigned = []string{"registry.example"}
		}
		if got := healthURL(cfg); got != tc.want {
			t.Errorf("healthURL(addr %q, tls %v) = %q, want %q", tc.addr, tc.tls, got, tc.want)
		}
	}
}
