package testserver

import (
	"context"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/room"
)

// Node is a whole server that a test can kill in the middle, as a node of
// a cluster dies: failover tests start several.
type Node struct {
	URL     string
	Manager *room.Manager
	srv     *httptest.Server
	conns   *trackingListener
	t       testing.TB
	once    sync.Once
}

// StartNode serves cfg like Start; the node is killed when the test ends
// if the test did not kill it. A cluster node without an AdvertiseURL
// advertises its own URL (a busy node hands joins to it).
func StartNode(t testing.TB, cfg room.Config) *Node {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	if cfg.Cluster != nil && cfg.Cluster.AdvertiseURL == "" {
		cc := *cfg.Cluster
		cc.AdvertiseURL = "http://" + srv.Listener.Addr().String()
		cfg.Cluster = &cc
	}
	mgr := newManager(t, cfg)
	srv.Config.Handler = handler(mgr, cfg)
	n := &Node{Manager: mgr, srv: srv, conns: &trackingListener{Listener: srv.Listener}, t: t}
	srv.Listener = n.conns
	srv.Start()
	n.URL = srv.URL
	t.Cleanup(n.Kill)
	return n
}

// Kill stops the node the way a killed process stops: it accepts nothing
// more, every TCP connection (WebSockets included) is cut without a
// goodbye, and then its rooms and media stop. Later calls do nothing.
func (n *Node) Kill() {
	n.once.Do(func() {
		_ = n.conns.Close()
		n.conns.cut()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Manager.Close(ctx); err != nil {
			n.t.Errorf("close manager: %v", err)
		}
		n.srv.Close()
	})
}

// trackingListener remembers every connection it accepted, so that they
// can be cut: httptest forgets hijacked ones (WebSockets).
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}
