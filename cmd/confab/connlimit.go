package main

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/prometheus/client_golang/prometheus"
)

var metricConnsRefused = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "confab_tcp_connections_refused_total",
	Help: "TCP connections closed on arrival because their address held -max-tcp-conns-per-ip already."})

func init() { prometheus.MustRegister(metricConnsRefused) }

// connLimitListener caps the TCP connections one client address holds open
// at once, whatever they do: idle keep-alives, requests trickling their
// headers or body, WebSockets. The per-address limit of the rooms counts
// sessions; this one counts sockets, so one address cannot exhaust the
// server's file descriptors with connections that never become sessions.
// Connections over the cap are closed as they arrive. Trusted proxies are
// exempt: every client behind one shares its address.
type connLimitListener struct {
	net.Listener
	limit  int
	exempt []netip.Prefix
	log    *slog.Logger

	mu   sync.Mutex
	open map[string]int // by addrlimit.Key
}

func newConnLimitListener(ln net.Listener, limit int, exempt []netip.Prefix, log *slog.Logger) *connLimitListener {
	return &connLimitListener{Listener: ln, limit: limit, exempt: exempt, log: log, open: map[string]int{}}
}

// Accept returns the next connection within its address's cap, closing
// those over it.
func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, counted, ok := l.admit(c.RemoteAddr())
		if ok {
			if !counted {
				return c, nil
			}
			return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
		}
		metricConnsRefused.Inc()
		l.log.Debug("connection refused: too many from one address", "remote", c.RemoteAddr().String(), "limit", l.limit)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // nothing to flush: reset rather than linger in TIME_WAIT
		}
		_ = c.Close()
	}
}

// admit counts a connection from addr; counted is false for addresses
// exempt from the cap.
func (l *connLimitListener) admit(addr net.Addr) (key string, counted, ok bool) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return "", false, true // not TCP/IP (a test's pipe): nothing to count by
	}
	ip := ap.Addr().Unmap()
	for _, p := range l.exempt {
		if p.Contains(ip) {
			return "", false, true
		}
	}
	key = addrlimit.Key(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.limit {
		return key, true, false
	}
	l.open[key]++
	return key, true, true
}

func (l *connLimitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
