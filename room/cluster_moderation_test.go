package room_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
)

// authNodes starts three nodes that require tokens.
func authNodes(t *testing.T) []*node {
	t.Helper()
	return startNodes(t, 3, func(_ int, cfg *room.Config) { cfg.AuthSecret = testSecret })
}

func speakerToken(t *testing.T, roomName, identity string, role access.Role) string {
	t.Helper()
	return mint(t, testSecret, roomName, identity, role, time.Hour, time.Now())
}

// packetsFrom counts what p received of publisher's tracks of a kind.
func packetsFrom(p *testPeer, publisher, kind string) int {
	n := 0
	for _, rc := range p.rec.snapshot() {
		if rc.publisher == publisher && rc.kind == kind {
			n += len(rc.payloads)
		}
	}
	return n
}

// TestClusterModerationAcrossNodes: a moderator on node 1 mutes a
// participant on node 2 (its video stops for a watcher on node 3, whose
// audio keeps coming) and removes it; the removed identity is refused on
// every node. A participant without the permission is refused by its own
// node.
func TestClusterModerationAcrossNodes(t *testing.T) {
	nodes := authNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mod := joinWithToken(t, ctx, nodes[0].URL, "board", "mod", speakerToken(t, "board", "mod", access.Moderator))
	eve := joinWithToken(t, ctx, nodes[1].URL, "board", "eve", speakerToken(t, "board", "eve", access.Speaker))
	obs := joinWithToken(t, ctx, nodes[2].URL, "board", "obs", speakerToken(t, "board", "obs", access.Speaker))
	srcs := publish(t, ctx, eve, "eve", "audio", "video")
	wait.Until(t, 20*time.Second, "the others receive eve", func() (bool, string) {
		if ok, why := checkIntact(mod, 20, map[string][]*source{eve.ID(): srcs}); !ok {
			return false, why
		}
		return checkIntact(obs, 20, map[string][]*source{eve.ID(): srcs})
	})
	var video signal.Track
	for _, tr := range mod.Tracks() {
		if tr.Participant == eve.ID() && tr.Kind == "video" {
			video = tr
		}
	}
	if video.ID == "" {
		t.Fatal("the moderator does not know eve's video")
	}
	request := func(p *testPeer, m *signal.Message) error { _, err := p.Client().Request(ctx, m); return err }
	muted := true

	// Only a moderator may mute: obs's own node refuses.
	var serr *signal.Error
	if err := request(obs, &signal.Message{Type: signal.TypeMute, TrackID: video.ID, Muted: &muted}); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("a speaker mutes another's track: %v, want forbidden", err)
	}
	if err := request(mod, &signal.Message{Type: signal.TypeMute, TrackID: video.ID, Muted: &muted}); err != nil {
		t.Fatalf("the moderator mutes eve's video on another node: %v", err)
	}
	mutedBy := func(m *signal.Message) bool {
		return m.Track.ID == video.ID && m.Track.Muted && m.Track.MutedBy == mod.ID()
	}
	wait.Until(t, 5*time.Second, "everyone, eve too, is told", func() (bool, string) {
		for _, p := range []*testPeer{mod, eve, obs} {
			if !p.saw(signal.TypeTrackUpdated, mutedBy) {
				return false, p.ID() + " was not told"
			}
		}
		return true, ""
	})
	// The video stops at its origin, so for every node; the audio flows on.
	// Measured in audio packets: 50 of them (a second) bring no video but
	// what was in flight.
	videoAt, audioAt := packetsFrom(obs, eve.ID(), "video"), packetsFrom(obs, eve.ID(), "audio")
	wait.For(t, 10*time.Second, "a second of eve's audio at obs", func() bool {
		return packetsFrom(obs, eve.ID(), "audio") >= audioAt+50
	})
	if more := packetsFrom(obs, eve.ID(), "video") - videoAt; more > 5 {
		t.Errorf("obs received %d more video packets of the muted track", more)
	}

	// Removed: eve is told and gone everywhere; her identity is refused on
	// every node.
	if err := request(mod, &signal.Message{Type: signal.TypeRemove, ParticipantID: eve.ID()}); err != nil {
		t.Fatalf("the moderator removes eve on another node: %v", err)
	}
	wait.Until(t, 5*time.Second, "eve is removed and the others see her leave", func() (bool, string) {
		if !eve.saw(signal.TypeBye, func(m *signal.Message) bool { return m.Code == signal.CodeRemoved }) {
			return false, "eve was not told"
		}
		for _, p := range []*testPeer{mod, obs} {
			if ok, why := sameMembers(p, otherThan(p, mod, obs)...); !ok {
				return false, why
			}
		}
		return true, ""
	})
	for _, n := range nodes {
		wait.Until(t, 5*time.Second, "eve refused on "+n.id, func() (bool, string) {
			api, err := client.NewAPI(loopbackOpts)
			if err != nil {
				t.Fatal(err)
			}
			p, err := client.Join(ctx, client.Params{URL: n.URL, Room: "board", Name: "eve", API: api,
				Token: speakerToken(t, "board", "eve", access.Speaker)})
			if err == nil {
				_ = p.Leave()
				return false, "eve got back in"
			}
			if !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
				t.Fatalf("eve's return on %s: %v, want forbidden", n.id, err)
			}
			return true, ""
		})
	}
}

