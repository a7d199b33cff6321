package room_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/tcplb"
	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/cluster"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"
)

// resumeBound is how soon after a node dies its members must receive
// again through another (the issue asks for 10 s).
const resumeBound = 10 * time.Second

// startNATS runs a NATS server in the test process on a free loopback
// port and returns its address.
func startNATS(t *testing.T) string {
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

// killableNodes starts count nodes on one NATS server, each reaching it
// through its own balancer: closing a node's balancer cuts it off from
// the cluster the way a killed process is, without a goodbye.
func killableNodes(t *testing.T, count int) ([]*node, []*tcplb.LB) {
	t.Helper()
	addr := startNATS(t)
	var nodes []*node
	var links []*tcplb.LB
	for i := range count {
		lb, err := tcplb.New(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lb.Close() })
		id := fmt.Sprintf("n%d", i+1)
		cfg := room.Config{Cluster: &cluster.Config{NodeID: id, URLs: []string{"nats://" + lb.Addr()},
			Heartbeat: testHeartbeat, DeadAfter: testDeadAfter, Logger: clusterLogger()}}
		nodes = append(nodes, &node{Node: testserver.StartNode(t, cfg), id: id})
		links = append(links, lb)
	}
	waitMesh(t, nodes)
	warmUp(t, nodes)
	return nodes, links
}

// TestClusterNodeKilledMembersResume: a meeting of three, one on each
// node. Node 2 is killed (cut from NATS and its sockets without a word):
// its member reconnects through the balancer to a survivor and receives
// again within 10 s; the others see it leave and come back and receive it
// again; nobody is left behind as a ghost, and the survivors' goroutines
// are back to the baseline once everyone left.
func TestClusterNodeKilledMembersResume(t *testing.T) {
	nodes, natsLinks := killableNodes(t, 3)
	front, err := tcplb.New(nodes[0].URL, nodes[1].URL, nodes[2].URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = front.Close() })
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	names := []string{"ada", "carol", "bob"}
	peers := make([]*testPeer, 3)
	sources := map[string][]*source{}
	for i, name := range names {
		peers[i] = joinWith(t, ctx, nodes[i].URL, "standup", name, loopbackOpts, func(o *client.Params) {
			o.Reconnect = &client.Reconnect{URLs: []string{front.URL()}, MinBackoff: 50 * time.Millisecond}
		})
	}
	for i, p := range peers {
		sources[names[i]] = publish(t, ctx, p, names[i], "audio", "video")
	}
	receivesAll := func(p *testPeer, since time.Time) (bool, string) {
		for j, q := range peers {
			if q == p {
				continue
			}
			ok, why := checkIntact(p, 25, map[string][]*source{q.ID(): sources[names[j]]})
			if !ok {
				return false, why
			}
			for _, rc := range p.rec.snapshot() {
				if rc.publisher == q.ID() && rc.at.Before(since) {
					return false, fmt.Sprintf("%s still counts a track of %s from before", p.ID(), q.ID())
				}
			}
		}
		return true, ""
	}
	for _, p := range peers {
		wait.Until(t, 30*time.Second, p.ID()+" receives the others", func() (bool, string) { return receivesAll(p, time.Time{}) })
	}

	carol, oldID := peers[1], peers[1].ID()
	killed := time.Now()
	_ = natsLinks[1].Close()
	if _, err := front.Remove(nodes[1].URL); err != nil {
		t.Fatal(err)
	}
	// The node goes on dying in the background (its rooms and media stop)
	// while the test watches its members come back elsewhere.
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		nodes[1].Kill()
	}()
	defer func() { <-dead }()

	survivors := []*node{nodes[0], nodes[2]}

	wait.Until(t, resumeBound-time.Since(killed), "carol receives again through a survivor", func() (bool, string) {
		if carol.ID() == oldID {
			return false, "not rejoined yet"
		}
		return receivesAll(carol, killed)
	})
	t.Logf("carol receives again %v after the kill (rejoined after %v, through %s)", time.Since(killed).Round(time.Millisecond),
		carol.Reconnections()[0].Rejoined.Sub(killed).Round(time.Millisecond), carol.URL())
	for i, j := range []int{0, 2} {
		p, other := peers[j], peers[2-j]
		wait.Until(t, resumeBound-time.Since(killed), names[j]+" sees carol leave and come back, and receives her", func() (bool, string) {
			if !p.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == oldID }) {
				return false, "carol's old self did not leave"
			}
			if ok, why := sameMembers(p, other.ID(), carol.ID()); !ok {
				return false, why
			}
			return checkIntact(p, 25, map[string][]*source{carol.ID(): sources["carol"]})
		})
		t.Logf("%s (on %s) receives carol again %v after the kill", names[j], survivors[i].id, time.Since(killed).Round(time.Millisecond))
	}
	for _, n := range survivors {
		wait.Until(t, 5*time.Second, n.id+" lists three members, none of them a ghost", func() (bool, string) {
			got := n.Manager.Room("standup").Participants()
			if len(got) != 3 {
				return false, fmt.Sprintf("%d members", len(got))
			}
			for _, m := range got {
				if m.ID == oldID {
					return false, "carol's old self is still there"
				}
			}
			return true, ""
		})
	}

	<-dead
	t.Logf("the killed node's shutdown took %v", time.Since(killed).Round(time.Millisecond))
	halt(sources)
	for _, p := range peers {
		_ = p.Leave()
	}
	roomsGone(t, survivors...)
	noLeaks(t, ignore)
}
