package room_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"go.uber.org/goleak"
)

// TestClusterMeetingAcrossThreeNodes: one participant on each of three
// nodes; everyone receives everyone, payloads byte for byte as sent (but
// for a VP8 picture id a subscriber renumbers after a bandwidth pause), each
// track crossing to each other node on one link; everyone sees one room;
// when they leave, every node closes the room and its relays, and
// goroutines are back to where they were.
func TestClusterMeetingAcrossThreeNodes(t *testing.T) {
	nodes := startNodes(t, 3, nil)
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	names := []string{"ada", "grace", "linus"}
	peers := make([]*testPeer, len(names))
	sources := map[string][]*source{}
	for i, name := range names {
		peers[i] = join(t, ctx, nodes[i].URL, "standup", name)
	}
	ids := make([]string, len(peers))
	for i, p := range peers {
		ids[i] = p.ID()
	}
	for i, p := range peers {
		others := append(append([]string(nil), ids[:i]...), ids[i+1:]...)
		wait.Until(t, 10*time.Second, names[i]+" sees the others", func() (bool, string) { return sameMembers(p, others...) })
	}
	for i, p := range peers {
		sources[p.ID()] = publish(t, ctx, p, names[i], "audio", "video")
	}
	start := time.Now()
	for i, p := range peers {
		others := map[string][]*source{}
		for j, q := range peers {
			if i != j {
				others[q.ID()] = sources[q.ID()]
			}
		}
		wait.Until(t, 30*time.Second, names[i]+" receives the others intact", func() (bool, string) {
			return checkIntact(p, 25, others)
		})
	}
	t.Logf("everyone received everyone %v after publishing", time.Since(start).Round(time.Millisecond))
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			st := relayed(from, to)
			if st.Links != 1 || st.Tracks != 2 || st.Layers != 2 {
				t.Errorf("%s relays to %s on %d links: %d tracks, %d layers; want 1 link, 2 tracks, 2 layers",
					from.id, to.id, st.Links, st.Tracks, st.Layers)
			}
			if st.Packets == 0 {
				t.Errorf("%s relayed no packets to %s", from.id, to.id)
			}
		}
	}

	halt(sources)
	for _, p := range peers {
		if err := p.Leave(); err != nil {
			t.Errorf("leave: %v", err)
		}
	}
	roomsGone(t, nodes...)
	wait.Until(t, 10*time.Second, "every relay link to close", func() (bool, string) {
		for _, from := range nodes {
			for _, to := range nodes {
				if from != to {
					if st := relayed(from, to); st.Links != 0 {
						return false, fmt.Sprintf("%s has %d links to %s", from.id, st.Links, to.id)
					}
				}
			}
		}
		return true, ""
	})
	noLeaks(t, ignore)
}

// TestClusterLectureAudienceOnThreeNodes: a presenter on node 1 and 30
// viewers spread over nodes 1 to 3. Every viewer receives the lecture;
// node 1 sends each of its tracks to each other node once, whatever the
// number of viewers there; the audience is counted on every node and
// never announced.
func TestClusterLectureAudienceOnThreeNodes(t *testing.T) {
	nodes := startNodes(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	prof := joinWith(t, ctx, nodes[0].URL, "aula", "prof", loopbackOpts, func(o *client.Params) { o.Lecture = true })
	srcs := publish(t, ctx, prof, "prof", "audio", "video")
	// A WHEP viewer on a node where the room is not open yet.
	wait.For(t, 10*time.Second, "the presenter's tracks published", func() bool {
		return len(nodes[0].Manager.Room("aula").Tracks()) == 2
	})
	if nodes[2].Manager.Room("aula") != nil {
		t.Fatal("n3 has the room before anyone came")
	}
	whep := startWHEP(t, ctx, nodes[2].URL, "aula")

	const viewers = 30
	start := time.Now()
	audience := make([]*testPeer, viewers)
	for i := range audience {
		audience[i] = joinWith(t, ctx, nodes[i%3].URL, "aula", fmt.Sprintf("v%d", i), loopbackOpts,
			func(o *client.Params) { o.Role = signal.RoleViewer })
	}
	t.Logf("%d viewers joined in %v", viewers, time.Since(start).Round(time.Millisecond))
	for i, v := range audience {
		if w := v.Welcome(); !w.Lecture || w.Permissions.Publish {
			t.Fatalf("viewer %d on %s: lecture %v, may publish %v", i, nodes[i%3].id, w.Lecture, w.Permissions.Publish)
		}
		wait.Until(t, 30*time.Second, fmt.Sprintf("viewer %d on %s receives the lecture", i, nodes[i%3].id), func() (bool, string) {
			return checkIntact(v, 10, map[string][]*source{prof.ID(): srcs})
		})
	}
	t.Logf("every viewer received the lecture %v after the first joined", time.Since(start).Round(time.Millisecond))
	wait.Until(t, 20*time.Second, "the WHEP viewer on n3 receives the lecture intact", func() (bool, string) {
		return whep.gotIntact(srcs, 10)
	})
	for _, to := range nodes[1:] {
		st := relayed(nodes[0], to)
		if st.Links != 1 || st.Tracks != 2 || st.Layers != 2 {
			t.Errorf("n1 relays to %s on %d links: %d tracks, %d layers; want 1, 2, 2", to.id, st.Links, st.Tracks, st.Layers)
		}
		if _, in := to.Manager.Engine().RelayTotals("n1"); in.Tracks != 2 {
			t.Errorf("%s receives %d relayed tracks from n1, want 2", to.id, in.Tracks)
		}
		t.Logf("n1 -> %s: %d packets, %d bytes, %d lost, %d NACKed, %d resent", to.id, st.Packets, st.Bytes, st.Lost, st.NACKs, st.Resent)
	}
	if st := relayed(nodes[1], nodes[2]); st.Links != 0 {
		t.Errorf("n2 relays %d tracks to n3: viewers publish nothing", st.Tracks)
	}
	wait.Until(t, 10*time.Second, "the audience counted on every node", func() (bool, string) {
		for _, n := range nodes {
			if got := n.Manager.Room("aula").Audience(); got != viewers+1 {
				return false, fmt.Sprintf("%s counts %d", n.id, got)
			}
		}
		if !prof.saw(signal.TypeAudience, func(m *signal.Message) bool { return m.Audience == viewers+1 }) {
			return false, "the presenter was not told"
		}
		return true, ""
	})
	if ok, why := sameMembers(prof); !ok {
		t.Errorf("viewers were announced: %s", why)
	}
}
