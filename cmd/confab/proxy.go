package main

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustProxies makes the client address of a request from a trusted
// reverse proxy the one the proxy names in Forwarded (RFC 7239) or, when
// that is absent, X-Forwarded-For: per-address limits and logs then see
// the real client. From any other peer the headers are ignored, since
// anyone can send them.
func trustProxies(next http.Handler, trusted []netip.Prefix) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if client, ok := forwardedClient(r, trusted); ok {
			r = r.WithContext(r.Context()) // a shallow copy to change
			r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient walks the forwarding chain from the nearest hop back and
// returns the first address that is not a trusted proxy: the one the
// nearest trusted proxy saw. A hop it cannot read (obfuscated, "unknown")
// ends the walk at the last trusted hop, which is then the address.
func forwardedClient(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok || !isTrusted(peer, trusted) {
		return netip.Addr{}, false
	}
	hops := forwardedHops(r.Header)
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		if !isTrusted(a, trusted) {
			return a, true
		}
		last = a
	}
	return last, true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedHops lists the client addresses of Forwarded's "for=" pairs,
// or else of X-Forwarded-For, farthest first.
func forwardedHops(h http.Header) []string {
	var hops []string
	if fwd := h.Values("Forwarded"); len(fwd) > 0 {
		for _, element := range strings.Split(strings.Join(fwd, ","), ",") {
			for _, pair := range strings.Split(element, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
				if strings.EqualFold(k, "for") {
					hops = append(hops, v)
				}
			}
		}
		return hops
	}
	for _, v := range strings.Split(strings.Join(h.Values("X-Forwarded-For"), ","), ",") {
		hops = append(hops, v)
	}
	return hops
}

// parseHop reads one hop: an address, optionally quoted, bracketed or with
// a port ("192.0.2.1", "192.0.2.1:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
