// Package tcplb is a small TCP load balancer for tests: it listens on
// 127.0.0.1, hands each accepted connection to the next live backend in
// round-robin order (skipping one that does not answer), and closes the
// connections of a backend that is removed, as a real balancer does when a
// node's health check fails. Cluster failover tests put it in front of
// several servers so that clients reconnect to one address and land on a
// survivor. Backends must be loopback addresses: tests never send traffic
// elsewhere.
package tcplb

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"
)

// dialTimeout bounds the dial of one backend; a backend that takes longer
// is skipped for that connection.
const dialTimeout = 2 * time.Second

// Errors callers branch on.
var (
	// ErrNotLoopback means a backend address is not on 127.0.0.0/8 or ::1.
	ErrNotLoopback = errors.New("tcplb: backend is not a loopback address")
	// ErrClosed means the balancer was closed.
	ErrClosed = errors.New("tcplb: closed")
)

// LB is a running balancer. Its methods are safe for concurrent use.
type LB struct {
	ln net.Listener
	wg sync.WaitGroup // the accept loop and every proxied connection

	mu       sync.Mutex
	closed   bool
	backends []string // host:port, in round-robin order
	next     int
	conns    map[string]map[*link]struct{} // open links by backend
	accepted map[string]int                // links made, by backend
	refused  int                           // clients closed for want of a backend
}

// link is one client connection and its backend connection.
type link struct {
	client, backend net.Conn
	once            sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		_ = l.client.Close()
		_ = l.backend.Close()
	})
}

// New starts a balancer on 127.0.0.1 with a free port, in front of
// backends (host:port or http://host:port URLs, loopback only).
func New(backends ...string) (*LB, error) {
	lb := &LB{conns: map[string]map[*link]struct{}{}, accepted: map[string]int{}}
	for _, b := range backends {
		if err := lb.Add(b); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tcplb: listen: %w", err)
	}
	lb.ln = ln
	lb.wg.Add(1)
	go lb.accept()
	return lb, nil
}

// Addr is the balancer's host:port.
func (lb *LB) Addr() string { return lb.ln.Addr().String() }

// URL is the balancer's address as an http:// base URL.
func (lb *LB) URL() string { return "http://" + lb.Addr() }

// hostPort turns a backend given as host:port or as a URL into host:port
// and refuses anything but loopback.
func hostPort(backend string) (string, error) {
	hp := backend
	if u, err := url.Parse(backend); err == nil && u.Host != "" {
		hp = u.Host
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil || port == "" {
		return "", fmt.Errorf("tcplb: backend %q: want host:port or a URL with one", backend)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%w: %q", ErrNotLoopback, backend)
	}
	return hp, nil
}

// Add puts a backend at the end of the rotation (again, if it was
// removed). Adding one that is already there does nothing.
func (lb *LB) Add(backend string) error {
	hp, err := hostPort(backend)
	if err != nil {
		return err
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.closed {
		return ErrClosed
	}
	for _, b := range lb.backends {
		if b == hp {
			return nil
		}
	}
	lb.backends = append(lb.backends, hp)
	return nil
}

// Remove takes a backend out of the rotation and closes every client
// connection proxied to it. It returns how many were closed.
func (lb *LB) Remove(backend string) (int, error) {
	hp, err := hostPort(backend)
	if err != nil {
		return 0, err
	}
	lb.mu.Lock()
	for i, b := range lb.backends {
		if b == hp {
			lb.backends = append(lb.backends[:i], lb.backends[i+1:]...)
			break
		}
	}
	victims := lb.conns[hp]
	delete(lb.conns, hp)
	lb.mu.Unlock()
	for l := range victims {
		l.close()
	}
	return len(victims), nil
}

// Drain takes a backend out of the rotation but leaves its open
// connections alone, as a balancer draining a node does: new clients go
// to the others, those connected stay. Remove still closes them later.
func (lb *LB) Drain(backend string) error {
	hp, err := hostPort(backend)
	if err != nil {
		return err
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for i, b := range lb.backends {
		if b == hp {
			lb.backends = append(lb.backends[:i], lb.backends[i+1:]...)
			break
		}
	}
	return nil
}

// Backends lists the backends in rotation, in order.
func (lb *LB) Backends() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]string(nil), lb.backends...)
}

