// Package addrlimit counts what each client address holds open, so that
// one address cannot take every signaling connection and media session of
// the server. An IPv6 client is counted by its /64: one subscriber line
// usually holds a whole /64, and counting single addresses would let it
// open 2^64 budgets. The address is the request's RemoteAddr; a server
// behind a reverse proxy sets it from the proxy's forwarding headers first
// (see cmd/confab -trusted-proxies).
package addrlimit

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// Key is the budget an address counts against: the IPv4 address itself,
// or the /64 of an IPv6 address.
func Key(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// OfRequest is the budget of a request's remote address. A RemoteAddr that
// is not an IP (a test's pipe) is its own budget.
func OfRequest(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	return Key(addr)
}

// Limiter counts reservations per budget against one maximum. Its methods
// are safe for concurrent use; a nil Limiter, or one with a maximum of 0,
// admits everything.
type Limiter struct {
	max int

	mu   sync.Mutex
	held map[string]int
}

// New returns a Limiter admitting at most max reservations per budget at
// once (0: no limit).
func New(max int) *Limiter { return &Limiter{max: max, held: map[string]int{}} }

// Reserve counts one more connection or session against key, unless that
// would pass the maximum.
func (l *Limiter) Reserve(key string) bool {
	if l == nil || l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[key] >= l.max {
		return false
	}
	l.held[key]++
	return true
}

// Release gives back one reservation of key.
func (l *Limiter) Release(key string) {
	if l == nil || l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[key]--; l.held[key] <= 0 {
		delete(l.held, key)
	}
}
