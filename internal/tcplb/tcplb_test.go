package tcplb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait of a test.
const wait = 5 * time.Second

// backend is a TCP server that greets each connection with its name and
// then echoes lines until the client is done.
type backend struct {
	name string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open []net.Conn
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.open = append(b.open, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				if _, err := io.WriteString(c, b.name+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(b.stop)
	return b
}

func (b *backend) addr() string { return b.ln.Addr().String() }

// stop closes the listener and every connection, as a dying node does.
func (b *backend) stop() {
	_ = b.ln.Close()
	b.mu.Lock()
	for _, c := range b.open {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func start(t *testing.T, backends ...string) *LB {
	t.Helper()
	lb, err := New(backends...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return lb
}

// greeting connects through the balancer and returns the backend's name.
func greeting(t *testing.T, lb *LB) (net.Conn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", lb.Addr(), wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(wait))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return c, ""
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, strings.TrimSpace(line)
}

func TestRoundRobin(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := start(t, a.addr(), "http://"+b.addr()) // a URL works too
	var got []string
	for range 4 {
		_, name := greeting(t, lb)
		got = append(got, name)
	}
	if strings.Join(got, "") != "abab" {
		t.Errorf("connections went to %v, want a b a b", got)
	}
	if lb.Accepted(a.addr()) != 2 || lb.Accepted(b.addr()) != 2 {
		t.Errorf("accepted a %d, b %d", lb.Accepted(a.addr()), lb.Accepted(b.addr()))
	}
	// Data crosses both ways.
	c, _ := greeting(t, lb)
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Errorf("echo through the balancer: %q, %v", line, err)
	}
}

// A backend that refuses connections is skipped: every client lands on
// the live one.
func TestSkipsDeadBackend(t *testing.T) {
	dead := startBackend(t, "dead")
	dead.stop()
	live := startBackend(t, "live")
	lb := start(t, dead.addr(), live.addr())
	for i := range 3 {
		if _, name := greeting(t, lb); name != "live" {
			t.Fatalf("connection %d went to %q", i, name)
		}
	}
	if lb.Accepted(dead.addr()) != 0 || lb.Accepted(live.addr()) != 3 {
		t.Errorf("accepted dead %d, live %d", lb.Accepted(dead.addr()), lb.Accepted(live.addr()))
	}
}

// Removing a backend closes its clients' connections, leaves the others
// alone, and sends new connections elsewhere; adding it back returns it
// to the rotation.
func TestRemoveClosesItsClients(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := start(t, a.addr(), b.addr())
	ca, _ := greeting(t, lb)
	cb, _ := greeting(t, lb)
	if lb.Open(b.addr()) != 1 {
		t.Fatalf("open to b: %d", lb.Open(b.addr()))
	}
	n, err := lb.Remove(b.addr())
	if err != nil || n != 1 {
		t.Fatalf("remove: %d closed, %v", n, err)
	}
	if err := closed(cb); err != nil {
		t.Errorf("the removed backend's client: %v", err)
	}
	if _, err := io.WriteString(ca, "still here\n"); err != nil {
		t.Fatal(err)
	}
	_ = ca.SetReadDeadline(time.Now().Add(wait))
	if line, err := bufio.NewReader(ca).ReadString('\n'); err != nil || line != "still here\n" {
		t.Errorf("the other backend's client: %q, %v", line, err)
	}
	for range 2 {
		if _, name := greeting(t, lb); name != "a" {
			t.Errorf("after removing b, a connection went to %q", name)
		}
	}
	if got := lb.Backends(); len(got) != 1 || got[0] != a.addr() {
		t.Errorf("backends %v", got)
	}
	if err := lb.Add(b.addr()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 2 {
		_, name := greeting(t, lb)
		seen[name] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("after adding b back, connections went to %v", seen)
	}
}

// Draining a backend sends new connections elsewhere and keeps its
// clients connected, until it is removed.
func TestDrainKeepsItsClients(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := start(t, a.addr())
	ca, name := greeting(t, lb)
	if name != "a" {
		t.Fatalf("first connection went to %q", name)
	}
	if err := lb.Add(b.addr()); err != nil {
		t.Fatal(err)
	}
	if err := lb.Drain(a.addr()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, name := greeting(t, lb); name != "b" {
			t.Errorf("after draining a, a connection went to %q", name)
		}
	}
	if _, err := io.WriteString(ca, "still here\n"); err != nil {
		t.Fatal(err)
	}
	_ = ca.SetReadDeadline(time.Now().Add(wait))
	if line, err := bufio.NewReader(ca).ReadString('\n'); err != nil || line != "still here\n" {
		t.Errorf("the drained backend's client: %q, %v", line, err)
	}
	if n, err := lb.Remove(a.addr()); err != nil || n != 1 {
		t.Fatalf("remove the drained backend: %d closed, %v", n, err)
	}
	if err := closed(ca); err != nil {
		t.Errorf("the drained backend's client after removal: %v", err)
	}
	if err := lb.Drain("nonsense"); err == nil {
		t.Error("draining nonsense succeeded")
	}
}

// closed says why c is not closed: a read must end otherwise than by
// timing out, without data.
func closed(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil:
		return fmt.Errorf("read %d bytes: still connected", n)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("still connected after %v", wait)
	}
	return nil
}

// With no backend in rotation a client is closed at once.
func TestNoBackend(t *testing.T) {
	lb := start(t)
	c, name := greeting(t, lb)
	if name != "" {
		t.Fatalf("greeted by %q with no backend", name)
	}
	if err := closed(c); err != nil {
		t.Errorf("with no backend: %v", err)
	}
	if lb.Refused() != 1 {
		t.Errorf("refused %d connections, want 1", lb.Refused())
	}
}

// HTTP through the balancer: requests and responses cross whole, keep-alive
// or not.
func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write([]byte("got " + string(body)))
	}))
	defer srv.Close()
	lb := start(t, srv.URL)
	client := &http.Client{Timeout: wait}
	defer client.CloseIdleConnections()
	for _, body := range []string{"one", strings.Repeat("x", 1<<20)} {
		resp, err := client.Post(lb.URL()+"/", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != "got "+body {
			t.Errorf("response of %d bytes: %d bytes, %v", len(body), len(got), err)
		}
	}
}

func TestBadBackends(t *testing.T) {
	for _, b := range []string{"10.1.2.3:80", "http://example.org:80", "localhost", "127.0.0.1", "http://[::2]:80"} {
		if _, err := New(b); err == nil {
			t.Errorf("backend %q accepted", b)
		}
	}
	if _, err := New("192.168.1.1:80"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("a LAN backend: %v, want ErrNotLoopback", err)
	}
	lb := start(t)
	if err := lb.Add("[::1]:8080"); err != nil {
		t.Errorf("IPv6 loopback refused: %v", err)
	}
	if _, err := lb.Remove("nonsense"); err == nil {
		t.Error("removing nonsense succeeded")
	}
}

// Close ends every proxied connection; the balancer then refuses backends.
func TestClose(t *testing.T) {
	a := startBackend(t, "a")
	lb, err := New(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := greeting(t, lb)
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closed(c); err != nil {
		t.Errorf("after Close: %v", err)
	}
	if err := lb.Add(a.addr()); !errors.Is(err, ErrClosed) {
		t.Errorf("add after close: %v, want ErrClosed", err)
	}
	if err := lb.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
