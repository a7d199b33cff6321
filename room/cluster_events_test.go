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

// TestClusterCapacityCountsEveryNode: a room's participant limit counts
// the members on every node.
func TestClusterCapacityCountsEveryNode(t *testing.T) {
	nodes := startNodes(t, 2, func(_ int, cfg *room.Config) { cfg.MaxParticipants = 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := join(t, ctx, nodes[0].URL, "small", "a")
	join(t, ctx, nodes[1].URL, "small", "b")
	wait.For(t, 5*time.Second, "n1 knows b", func() bool { return len(membersOf(a)) == 1 })
	api, err := client.NewAPI(loopbackOpts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Join(ctx, client.Params{URL: nodes[0].URL, Room: "small", Name: "c", API: api})
	var serr *signal.Error
	if !errors.As(err, &serr) || serr.Code != signal.CodeRoomFull {
		t.Fatalf("a third join on n1 with one member on each node: %v, want room_full", err)
	}
}

// TestClusterChatAndLectureSettingsAcrossNodes: chat reaches the members of
// every node (not the sender); a moderator's setting on one node holds on
// the others: an audience member elsewhere is told, and refused by its own
// node when it chats.
func TestClusterChatAndLectureSettingsAcrossNodes(t *testing.T) {
	nodes := authNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mod := joinWithToken(t, ctx, nodes[0].URL, "aula", "mod", lectureToken(t, "aula", "mod", access.Moderator))
	v2 := joinWithToken(t, ctx, nodes[1].URL, "aula", "v2", lectureToken(t, "aula", "v2", access.Viewer))
	v3 := joinWithToken(t, ctx, nodes[2].URL, "aula", "v3", lectureToken(t, "aula", "v3", access.Viewer))
	request := func(p *testPeer, m *signal.Message) error { _, err := p.Client().Request(ctx, m); return err }
	// The viewers' nodes must know the room before a chat can reach them.
	wait.For(t, 5*time.Second, "every node sees the audience", func() bool {
		for _, n := range nodes {
			if n.Manager.Room("aula").Audience() != 2 {
				return false
			}
		}
		return true
	})
	if err := request(v2, &signal.Message{Type: signal.TypeChat, Text: "a question from n2"}); err != nil {
		t.Fatal(err)
	}
	fromV2 := func(m *signal.Message) bool { return m.From == v2.ID() && m.Text == "a question from n2" }
	wait.Until(t, 5*time.Second, "the chat reaches n1 and n3", func() (bool, string) {
		return mod.saw(signal.TypeChat, fromV2) && v3.saw(signal.TypeChat, fromV2), "not yet"
	})
	if v2.saw(signal.TypeChat, fromV2) {
		t.Error("the sender got its own chat back")
	}
	off := false
	if err := request(mod, &signal.Message{Type: signal.TypeLectureSettings, AudienceChat: &off}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "the viewers on n2 and n3 are told", func() (bool, string) {
		isOff := func(m *signal.Message) bool { return m.AudienceChat != nil && !*m.AudienceChat }
		return v2.saw(signal.TypeLectureSettings, isOff) && v3.saw(signal.TypeLectureSettings, isOff), "not yet"
	})
	var serr *signal.Error
	if err := request(v3, &signal.Message{Type: signal.TypeChat, Text: "may I?"}); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("audience chat on n3 after the moderator on n1 turned it off: %v, want forbidden", err)
	}
	// A viewer who arrives later on yet another connection learns it in
	// its welcome.
	late := joinWithToken(t, ctx, nodes[2].URL, "aula", "late", lectureToken(t, "aula", "late", access.Viewer))
	if w := late.Welcome(); w.AudienceChat == nil || *w.AudienceChat {
		t.Fatalf("a late viewer's welcome: audience chat %v", w.AudienceChat)
	}
}

// TestClusterActiveSpeakerAcrossNodes: the active speaker is found from
// the audio levels the relays carry: members on another node see the
// speaker change.
func TestClusterActiveSpeakerAcrossNodes(t *testing.T) {
	nodes := startNodes(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := join(t, ctx, nodes[0].URL, "talk", "ada")
	b := join(t, ctx, nodes[1].URL, "talk", "bob")
	var ta, tb talker
	ta.publish(t, ctx, a, "ada")
	tb.publish(t, ctx, b, "bob")
	current := func(p *testPeer) string {
		p.mu.Lock()
		defer p.mu.Unlock()
		speaker := ""
		for _, m := range p.events {
			if m.Type == signal.TypeActiveSpeaker {
				speaker = m.Speaker
			}
		}
		return speaker
	}
	ta.level.Store(20)
	wait.Until(t, 10*time.Second, "bob on n2 sees ada speak", func() (bool, string) {
		return current(b) == a.ID() && current(a) == a.ID(), fmt.Sprintf("speakers %q, %q", current(a), current(b))
	})
	ta.level.Store(127)
	tb.level.Store(20)
	wait.Until(t, 10*time.Second, "ada on n1 sees bob speak", func() (bool, string) {
		return current(a) == b.ID() && current(b) == b.ID(), fmt.Sprintf("speakers %q, %q", current(a), current(b))
	})
}
