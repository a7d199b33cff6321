package loadtest_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/testserver"
	"github.com/confab-sfu/confab/loadtest"
	"github.com/confab-sfu/confab/room"
)

// checkNodes asserts that every node got its share of participants, with
// join times and received media of its own.
func checkNodes(t *testing.T, rep *loadtest.Report, urls []string, participants int) {
	t.Helper()
	if len(rep.Nodes) != len(urls) {
		t.Fatalf("%d nodes in the report, want %d", len(rep.Nodes), len(urls))
	}
	var packets uint64
	for i, n := range rep.Nodes {
		if n.URL != urls[i] || n.Participants != participants || n.Joined != participants {
			t.Errorf("node %d: %s with %d participants, %d joined; want %s with %d", i, n.URL, n.Participants, n.Joined, urls[i], participants)
		}
		if n.JoinMillis.P50 <= 0 || n.Packets == 0 || n.ReceivedKbps <= 0 || !n.Server.Available {
			t.Errorf("node %s lacks figures: %+v", n.URL, n)
		}
		packets += n.Packets
		t.Logf("node %s: %d/%d joined, join p50 %.0f ms, %d packets received (%.0f kbit/s), server %.2f CPU-s",
			n.URL, n.Joined, n.Participants, n.JoinMillis.P50, n.Packets, n.ReceivedKbps, n.Server.CPUSeconds)
	}
	if packets != rep.Packets {
		t.Errorf("the nodes' packets add up to %d, the run's to %d", packets, rep.Packets)
	}
}

// A meeting room per node: each room's participants join their room's
// node, and the report says what each node served.
func TestMeetingRoomPerNode(t *testing.T) {
	urls := []string{startServer(t), startServer(t)}
	rep, err := loadtest.Run(context.Background(), loadtest.Config{URL: strings.Join(urls, ","), Scenario: "meeting",
		Participants: 3, Rooms: 2, Spread: loadtest.SpreadRooms, Duration: 2 * time.Second, Loopback: true})
	if err != nil {
		t.Fatalf("run: %v (failures %v)", err, rep.Failures)
	}
	checkNodes(t, rep, urls, 3)
	for _, s := range rep.Subscribers {
		want := urls[0]
		if strings.HasPrefix(s.Name, "p1-") {
			want = urls[1]
		}
		if s.Node != want || s.Tracks != s.Expected {
			t.Errorf("%s joined %s with %d/%d tracks, want %s", s.Name, s.Node, s.Tracks, s.Expected, want)
		}
	}
}

// WHIP presenters and WHEP viewers are spread the same way.
func TestWHIPWHEPRoomPerNode(t *testing.T) {
	urls := []string{startServer(t), startServer(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := loadtest.Run(ctx, loadtest.Config{URL: strings.Join(urls, ","), Scenario: "lecture", Viewers: 3, Rooms: 2,
		Spread: loadtest.SpreadRooms, Duration: 2 * time.Second, Ramp: 20, Video: true, Loopback: true,
		ViewerProtocol: "whep", PresenterProtocol: "whip"})
	if err != nil {
		t.Fatalf("run: %v (failures %v)", err, rep.Failures)
	}
	checkNodes(t, rep, urls, 4)
	for _, s := range rep.Subscribers {
		want := urls[0]
		if strings.HasPrefix(s.Name, "presenter-1") || strings.HasPrefix(s.Name, "v1-") {
			want = urls[1]
		}
		if s.Node != want {
			t.Errorf("%s joined %s, want %s", s.Name, s.Node, want)
		}
	}
}

// killAtFirstSample kills a node when the run prints its first sample
// (media flows, everyone joined).
type killAtFirstSample struct {
	once sync.Once
	node *testserver.Node
	at   time.Time
}

func (k *killAtFirstSample) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "peers") {
		k.once.Do(func() {
			k.at = time.Now()
			go k.node.Kill()
		})
	}
	return len(b), nil
}

// With -reconnect, the members of a node that dies in the middle of a run
// rejoin through the other node and receive again; the report counts the
// rejoins and times them.
func TestReconnectMovesPeers(t *testing.T) {
	n1 := testserver.StartNode(t, room.Config{})
	n2 := testserver.StartNode(t, room.Config{})
	kill := &killAtFirstSample{node: n1}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := loadtest.Run(ctx, loadtest.Config{URL: n1.URL + "," + n2.URL, Scenario: "meeting", Participants: 3,
		Spread: loadtest.SpreadRooms, Duration: 6 * time.Second, Loopback: true, Reconnect: true, Progress: kill})
	if err != nil {
		t.Fatalf("run: %v (failures %v)", err, rep.Failures)
	}
	if kill.at.IsZero() {
		t.Fatal("the node was never killed")
	}
	if rep.Reconnects != 3 || rep.Nodes[0].RejoinsFrom != 3 || rep.Nodes[1].RejoinsTo != 3 {
		t.Errorf("%d rejoins, %d from node 1, %d to node 2; want 3 each", rep.Reconnects, rep.Nodes[0].RejoinsFrom, rep.Nodes[1].RejoinsTo)
	}
	if rep.Nodes[0].Packets == 0 || rep.Nodes[1].Packets == 0 {
		t.Errorf("received through node 1: %d packets, node 2: %d; want media from both", rep.Nodes[0].Packets, rep.Nodes[1].Packets)
	}
	for _, s := range rep.Subscribers {
		if s.Reconnects != 1 || s.Node != n1.URL {
			t.Errorf("%s joined %s and rejoined %d times", s.Name, s.Node, s.Reconnects)
		}
	}
	if r := rep.ResumeMillis; r.P50 <= 0 || r.Max > 10000 {
		t.Errorf("media again after %+v ms, want within 10 s", r)
	}
	t.Logf("rejoined %d peers: welcome p50 %.0f ms max %.0f ms after the loss; media again p50 %.0f ms max %.0f ms",
		rep.Reconnects, rep.ReconnectMillis.P50, rep.ReconnectMillis.Max, rep.ResumeMillis.P50, rep.ResumeMillis.Max)
}
