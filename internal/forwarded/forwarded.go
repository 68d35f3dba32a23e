// Package forwarded takes the client's address and scheme from
// X-Forwarded-For and X-Forwarded-Proto when, and only when, the request
// comes from a reverse proxy the deployment trusts. Anyone can send those
// headers: believed from anyone, they would let a password guesser pose as
// a new address on every try.
package forwarded

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is the set of trusted reverse proxies. The zero value trusts
// no one.
type Proxies struct {
	prefixes []netip.Prefix
}

// Parse reads addresses and CIDR prefixes ("10.0.0.0/8", "127.0.0.1",
// "::1").
func Parse(list []string) (Proxies, error) {
	var p Proxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if prefix, err := netip.ParsePrefix(s); err == nil {
			p.prefixes = append(p.prefixes, prefix.Masked())
			continue
		}
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return Proxies{}, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR prefix", s)
		}
		p.prefixes = append(p.prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
	}
	return p, nil
}

func (p Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, prefix := range p.prefixes {
		if prefix.Contains(a) {
			return true
		}
	}
	return false
}

type secureKey struct{}

// Handler rewrites r.RemoteAddr to the client's address and records the
// scheme the client used, for requests that a trusted proxy forwarded;
// other requests pass untouched.
func (p Proxies) Handler(next http.Handler) http.Handler {
	if len(p.prefixes) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !p.trusts(peer.Addr()) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if proto := firstValue(r.Header.Values("X-Forwarded-Proto")); strings.EqualFold(proto, "https") {
			ctx = context.WithValue(ctx, secureKey{}, true)
		}
		r = r.WithContext(ctx) // a shallow copy: headers need no deep one
		if client, ok := p.client(r.Header.Values("X-Forwarded-For")); ok {
			r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
		}
		next.ServeHTTP(w, r)
	})
}

// client walks X-Forwarded-For from the nearest hop back and returns the
// first address that is not a trusted proxy: hops before it were added by
// whoever sent the request and prove nothing.
func (p Proxies) client(values []string) (netip.Addr, bool) {
	var hops []string
	for _, v := range values {
		hops = append(hops, strings.Split(v, ",")...)
	}
	var last netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // garbage: trust nothing further back
		}
		last = a
		if !p.trusts(a) {
			return a, true
		}
	}
	return last, last.IsValid()
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port, IPv6 possibly bracketed.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func firstValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	first, _, _ := strings.Cut(values[0], ",")
	return strings.TrimSpace(first)
}

// Secure reports whether the client reached us over HTTPS: directly, or
// through a trusted proxy that terminated it.
func Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	v, _ := r.Context().Value(secureKey{}).(bool)
	return v
}

// ClientAddr is the client's IP address: the peer's, or the one a trusted
// proxy forwarded (Handler rewrote RemoteAddr).
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