// otherThan lists the ids of all but p.
func otherThan(p *testPeer, all ...*testPeer) []string {
	var out []string
	for _, q := range all {
		if q != p {
			out = append(out, q.ID())
		}
	}
	return out
}

// TestClusterHandsAndPromotionAcrossNodes: in a lecture spread over three
// nodes, a viewer on node 2 raises a hand; the moderator on node 1 sees it
// (and only moderators do), promotes the viewer, who is announced on
// every node and publishes to everyone; demoted, it leaves the stage
// everywhere.
func TestClusterHandsAndPromotionAcrossNodes(t *testing.T) {
	nodes := authNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mod := joinWithToken(t, ctx, nodes[0].URL, "aula", "mod", lectureToken(t, "aula", "mod", access.Moderator))
	student := joinWithToken(t, ctx, nodes[1].URL, "aula", "student", lectureToken(t, "aula", "student", access.Viewer))
	other := joinWithToken(t, ctx, nodes[2].URL, "aula", "other", lectureToken(t, "aula", "other", access.Viewer))
	request := func(p *testPeer, m *signal.Message) error { _, err := p.Client().Request(ctx, m); return err }
	up := true
	if err := request(student, &signal.Message{Type: signal.TypeRaiseHand, Raised: &up}); err != nil {
		t.Fatalf("raise hand: %v", err)
	}
	wait.Until(t, 5*time.Second, "the moderator on n1 sees the hand raised on n2", func() (bool, string) {
		return mod.saw(signal.TypeHand, func(m *signal.Message) bool { return m.Participant.ID == student.ID() && *m.Raised }), ""
	})
	if other.saw(signal.TypeHand, nil) {
		t.Error("a viewer saw the raised hand")
	}
	if err := request(mod, &signal.Message{Type: signal.TypePromote, ParticipantID: student.ID(), Role: signal.RoleSpeaker}); err != nil {
		t.Fatalf("promote a viewer of another node: %v", err)
	}
	wait.Until(t, 5*time.Second, "the student is told, announced everywhere, its hand lowered", func() (bool, string) {
		told := student.saw(signal.TypePermissions, func(m *signal.Message) bool { return m.Permissions.Publish })
		announced := other.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool { return m.Participant.ID == student.ID() }) &&
			mod.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool { return m.Participant.ID == student.ID() })
		lowered := mod.saw(signal.TypeHand, func(m *signal.Message) bool { return m.Participant.ID == student.ID() && !*m.Raised })
		return told && announced && lowered, fmt.Sprintf("told %v announced %v lowered %v", told, announced, lowered)
	})
	srcs := publish(t, ctx, student, "student", "audio", "video")
	for _, p := range []*testPeer{mod, other} {
		wait.Until(t, 15*time.Second, "everyone receives the promoted student", func() (bool, string) {
			return checkIntact(p, 20, map[string][]*source{student.ID(): srcs})
		})
	}
	if err := request(mod, &signal.Message{Type: signal.TypePromote, ParticipantID: student.ID(), Role: signal.RoleViewer}); err != nil {
		t.Fatalf("demote: %v", err)
	}
	wait.Until(t, 10*time.Second, "the student leaves the stage everywhere", func() (bool, string) {
		for _, p := range []*testPeer{mod, other} {
			if !p.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == student.ID() }) {
				return false, p.ID() + " still sees the student on stage"
			}
		}
		return student.saw(signal.TypePermissions, func(m *signal.Message) bool { return !m.Permissions.Publish }), "student not told"
	})
}
