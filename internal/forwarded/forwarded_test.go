package forwarded

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	proxies, err := Parse([]string{"10.0.0.0/8", " 192.0.2.7 ", "fd00::/8", ""})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer, xff, proto string
		wantAddr               string
		wantSecure             bool
	}{
		{"untrusted peer is believed about nothing", "198.51.100.9:4000", "203.0.113.5", "https", "198.51.100.9", false},
		{"one trusted proxy", "10.1.2.3:4000", "203.0.113.5", "https", "203.0.113.5", true},
		{"hops the client wrote are skipped", "10.1.2.3:4000", "6.6.6.6, 203.0.113.5, 10.9.9.9", "http", "203.0.113.5", false},
		{"several header lines", "192.0.2.7:4000", "6.6.6.6, 203.0.113.5\n10.9.9.9", "", "203.0.113.5", false},
		{"all hops trusted: the farthest", "10.1.2.3:4000", "10.5.5.5, 10.6.6.6", "", "10.5.5.5", false},
		{"garbage stops the walk at the proxy", "10.1.2.3:4000", "203.0.113.5, not-an-ip", "", "10.1.2.3", false},
		{"ports and brackets", "[fd00::1]:4000", "[2001:db8::5]:1234", "HTTPS", "2001:db8::5", true},
		{"no header", "10.1.2.3:4000", "", "", "10.1.2.3", false},
		{"mapped IPv4 peer", "[::ffff:10.1.2.3]:4000", "203.0.113.5", "", "203.0.113.5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotAddr string
			var gotSecure bool
			h := proxies.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				gotAddr, gotSecure = ClientAddr(r), Secure(r)
			}))
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			r.RemoteAddr = tt.peer
			if tt.xff != "" {
				for _, line := range strings.Split(tt.xff, "\n") {
					r.Header.Add("X-Forwarded-For", line)
				}
			}
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if gotAddr != tt.wantAddr || gotSecure != tt.wantSecure {
				t.Errorf("client %q secure %v, want %q %v", gotAddr, gotSecure, tt.wantAddr, tt.wantSecure)
			}
		})
	}
}

func TestZeroProxiesChangeNothing(t *testing.T) {
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	var p Proxies
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	p.Handler(next).ServeHTTP(httptest.NewRecorder(), r)
	if Secure(r) {
		t.Error("a request over plain HTTP reported secure")
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.1:80"} {
		if _, err := Parse([]string{bad}); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}
