// Package egress decides where wharf may send requests that its users
// aim: webhook receivers and replication destinations. A namespace admin
// who could aim them at the registry's own host or network could reach
// services that trust that network (cloud metadata endpoints, databases,
// admin consoles), so internal addresses are refused unless the
// configuration allows them.
package egress

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrInternal is a destination on the registry's own host or network.
var ErrInternal = errors.New("an internal address (loopback, link-local or private); allow_internal_destinations permits it")

// sharedAddressSpace is carrier-grade NAT's 100.64.0.0/10 (RFC 6598),
// private in practice though netip does not call it so.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// Internal reports whether a is on this host or its network: loopback,
// unspecified, link-local (cloud metadata services live there), private
// (RFC 1918, fc00::/7) or shared address space.
func Internal(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsPrivate() || sharedAddressSpace.Contains(a)
}

// CheckURL refuses an http(s) URL whose host is an internal address
// literal or localhost. A name is judged when it is dialled (Transport):
// what it resolves to may change after the check.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%s is %w", host, ErrInternal)
	}
	if a, err := netip.ParseAddr(host); err == nil && Internal(a) {
		return fmt.Errorf("%s is %w", host, ErrInternal)
	}
	return nil
}

// Transport returns a copy of base that refuses to connect to internal
// addresses, judged on the address each connection is made to: a name
// that resolves to one, a redirect to one, are refused as a literal is.
func Transport(base *http.Transport) *http.Transport {
	t := base.Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: refuseInternal}
	t.DialContext = d.DialContext
	return t
}

func refuseInternal(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if Internal(a) {
		return fmt.Errorf("connect to %s: %w", host, ErrInternal)
	}
	return nil
}
