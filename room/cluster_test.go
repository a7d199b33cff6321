package room_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"go.uber.org/goleak"
)

// TestClusterMeetingAcrossThreeNodes: one participant on each of three
// nodes; everyone receives everyone, payloads byte for byte as sent, each
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
			return checkTracks(p, 25, others)
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