// Open counts the connections currently proxied to a backend.
func (lb *LB) Open(backend string) int {
	hp, err := hostPort(backend)
	if err != nil {
		return 0
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return len(lb.conns[hp])
}

// Accepted counts the connections ever proxied to a backend.
func (lb *LB) Accepted(backend string) int {
	hp, err := hostPort(backend)
	if err != nil {
		return 0
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.accepted[hp]
}

// Refused counts the client connections closed at once because no
// backend answered.
func (lb *LB) Refused() int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.refused
}

// Close stops listening, closes every proxied connection and waits for
// the balancer's goroutines to end.
func (lb *LB) Close() error {
	lb.mu.Lock()
	if lb.closed {
		lb.mu.Unlock()
		return nil
	}
	lb.closed = true
	var all []*link
	for _, set := range lb.conns {
		for l := range set {
			all = append(all, l)
		}
	}
	lb.conns = map[string]map[*link]struct{}{}
	lb.mu.Unlock()
	err := lb.ln.Close()
	for _, l := range all {
		l.close()
	}
	lb.wg.Wait()
	return err
}

func (lb *LB) accept() {
	defer lb.wg.Done()
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return // closed
		}
		lb.wg.Add(1)
		go func() {
			defer lb.wg.Done()
			lb.serve(c)
		}()
	}
}

// serve connects a client to the next backend that answers and copies
// both ways until either side is done. With no backend answering, the
// client's connection is closed at once.
func (lb *LB) serve(c net.Conn) {
	l, backend := lb.connect(c)
	if l == nil {
		lb.mu.Lock()
		lb.refused++
		lb.mu.Unlock()
		_ = c.Close()
		return
	}
	defer lb.forget(backend, l)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(l.backend, l.client) }()
	go func() { defer wg.Done(); pipe(l.client, l.backend) }()
	wg.Wait()
	l.close()
}

// connect dials backends in rotation, starting at the next one, until one
// answers; it registers and returns the link, or nil.
func (lb *LB) connect(c net.Conn) (*link, string) {
	lb.mu.Lock()
	candidates := make([]string, 0, len(lb.backends))
	for i := range lb.backends {
		candidates = append(candidates, lb.backends[(lb.next+i)%len(lb.backends)])
	}
	if len(lb.backends) > 0 {
		lb.next = (lb.next + 1) % len(lb.backends)
	}
	lb.mu.Unlock()
	for _, b := range candidates {
		bc, err := net.DialTimeout("tcp", b, dialTimeout)
		if err != nil {
			continue // dead: the next one
		}
		l := &link{client: c, backend: bc}
		lb.mu.Lock()
		live := !lb.closed && lb.inRotation(b)
		if live {
			if lb.conns[b] == nil {
				lb.conns[b] = map[*link]struct{}{}
			}
			lb.conns[b][l] = struct{}{}
			lb.accepted[b]++
		}
		lb.mu.Unlock()
		if live {
			return l, b
		}
		_ = bc.Close() // removed while dialing
	}
	return nil, ""
}

func (lb *LB) inRotation(b string) bool {
	for _, x := range lb.backends {
		if x == b {
			return true
		}
	}
	return false
}

func (lb *LB) forget(backend string, l *link) {
	lb.mu.Lock()
	delete(lb.conns[backend], l)
	lb.mu.Unlock()
}

// pipe copies src to dst; at the end of src it half-closes dst so that
// the other direction can still finish (an HTTP response after the
// request's end), and on an error it closes both.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = dst.Close()
}
