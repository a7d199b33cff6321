package cluster

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Three embedded servers joined by routes form one cluster: every node
// sees the other two with the load they announce, the metrics count
// them, and a node that closes is dropped at once through its bye.
func TestThreeNodesSeeEachOtherWithLoads(t *testing.T) {
	t.Parallel()
	start := time.Now()
	nodes, recs := threeNodes(t)
	t.Logf("three nodes see each other %v after the first started", time.Since(start).Round(time.Millisecond))

	for _, n := range nodes {
		for i, id := range []string{"a", "b", "c"} {
			if id == n.ID() {
				continue
			}
			info, _ := n.Node(id)
			want := Load{Participants: i + 1, Streams: 10 * (i + 1), CPU: 0.1 * float64(i+1)}
			if info.Load != want || info.URL != "https://"+id+".example.test" || info.Started.IsZero() {
				t.Errorf("%s sees %s as %+v, want load %+v", n.ID(), id, info, want)
			}
		}
		if got := n.Stats().Nodes; got != 3 {
			t.Errorf("%s: Stats().Nodes = %d, want 3", n.ID(), got)
		}
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(nodes[0].Collector()); err != nil {
		t.Fatalf("register collector: %v", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	found := false
	for _, f := range families {
		if f.GetName() == "confab_cluster_nodes" {
			found = f.GetMetric()[0].GetGauge().GetValue() == 3
		}
	}
	if !found {
		t.Errorf("confab_cluster_nodes is not 3 in the registry")
	}

	closeAt := time.Now()
	if err := nodes[2].Close(); err != nil {
		t.Fatalf("close c: %v", err)
	}
	for _, r := range recs[:2] {
		// A bye, not the silence of DeadAfter.
		r.waitEvent(t, fastDeadAfter/2, "down c bye")
	}
	t.Logf("c's bye dropped it everywhere in %v", time.Since(closeAt).Round(time.Millisecond))
	if got := nodes[0].Stats().Nodes; got != 2 {
		t.Errorf("a: Stats().Nodes = %d after c left, want 2", got)
	}
}

// A node killed without a bye (its embedded server shut down under it) is
// reported down by the others within DeadAfter + 1 s; the killed node,
// cut off from NATS, drops every other node too; started again under the
// same ID it rejoins and serves requests and room messages. Default
// timings (1 s heartbeat, 4 s DeadAfter).
func TestKilledNodeIsDroppedAndRestartedNodeRejoins(t *testing.T) {
	t.Parallel()
	nodes, recs := threeNodes(t, withTiming(0, 0))
	a, c := nodes[0], nodes[2]
	dead := c.cfg.DeadAfter

	killedAt := time.Now()
	c.emb.shutdown() // c's process "dies": no bye, its routes go silent
	for i, r := range recs[:2] {
		r.waitEvent(t, time.Until(killedAt.Add(dead+time.Second)), "down c silent")
		t.Logf("%s saw killed c down %v after the kill", nodes[i].ID(), time.Since(killedAt).Round(time.Millisecond))
	}
	// Meanwhile c cannot hear anyone and must not keep a or b as ghosts.
	recs[2].waitEvent(t, time.Until(killedAt.Add(dead+2*time.Second)), "down a disconnected")
	recs[2].waitEvent(t, time.Second, "down b disconnected")
	if n := len(c.Nodes()); n != 0 {
		t.Errorf("cut-off c still lists %d nodes", n)
	}
	_ = c.Close()

	rec := newRecorder()
	restarted := startTestNode(t, rec, withID("c"), withTiming(0, 0), withRoutes(a.RouteURL()))
	waitSees(t, restarted, "a", "b")
	for _, r := range recs[:2] {
		r.waitFor(t, 5*time.Second, "c up twice", func(events []string, _ []Message) bool {
			ups := 0
			for _, e := range events {
				if e == "up c" {
					ups++
				}
			}
			return ups == 2
		})
	}
	restarted.Handle("ping", func(context.Context, string, json.RawMessage) (any, error) { return "pong", nil })
	var got string
	if err := a.Request(context.Background(), "c", "ping", nil, &got); err != nil || got != "pong" {
		t.Fatalf("request to restarted c: %q, %v", got, err)
	}
	leave, err := a.JoinRoom("r", recs[0].message)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	// a's interest crosses the routes to c's server a moment after
	// JoinRoom; like the room layer's re-announcements, c repeats.
	stop := repeat(t, 100*time.Millisecond, func() error { return restarted.Publish("r", "hello", map[string]int{"n": 1}) })
	recs[0].waitFor(t, 5*time.Second, "room message from restarted c", func(_ []string, msgs []Message) bool {
		return len(msgs) > 0
	})
	stop()
	for _, m := range recs[0].messages() {
		if m.Node != "c" || m.Room != "r" || m.Kind != "hello" || string(m.Data) != `{"n":1}` {
			t.Errorf("a got %+v from restarted c", m)
		}
	}
}

// A node cut off from NATS for longer than DeadAfter drops everyone, and
// when NATS comes back it re-announces itself: both sides see each other
// again, with no ghosts in between.
func TestPartitionHealsWithReannounce(t *testing.T) {
	t.Parallel()
	nodes, recs := threeNodes(t)
	c := nodes[2]
	opts, err := serverOptions(c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts.Port = c.emb.srv.Addr().(*net.TCPAddr).Port
	opts.Cluster.Port = c.emb.srv.ClusterAddr().Port
	c.emb.shutdown()
	recs[0].waitEvent(t, 2*fastDeadAfter, "down c silent")
	recs[1].waitEvent(t, 2*fastDeadAfter, "down c silent")
	recs[2].waitEvent(t, 2*fastDeadAfter, "down a disconnected")
	recs[2].waitEvent(t, time.Second, "down b disconnected")

	// NATS comes back at c's address, routed to a again: c's connection
	// returns by itself and c re-announces.
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("restart c's server: %v", err)
	}
	srv.Start()
	c.emb.srv = srv // c.Close shuts it down
	healed := time.Now()
	for _, r := range recs[:2] {
		r.waitEvent(t, 10*time.Second, "up c")
	}
	recs[2].waitFor(t, 10*time.Second, "a and b up again on c", func(events []string, _ []Message) bool {
		return count(events, "up a") == 2 && count(events, "up b") == 2
	})
	t.Logf("partition healed in %v", time.Since(healed).Round(time.Millisecond))
	if got := c.Stats().Reconnects; got != 1 {
		t.Errorf("c counted %d reconnects, want 1", got)
	}
}

func count(events []string, e string) int {
	n := 0
	for _, x := range events {
		if x == e {
			n++
		}
	}
	return n
}

// Routes require the nodes' credentials: with the same password, or the
// same token, embedded servers join into one cluster.
func TestRoutesWithCredentialsJoin(t *testing.T) {
	t.Parallel()
	for name, auth := range map[string]nodeOpt{
		"password": withAuth("confab", "s3cret", ""),
		"token":    withAuth("", "", "t0ken"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := startTestNode(t, nil, withID("a"), auth)
			b := startTestNode(t, nil, withID("b"), auth, withRoutes(a.RouteURL()))
			waitSees(t, a, "b")
			waitSees(t, b, "a")
		})
	}
}
