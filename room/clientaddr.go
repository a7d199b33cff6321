package room

import (
	"net"
	"net/http"
	"net/netip"
)

// Per-address limits count connections and sessions by client address.
// An IPv6 client is counted by its /64: one subscriber line usually holds
// a whole /64, and counting single addresses would let it open 2^64
// budgets. The address is the request's RemoteAddr; a server behind a
// reverse proxy sets it from the proxy's forwarding headers first (see
// cmd/confab -trusted-proxies).

// AddrKey is the budget an address counts against: the IPv4 address
// itself, or the /64 of an IPv6 address.
func AddrKey(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// clientIP is the budget of a request's remote address.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return AddrKey(addr)
}

// reserveIP counts one more connection or session from ip, unless that
// would pass MaxConnsPerIP.
func (m *Manager) reserveIP(ip string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.MaxConnsPerIP > 0 && m.perIP[ip] >= m.cfg.MaxConnsPerIP {
		return false
	}
	m.perIP[ip]++
	return true
}

func (m *Manager) releaseIP(ip string) {
	if ip == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.perIP[ip]--; m.perIP[ip] <= 0 {
		delete(m.perIP, ip)
	}
}
