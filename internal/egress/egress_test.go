package egress_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/wharf/wharf/internal/egress"
)

func TestInternal(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.8.9.10": true, "::1": true, "0.0.0.0": true, "::": true,
		"10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true, "fd00::1": true,
		"169.254.169.254": true, "fe80::1": true, "100.64.0.1": true, "::ffff:10.0.0.1": true,
		"8.8.8.8": false, "172.32.0.1": false, "100.128.0.1": false, "2001:4860:4860::8888": false,
	} {
		if got := egress.Internal(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Internal(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for url, internal := range map[string]bool{
		"http://127.0.0.1:5000":              true,
		"https://[::1]/":                     true,
		"http://169.254.169.254/latest":      true,
		"http://localhost:8080":              true,
		"http://LOCALHOST.:8080":             true,
		"http://app.localhost":               true,
		"https://10.0.0.7":                   true,
		"https://registry.example.com":       false,
		"https://8.8.8.8:443":                false,
		"https://localhost.example.com/hook": false,
	} {
		err := egress.CheckURL(url)
		if got := errors.Is(err, egress.ErrInternal); got != internal {
			t.Errorf("CheckURL(%s) = %v, want internal %v", url, err, internal)
		}
	}
}

// A name is judged where it leads: the transport refuses the connection
// itself, whatever the URL said.
func TestTransport_RefusesToConnectToAnInternalAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	c := &http.Client{Transport: egress.Transport(http.DefaultTransport.(*http.Transport))}
	resp, err := c.Get(srv.URL)
	if err == nil {
		_ = resp.Body.Close()
	}
	if !errors.Is(err, egress.ErrInternal) {
		t.Fatalf("GET %s through the guarded transport: %v, want ErrInternal", srv.URL, err)
	}
	if resp, err := http.Get(srv.URL); err != nil {
		t.Fatalf("the same GET unguarded: %v", err)
	} else {
		_ = resp.Body.Close()
	}
}
