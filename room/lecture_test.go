package room_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
)

var loopbackOpts = client.APIOptions{Loopback: true}

func lectureToken(t *testing.T, roomName, identity string, role access.Role) string {
	t.Helper()
	tok, err := access.Mint(testSecret, access.TokenParams{Room: roomName, Identity: identity, Role: role, TTL: time.Hour, Lecture: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLectureAudienceIsCountedNotAnnounced: 300 viewers (60 under the race
// detector) join a lecture. The
// presenter and the viewers already there get no join event per viewer and
// no renegotiation, only an audience count at most once a second.
func TestLectureAudienceIsCountedNotAnnounced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mgr, url := startServer(t, room.Config{AuthSecret: testSecret, MaxParticipants: 400})
	prof := joinWithToken(t, ctx, url, "aula", "prof", lectureToken(t, "aula", "prof", access.Moderator))
	srcs := publish(t, ctx, prof, "prof", "audio", "video")
	first := joinWithToken(t, ctx, url, "aula", "first", lectureToken(t, "aula", "first", access.Viewer))
	wait.Until(t, 15*time.Second, "the first viewer receives the lecture", func() (bool, string) {
		return checkTracks(first, 20, map[string][]*source{prof.ID(): srcs})
	})
	if !first.Welcome().Lecture {
		t.Fatal("welcome does not say the room is a lecture")
	}
	// The first viewer's own count goes out before the audience arrives.
	wait.Until(t, 5*time.Second, "the count of the first viewer", func() (bool, string) {
		one := func(m *signal.Message) bool { return m.Audience == 1 }
		return prof.saw(signal.TypeAudience, one) && first.saw(signal.TypeAudience, one), ""
	})
	mark := func(p *testPeer) int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.events) }
	since := func(p *testPeer, from int) map[string]int {
		p.mu.Lock()
		defer p.mu.Unlock()
		out := map[string]int{}
		for _, m := range p.events[from:] {
			out[m.Type]++
		}
		return out
	}
	profFrom, firstFrom := mark(prof), mark(first)
	// Renegotiation shows as a server offer applied by the client.
	var offers atomic.Int32
	for _, p := range []*testPeer{prof, first} {
		p.PeerConnection().OnSignalingStateChange(func(s webrtc.SignalingState) {
			if s == webrtc.SignalingStateHaveRemoteOffer {
				offers.Add(1)
			}
		})
	}
	start := time.Now()
	viewers := 300
	if raceEnabled {
		viewers = 60
	}
	var clients []*signal.Client
	for i := 0; i < viewers; i++ {
		c, err := signal.Dial(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		if _, err := c.Join(ctx, "aula", fmt.Sprintf("v%d", i), lectureToken(t, "aula", fmt.Sprintf("v%d", i), access.Viewer)); err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
	}
	wait.Until(t, 5*time.Second, "the presenter sees the full audience count", func() (bool, string) {
		ok := prof.saw(signal.TypeAudience, func(m *signal.Message) bool { return m.Audience == viewers+1 })
		return ok, fmt.Sprintf("audience %d", mgr.Room("aula").Audience())
	})
	elapsed := time.Since(start)
	limit := int(elapsed/time.Second) + 2
	for name, got := range map[string]map[string]int{"presenter": since(prof, profFrom), "first viewer": since(first, firstFrom)} {
		t.Logf("%s received during %d joins in %v: %v", name, viewers, elapsed.Round(time.Millisecond), got)
		if got[signal.TypeParticipantJoined] > 0 {
			t.Errorf("%s was told of %d viewers joining", name, got[signal.TypeParticipantJoined])
		}
		total := 0
		for _, n := range got {
			total += n
		}
		if total > limit {
			t.Errorf("%s received %d messages for %d viewer joins in %v; want at most %d", name, total, viewers, elapsed, limit)
		}
	}
	for _, c := range clients {
		_ = c.Close()
	}
	wait.Until(t, 10*time.Second, "the audience shrinks back", func() (bool, string) {
		n := mgr.Room("aula").Audience()
		return n == 1, fmt.Sprintf("audience %d", n)
	})
	if n := offers.Load(); n != 0 {
		t.Errorf("%d renegotiations of the presenter and the first viewer while the audience came and went", n)
	}
}

// TestRaiseHandPromoteDemote: a viewer raises a hand, the moderator sees
// it and promotes the viewer, who then publishes to everyone; demoted, its
// tracks end and it may no longer publish.
func TestRaiseHandPromoteDemote(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{AuthSecret: testSecret})
	mod := joinWithToken(t, ctx, url, "aula", "mod", lectureToken(t, "aula", "mod", access.Moderator))
	other := joinWithToken(t, ctx, url, "aula", "other", lectureToken(t, "aula", "other", access.Viewer))
	v := joinWithToken(t, ctx, url, "aula", "student", lectureToken(t, "aula", "student", access.Viewer))
	request := func(p *testPeer, m *signal.Message) error { _, err := p.Client().Request(ctx, m); return err }
	up := true

	// Only the audience raises hands; only moderators see them.
	if err := request(mod, &signal.Message{Type: signal.TypeRaiseHand, Raised: &up}); err == nil {
		t.Error("a moderator raised a hand")
	}
	if err := request(v, &signal.Message{Type: signal.TypeRaiseHand, Raised: &up}); err != nil {
		t.Fatalf("raise hand: %v", err)
	}
	wait.Until(t, 5*time.Second, "the moderator sees the hand", func() (bool, string) {
		return mod.saw(signal.TypeHand, func(m *signal.Message) bool { return m.Participant.ID == v.ID() && *m.Raised }), ""
	})
	if other.saw(signal.TypeHand, nil) {
		t.Error("another viewer saw the raised hand")
	}
	// A viewer cannot promote itself.
	var serr *signal.Error
	if err := request(v, &signal.Message{Type: signal.TypePromote, ParticipantID: v.ID(), Role: signal.RoleSpeaker}); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("self-promotion: %v", err)
	}
	if err := request(mod, &signal.Message{Type: signal.TypePromote, ParticipantID: v.ID(), Role: signal.RoleSpeaker}); err != nil {
		t.Fatalf("promote: %v", err)
	}
	wait.Until(t, 5*time.Second, "the student is told and announced", func() (bool, string) {
		told := v.saw(signal.TypePermissions, func(m *signal.Message) bool { return m.Permissions.Publish && m.Role == signal.RoleSpeaker })
		announced := other.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool { return m.Participant.ID == v.ID() })
		lowered := mod.saw(signal.TypeHand, func(m *signal.Message) bool { return m.Participant.ID == v.ID() && !*m.Raised })
		return told && announced && lowered, fmt.Sprintf("told %v announced %v hand lowered %v", told, announced, lowered)
	})
	srcs := publish(t, ctx, v, "student", "audio", "video")
	for _, p := range []*testPeer{mod, other} {
		wait.Until(t, 15*time.Second, "everyone receives the promoted student", func() (bool, string) {
			return checkTracks(p, 20, map[string][]*source{v.ID(): srcs})
		})
	}
	// Demoted: its tracks end for everyone and it leaves the stage.
	if err := request(mod, &signal.Message{Type: signal.TypePromote, ParticipantID: v.ID(), Role: signal.RoleViewer}); err != nil {
		t.Fatalf("demote: %v", err)
	}
	wait.Until(t, 10*time.Second, "the student's tracks end and it leaves the stage", func() (bool, string) {
		gone := other.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == v.ID() })
		unpublished := 0
		other.mu.Lock()
		for _, m := range other.events {
			if m.Type == signal.TypeTrackUnpublished && m.Track.Participant == v.ID() {
				unpublished++
			}
		}
		other.mu.Unlock()
		told := v.saw(signal.TypePermissions, func(m *signal.Message) bool { return !m.Permissions.Publish })
		return gone && unpublished == 2 && told, fmt.Sprintf("left %v, %d tracks ended, told %v", gone, unpublished, told)
	})
	cam := newSource(t, "video", "student-again")
	if _, err := v.Publish(ctx, "camera", cam.track); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("publishing after demotion: %v, want forbidden", err)
	}
}

