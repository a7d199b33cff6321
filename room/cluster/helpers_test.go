package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
)

// Fast timings for tests that are not about the defaults.
const (
	fastHeartbeat = 250 * time.Millisecond
	fastDeadAfter = 1500 * time.Millisecond
)

func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// recorder keeps a node's up/down events and room messages and wakes
// waiters on each.
type recorder struct {
	mu     sync.Mutex
	events []string // "up <id>" or "down <id> <reason>"
	msgs   []Message
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{})} }

func (r *recorder) add(f func()) {
	r.mu.Lock()
	f()
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) up(info NodeInfo) { r.add(func() { r.events = append(r.events, "up "+info.ID) }) }
func (r *recorder) down(info NodeInfo, why DownReason) {
	r.add(func() { r.events = append(r.events, fmt.Sprintf("down %s %s", info.ID, why)) })
}
func (r *recorder) message(m Message) { r.add(func() { r.msgs = append(r.msgs, m) }) }

// waitFor blocks until cond holds over the recorded state or the deadline
// passes; it returns how long that took.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, cond func(events []string, msgs []Message) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond(r.events, r.msgs)
		wake := r.wake
		r.mu.Unlock()
		if ok {
			return time.Since(start)
		}
		select {
		case <-wake:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waited %v for %s; events %q, %d messages", timeout, what, r.events, len(r.msgs))
		}
	}
}

func (r *recorder) waitEvent(t *testing.T, timeout time.Duration, event string) time.Duration {
	t.Helper()
	return r.waitFor(t, timeout, event, func(events []string, _ []Message) bool {
		for _, e := range events {
			if e == event {
				return true
			}
		}
		return false
	})
}

func (r *recorder) eventList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

type nodeOpt func(*Config)

func withID(id string) nodeOpt { return func(c *Config) { c.NodeID = id } }
func withRoutes(routes ...string) nodeOpt {
	return func(c *Config) { c.Embed.Routes = routes }
}
func withTiming(hb, dead time.Duration) nodeOpt {
	return func(c *Config) { c.Heartbeat, c.DeadAfter = hb, dead }
}
func withLoad(l Load) nodeOpt { return func(c *Config) { c.Load = func() Load { return l } } }
func withAuth(user, pass, token string) nodeOpt {
	return func(c *Config) { c.User, c.Password, c.Token = user, pass, token }
}
func withLogger(l *slog.Logger) nodeOpt { return func(c *Config) { c.Logger = l } }

// startTestNode starts a node with an embedded server on free loopback
// ports; it is closed when the test ends.
func startTestNode(t *testing.T, rec *recorder, opts ...nodeOpt) *Node {
	t.Helper()
	cfg := Config{
		Embed:     &EmbedConfig{Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"},
		Heartbeat: fastHeartbeat, DeadAfter: fastDeadAfter,
		Logger: testLogger(),
	}
	return startNode(t, rec, cfg, opts...)
}

func startNode(t *testing.T, rec *recorder, cfg Config, opts ...nodeOpt) *Node {
	t.Helper()
	for _, o := range opts {
		o(&cfg)
	}
	if rec != nil {
		cfg.OnNodeUp, cfg.OnNodeDown = rec.up, rec.down
	}
	if cfg.AdvertiseURL == "" {
		cfg.AdvertiseURL = "https://" + cfg.NodeID + ".example.test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start node %q: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// waitSees waits until n's table holds every id.
func waitSees(t *testing.T, n *Node, ids ...string) time.Duration {
	t.Helper()
	return wait.For(t, 10*time.Second, fmt.Sprintf("%s to see %v", n.ID(), ids), func() bool {
		for _, id := range ids {
			if _, ok := n.Node(id); !ok {
				return false
			}
		}
		return true
	})
}

// threeNodes starts a, b, c joined by routes to a.
func threeNodes(t *testing.T, opts ...nodeOpt) (nodes [3]*Node, recs [3]*recorder) {
	t.Helper()
	ids := [3]string{"a", "b", "c"}
	for i := range nodes {
		recs[i] = newRecorder()
		o := append([]nodeOpt{withID(ids[i]), withLoad(Load{Participants: i + 1, Streams: 10 * (i + 1), CPU: 0.1 * float64(i+1)})}, opts...)
		if i > 0 {
			o = append(o, withRoutes(nodes[0].RouteURL()))
		}
		nodes[i] = startTestNode(t, recs[i], o...)
	}
	for i, n := range nodes {
		others := []string{}
		for j, id := range ids {
			if j != i {
				others = append(others, id)
			}
		}
		waitSees(t, n, others...)
	}
	return nodes, recs
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repeat calls f every period until the returned stop is called; an
// error from f fails the test.
func repeat(t *testing.T, period time.Duration, f func() error) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			if err := f(); err != nil {
				t.Errorf("repeat: %v", err)
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); <-finished }) }
	t.Cleanup(stop)
	return stop
}
