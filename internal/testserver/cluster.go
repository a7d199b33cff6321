package testserver

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/tcplb"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/cluster"
	"github.com/nats-io/nats-server/v2/server"
)

// Cluster timings for tests: a silent node is dropped within a second and
// a half, not the default four.
const (
	ClusterHeartbeat = 250 * time.Millisecond
	ClusterDeadAfter = 1500 * time.Millisecond
)

// ClusterNode is one node of a test cluster. Its NATS connection goes
// through a link of its own, so that Crash can cut it first: the others
// then hear no goodbye and must notice the silence, as when a process is
// killed.
type ClusterNode struct {
	*Node
	ID   string
	nats *tcplb.LB
}

// StartCluster runs a NATS server in the test process on a free loopback
// port and count whole servers n1, n2... joined to it, and waits until
// each sees all the others. tweak, if not nil, adjusts each node's
// configuration (its Cluster is set already).
func StartCluster(t testing.TB, count int, tweak func(i int, cfg *room.Config)) []*ClusterNode {
	t.Helper()
	addr := startNATS(t)
	var nodes []*ClusterNode
	for i := range count {
		link, err := tcplb.New(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = link.Close() })
		id := fmt.Sprintf("n%d", i+1)
		cfg := room.Config{Cluster: &cluster.Config{NodeID: id, URLs: []string{"nats://" + link.Addr()},
			Heartbeat: ClusterHeartbeat, DeadAfter: ClusterDeadAfter, Logger: clusterLogger()}}
		if tweak != nil {
			tweak(i, &cfg)
		}
		nodes = append(nodes, &ClusterNode{Node: StartNode(t, cfg), ID: id, nats: link})
	}
	wait.Until(t, 10*time.Second, "the nodes to see each other", func() (bool, string) {
		for _, n := range nodes {
			if got := len(n.Manager.Cluster().Nodes()); got != count-1 {
				return false, fmt.Sprintf("%s sees %d nodes", n.ID, got)
			}
		}
		return true, ""
	})
	return nodes
}

// Crash kills the node without a word to the cluster: its NATS link is
// cut first, then the node is killed (Node.Kill). It returns when the
// node's rooms and media have stopped; later calls do nothing.
func (n *ClusterNode) Crash() {
	_ = n.nats.Close()
	n.Kill()
}

// startNATS runs a NATS server on a free loopback port until the test
// ends and returns its address.
func startNATS(t testing.TB) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return s.Addr().(*net.TCPAddr).String()
}

// clusterLogger is quiet unless CONFAB_TEST_DEBUG is set: the cluster
// has much to say.
func clusterLogger() *slog.Logger {
	if os.Getenv("CONFAB_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