// TestOpenLectureViewersJoinAsAudience: without tokens, a join may ask for
// the viewer role (never for more than the room gives): it then receives
// the lecture as audience and cannot publish.
func TestOpenLectureViewersJoinAsAudience(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mgr, url := startServer(t, room.Config{})
	prof := joinWith(t, ctx, url, "open-aula", "prof", loopbackOpts, func(o *client.Params) { o.Lecture = true })
	srcs := publish(t, ctx, prof, "prof", "audio", "video")
	v := joinWith(t, ctx, url, "open-aula", "v", loopbackOpts, func(o *client.Params) { o.Role = signal.RoleViewer })
	if w := v.Welcome(); !w.Lecture || w.Permissions.Publish || w.Participant.Role != signal.RoleViewer {
		t.Fatalf("welcome %+v permissions %+v", w.Participant, w.Permissions)
	}
	wait.Until(t, 15*time.Second, "the viewer receives the lecture", func() (bool, string) {
		return checkTracks(v, 20, map[string][]*source{prof.ID(): srcs})
	})
	if prof.saw(signal.TypeParticipantJoined, nil) {
		t.Error("the presenter was told of a viewer")
	}
	if n := mgr.Room("open-aula").Audience(); n != 1 {
		t.Errorf("audience %d", n)
	}
	var serr *signal.Error
	if _, err := v.Publish(ctx, "camera", newSource(t, "video", "v").track); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("viewer publishing: %v", err)
	}
	c, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: "open-aula", Name: "x", Version: signal.Version, Role: "admin"}); !errors.As(err, &serr) || serr.Code != signal.CodeInvalidField {
		t.Fatalf("join as admin: %v", err)
	}
}

