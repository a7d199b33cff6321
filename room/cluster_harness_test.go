package room_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/cluster"
	"github.com/confab-sfu/confab/sfu"
	"go.uber.org/goleak"
)

// Cluster tests run several nodes in one process, each a whole server
// (its own room.Manager and sfu.Engine) whose NATS is embedded and joined
// to the first node's by a route, all on loopback. Timings are short, so
// that a silent node is dropped within a second and a half.
const (
	testHeartbeat = 250 * time.Millisecond
	testDeadAfter = 1500 * time.Millisecond
)

// node is one server of a test cluster.
type node struct {
	*testserver.Node
	id string
}

// cluster is the node's NATS side.
func (n *node) cluster() *cluster.Node { return n.Manager.Cluster() }

// clusterLogger is quiet unless CONFAB_TEST_DEBUG is set: the embedded
// NATS servers have much to say.
func clusterLogger() *slog.Logger {
	if os.Getenv("CONFAB_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// nodeConfig is a cluster member's configuration: an embedded NATS server
// routed to routes.
func nodeConfig(id string, routes ...string) *cluster.Config {
	return &cluster.Config{NodeID: id, Heartbeat: testHeartbeat, DeadAfter: testDeadAfter, Logger: clusterLogger(),
		Embed: &cluster.EmbedConfig{Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Routes: routes}}
}

// startNodes starts count nodes n1, n2... joined into one cluster, and
// waits until each sees all the others. tweak adjusts each node's config.
func startNodes(t *testing.T, count int, tweak func(i int, cfg *room.Config)) []*node {
	t.Helper()
	var nodes []*node
	for i := range count {
		id := fmt.Sprintf("n%d", i+1)
		var routes []string
		if i > 0 {
			routes = []string{nodes[0].cluster().RouteURL()}
		}
		cfg := room.Config{Cluster: nodeConfig(id, routes...)}
		if tweak != nil {
			tweak(i, &cfg)
		}
		nodes = append(nodes, &node{Node: testserver.StartNode(t, cfg), id: id})
	}
	waitMesh(t, nodes)
	warmUp(t, nodes)
	return nodes
}

// warmUp has every node make one request, so that the NATS connection's
// reply subscription (a goroutine that lives as long as the connection)
// exists before a test takes its goroutine baseline.
func warmUp(t *testing.T, nodes []*node) {
	t.Helper()
	for i, n := range nodes {
		to := nodes[(i+1)%len(nodes)]
		err := n.cluster().Request(context.Background(), to.id, "warm-up", nil, nil)
		if !errors.Is(err, cluster.ErrNoHandler) {
			t.Fatalf("%s asks %s: %v, want no handler", n.id, to.id, err)
		}
	}
}

// halt stops publishing sources (before a goroutine check).
func halt(sources map[string][]*source) {
	for _, list := range sources {
		for _, s := range list {
			s.halt()
		}
	}
}

// waitMesh waits until every node sees every other.
func waitMesh(t *testing.T, nodes []*node) {
	t.Helper()
	wait.Until(t, 10*time.Second, "the nodes to see each other", func() (bool, string) {
		for _, n := range nodes {
			if got := len(n.cluster().Nodes()); got != len(nodes)-1 {
				return false, fmt.Sprintf("%s sees %d nodes", n.id, got)
			}
		}
		return true, ""
	})
}

// relayed reports what from relays to to now, by its engine's books.
func relayed(from, to *node) sfu.RelayStats {
	out, _ := from.Manager.Engine().RelayTotals(to.id)
	return out
}

// membersOf lists the member ids a peer knows, from its welcome and the
// joins and leaves since.
func membersOf(p *testPeer) map[string]bool {
	out := map[string]bool{}
	for _, m := range p.Welcome().Members {
		out[m.ID] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.events {
		switch m.Type {
		case "participant_joined":
			out[m.Participant.ID] = true
		case "participant_left":
			delete(out, m.Participant.ID)
		}
	}
	return out
}

// sameMembers reports whether p knows exactly want (ids).
func sameMembers(p *testPeer, want ...string) (bool, string) {
	got := membersOf(p)
	ok := len(got) == len(want)
	for _, id := range want {
		ok = ok && got[id]
	}
	if ok {
		return true, ""
	}
	ids := make([]string, 0, len(got))
	for id := range got {
		ids = append(ids, id)
	}
	return false, fmt.Sprintf("%s knows %s, want %s", p.ID(), strings.Join(ids, ","), strings.Join(want, ","))
}

// roomsGone waits until no node has a room left.
func roomsGone(t *testing.T, nodes ...*node) {
	t.Helper()
	wait.Until(t, 15*time.Second, "every room to close", func() (bool, string) {
		for _, n := range nodes {
			if rooms, parts := n.Manager.Counts(); rooms != 0 {
				return false, fmt.Sprintf("%s has %d rooms, %d participants", n.id, rooms, parts)
			}
		}
		return true, ""
	})
}

// noLeaks checks that goroutines are back to what ignore allowed, waiting
// for the relays and rooms to wind down.
func noLeaks(t *testing.T, ignore goleak.Option) {
	t.Helper()
	wait.Until(t, 15*time.Second, "goroutines back to the baseline", func() (bool, string) {
		if err := goleak.Find(ignore); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// gotIntact reports whether a WHEP viewer received at least n packets of
// each source, every one as it was sent.
func (v *whepViewer) gotIntact(sources []*source, n int) (bool, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range sources {
		got := v.payloads[s.kind]
		if len(got) < n {
			return false, fmt.Sprintf("%d %s packets, want %d", len(got), s.kind, n)
		}
		for i, p := range got {
			if !s.wasSent(p) {
				return false, fmt.Sprintf("%s packet %d differs from anything sent", s.kind, i)
			}
		}
	}
	return true, ""
}

// intact reports whether a received payload is one s sent, byte for byte
// but for a VP8 picture id: a subscriber's down-track renumbers those
// after a pause (its bandwidth held the video back) so that the picture
// ids it forwards stay continuous. Relays never do: they forward every
// packet as it came.
func (s *source) intact(p []byte) bool {
	if s.wasSent(p) {
		return true
	}
	if s.kind != "video" || len(p) < 4 || p[0] != 0x90 || p[1] != 0x80 || p[2]&0x80 == 0 {
		return false
	}
	tag := []byte(s.name + "/" + s.kind + "/")
	at := bytes.Index(p, tag)
	if at < 0 || len(p) < at+len(tag)+6 {
		return false
	}
	i, err := strconv.Atoi(string(p[at+len(tag) : at+len(tag)+6]))
	if err != nil {
		return false
	}
	want := s.payload(i)
	return s.wasSent(want) && len(want) == len(p) && bytes.Equal(want[:2], p[:2]) && bytes.Equal(want[4:], p[4:])
}
