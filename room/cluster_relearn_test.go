package room_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/signal"
	"go.uber.org/goleak"
)

// TestClusterRelearnedPartReceivedAgain: ann on n2 receives bob, who is on
// n1, through n1's relay. n2 then forgets n1's part of the room as when it
// expires (n1's announcements were late: a loaded machine) and learns it
// again at once from n1's next state, while the relay link still carries
// bob's tracks: ann sees bob leave and come back and receives his media
// again, on the link that carried it before. (The origin is asked for
// what it sends already, so it offers nothing new: the tracks must be
// taken from the link as they are.)
func TestClusterRelearnedPartReceivedAgain(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	bob := join(t, ctx, nodes[0].URL, "span", "bob")
	ann := join(t, ctx, nodes[1].URL, "span", "ann")
	fromBob := publish(t, ctx, bob, "bob", "audio", "video")
	wait.Until(t, 30*time.Second, "ann receives bob", func() (bool, string) {
		return checkTracks(ann, 25, map[string][]*source{bob.ID(): fromBob})
	})
	if st := relayed(nodes[0], nodes[1]); st.Links != 1 || st.Tracks != 2 {
		t.Fatalf("n1 relays %d tracks on %d links to n2, want bob's 2 on 1", st.Tracks, st.Links)
	}

	relearned := time.Now()
	if err := nodes[1].Manager.Room("span").ExpireAndRelearn(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 15*time.Second, "ann sees bob leave and come back, and receives him again", func() (bool, string) {
		if !ann.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == bob.ID() }) {
			return false, "bob did not leave"
		}
		if ok, why := sameMembers(ann, bob.ID()); !ok {
			return false, why
		}
		return receivedSince(ann, relearned, bob.ID(), fromBob)
	})
	t.Logf("ann receives bob again %v after n2 relearnt n1's part", time.Since(relearned).Round(time.Millisecond))
	if st := relayed(nodes[0], nodes[1]); st.Links != 1 || st.Tracks != 2 {
		t.Errorf("n1 relays %d tracks on %d links to n2, want bob's 2 on 1", st.Tracks, st.Links)
	}

	halt(map[string][]*source{"bob": fromBob})
	for _, p := range []*testPeer{ann, bob} {
		_ = p.Leave()
	}
	roomsGone(t, nodes...)
	noLeaks(t, ignore)
}

// receivedSince reports whether p has, of each source of publisher, a
// track that arrived after since and brought at least 25 packets, each as
// it was sent.
func receivedSince(p *testPeer, since time.Time, publisher string, sources []*source) (bool, string) {
	if ok, why := checkTracks(p, 25, map[string][]*source{publisher: sources}); !ok {
		return false, why
	}
	for _, rc := range p.rec.snapshot() {
		if rc.publisher == publisher && rc.at.Before(since) {
			return false, fmt.Sprintf("%s still counts a %s track of %s from before", p.ID(), rc.kind, publisher)
		}
	}
	return true, ""
}

// TestClusterSlowRelayKeepsPartAlive: n1 holds the relay requests of n2,
// whose ann wants bob's tracks from n1, until each times out (pullTimeout,
// twice DeadAfter). n2 goes on announcing its part meanwhile: bob never
// sees ann leave, and n1 lists her throughout. Once n1 answers again, ann
// receives bob.
func TestClusterSlowRelayKeepsPartAlive(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	calls, release := nodes[0].Manager.HoldRelayWants()
	released := false
	defer func() {
		if !released {
			release()
		}
	}()

	bob := join(t, ctx, nodes[0].URL, "span", "bob")
	fromBob := publish(t, ctx, bob, "bob", "audio", "video")
	ann := join(t, ctx, nodes[1].URL, "span", "ann")
	first := wait.Recv(t, calls, 15*time.Second, "n2 asks n1 for one of bob's tracks")
	second := wait.Recv(t, calls, 15*time.Second, "n2 asks again, after its first request timed out")
	t.Logf("n2 asked for %s, then %s", first, second)
	if bob.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == ann.ID() }) {
		t.Fatal("bob saw ann leave while n2 waited for n1's answers: n2's part of the room expired on n1")
	}
	if ok, why := sameMembers(bob, ann.ID()); !ok {
		t.Fatal(why)
	}
	members := nodes[0].Manager.Room("span").Participants()
	if len(members) != 2 {
		t.Fatalf("n1 lists %v, want bob and ann", members)
	}

	release()
	released = true
	wait.Until(t, 30*time.Second, "ann receives bob once n1 answers", func() (bool, string) {
		return checkTracks(ann, 25, map[string][]*source{bob.ID(): fromBob})
	})

	halt(map[string][]*source{"bob": fromBob})
	for _, p := range []*testPeer{ann, bob} {
		_ = p.Leave()
	}
	roomsGone(t, nodes...)
	noLeaks(t, ignore)
}