// TestModeratorTurnsAudienceChatOff: with the audience's chat off, viewers
// are refused and everyone is told; members still chat.
func TestModeratorTurnsAudienceChatOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{AuthSecret: testSecret})
	mod := joinWithToken(t, ctx, url, "aula", "mod", lectureToken(t, "aula", "mod", access.Moderator))
	v := joinWithToken(t, ctx, url, "aula", "v", lectureToken(t, "aula", "v", access.Viewer))
	if c := v.Welcome().AudienceChat; c == nil || !*c {
		t.Fatalf("welcome audienceChat %v, want true", c)
	}
	request := func(p *testPeer, m *signal.Message) error { _, err := p.Client().Request(ctx, m); return err }
	off, on := false, true
	var serr *signal.Error
	if err := request(v, &signal.Message{Type: signal.TypeLectureSettings, AudienceChat: &off}); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("a viewer changed the settings: %v", err)
	}
	if err := request(mod, &signal.Message{Type: signal.TypeLectureSettings, AudienceChat: &off}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "the audience is told", func() (bool, string) {
		return v.saw(signal.TypeLectureSettings, func(m *signal.Message) bool { return !*m.AudienceChat }), ""
	})
	if err := request(v, &signal.Message{Type: signal.TypeChat, Text: "hello?"}); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("audience chat while off: %v", err)
	}
	if err := request(mod, &signal.Message{Type: signal.TypeChat, Text: "quiet please"}); err != nil {
		t.Fatalf("moderator chat: %v", err)
	}
	if err := request(mod, &signal.Message{Type: signal.TypeLectureSettings, AudienceChat: &on}); err != nil {
		t.Fatal(err)
	}
	if err := request(v, &signal.Message{Type: signal.TypeChat, Text: "thanks"}); err != nil {
		t.Fatalf("audience chat back on: %v", err)
	}
}

// TestPromotionOutlivesAReconnect: a promoted viewer whose connection drops
// rejoins with its invitation and is still a speaker.
func TestPromotionOutlivesAReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{AuthSecret: testSecret})
	mod := joinWithToken(t, ctx, url, "aula", "mod", lectureToken(t, "aula", "mod", access.Moderator))
	tok := lectureToken(t, "aula", "student", access.Viewer)
	c, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Join(ctx, "aula", "student", tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.Client().Request(ctx, &signal.Message{Type: signal.TypePromote, ParticipantID: w.Participant.ID, Role: signal.RoleSpeaker}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	c2, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	w2, err := c2.Join(ctx, "aula", "student", tok)
	if err != nil {
		t.Fatal(err)
	}
	if !w2.Permissions.Publish || w2.Participant.Role != signal.RoleSpeaker {
		t.Fatalf("after a reconnect: role %q permissions %+v, want a speaker", w2.Participant.Role, w2.Permissions)
	}
}
