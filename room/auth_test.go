package room_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
)

var testSecret = []byte("a test secret that is long enough")

func mint(t *testing.T, secret []byte, roomName, identity string, role access.Role, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := access.Mint(secret, access.TokenParams{Room: roomName, Identity: identity, Role: role, TTL: ttl}, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokensRefusedWithDistinctCodes: with a secret, a join needs a valid
// token for that room, and each way of failing has its own code.
func TestTokensRefusedWithDistinctCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{AuthSecret: testSecret})
	now := time.Now()
	cases := []struct {
		name, token, code string
	}{
		{"missing", "", signal.CodeUnauthorized},
		{"garbage", "not.a.jwt", signal.CodeInvalidToken},
		{"bad signature", mint(t, []byte("some other secret entirely"), "hall", "ann", access.Speaker, time.Hour, now), signal.CodeInvalidToken},
		{"expired", mint(t, testSecret, "hall", "ann", access.Speaker, time.Hour, now.Add(-2*time.Hour)), signal.CodeTokenExpired},
		{"wrong room", mint(t, testSecret, "other", "ann", access.Speaker, time.Hour, now), signal.CodeWrongRoom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := signal.Dial(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_, err = cl.Join(ctx, "hall", "ann", c.token)
			var serr *signal.Error
			if !errors.As(err, &serr) || serr.Code != c.code {
				t.Fatalf("join with a %s token: %v, want code %s", c.name, err, c.code)
			}
		})
	}
	cl, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w, err := cl.Join(ctx, "hall", "ann", mint(t, testSecret, "hall", "ann@example.org", access.Moderator, time.Hour, now))
	if err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	if w.Participant.Identity != "ann@example.org" || w.Participant.Role != signal.RoleModerator ||
		w.Permissions == nil || !w.Permissions.Moderate || !w.Permissions.Publish {
		t.Fatalf("welcome %+v, permissions %+v", w.Participant, w.Permissions)
	}
}

// TestViewerCannotPublish: a viewer receives, but its offer with a send
// track is refused and nothing of it reaches the room.
func TestViewerCannotPublish(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{AuthSecret: testSecret})
	now := time.Now()
	speaker := joinWithToken(t, ctx, url, "lecture", "prof", mint(t, testSecret, "lecture", "prof", access.Speaker, time.Hour, now))
	viewer := joinWithToken(t, ctx, url, "lecture", "student", mint(t, testSecret, "lecture", "student", access.Viewer, time.Hour, now))
	srcs := publish(t, ctx, speaker, "prof", "audio", "video")

	cam := newSource(t, "video", "student")
	_, err := viewer.Publish(ctx, "camera", cam.track)
	var serr *signal.Error
	if !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("viewer's publish: %v, want %s", err, signal.CodeForbidden)
	}
	cam.run(ctx)
	defer cam.halt()

	// The viewer still receives the speaker, intact.
	wait.Until(t, 15*time.Second, "viewer receives the speaker", func() (bool, string) {
		return checkTracks(viewer, 30, map[string][]*source{speaker.ID(): srcs})
	})
	// Nothing of the viewer is announced or forwarded while 50 more packets
	// of the speaker reach the viewer.
	base := viewer.rec.packets()
	wait.For(t, 10*time.Second, "50 more packets at the viewer", func() bool { return viewer.rec.packets() >= base+50 })
	if speaker.saw(signal.TypeTrackPublished, nil) {
		t.Error("a track of the viewer was announced")
	}
	if n := len(speaker.rec.snapshot()); n != 0 {
		t.Errorf("the speaker receives %d tracks from a viewer", n)
	}
	// Chat is a viewer's right.
	if _, err := viewer.Client().Request(ctx, &signal.Message{Type: signal.TypeChat, Text: "question"}); err != nil {
		t.Errorf("viewer chat: %v", err)
	}
}

// TestModeratorMutesAndRemoves: a moderator's mute stops a track for
// everyone until its owner unmutes it; a removal disconnects the participant,
// the others see it leave, and its identity cannot rejoin. Others may do
// neither.
func TestModeratorMutesAndRemoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, url := startServer(t, room.Config{AuthSecret: testSecret})
	now := time.Now()
	loudTok := mint(t, testSecret, "class", "loud", access.Speaker, time.Hour, now)
	loud := joinWithToken(t, ctx, url, "class", "loud", loudTok)
	other := joinWithToken(t, ctx, url, "class", "other", mint(t, testSecret, "class", "other", access.Speaker, time.Hour, now))
	mod := joinWithToken(t, ctx, url, "class", "mod", mint(t, testSecret, "class", "mod", access.Moderator, time.Hour, now))
	srcs := publish(t, ctx, loud, "loud", "audio", "video")
	for _, p := range []*testPeer{other, mod} {
		wait.Until(t, 15*time.Second, "media from loud", func() (bool, string) {
			return checkTracks(p, 20, map[string][]*source{loud.ID(): srcs})
		})
	}
	var audioID string
	for _, tr := range other.Tracks() {
		if tr.Participant == loud.ID() && tr.Kind == "audio" {
			audioID = tr.ID
		}
	}
	if audioID == "" {
		t.Fatal("no audio track of loud announced")
	}
	request := func(p *testPeer, m *signal.Message) error {
		_, err := p.Client().Request(ctx, m)
		return err
	}
	muted := true
	// A speaker may not mute someone else, nor remove them.
	err := request(other, &signal.Message{Type: signal.TypeMute, TrackID: audioID, Muted: &muted})
	if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("speaker mutes another: %v, want forbidden", err)
	}
	err = request(other, &signal.Message{Type: signal.TypeRemove, ParticipantID: loud.ID()})
	if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("speaker removes another: %v, want forbidden", err)
	}

	count := func(p *testPeer, kind string) int {
		for _, rc := range p.rec.snapshot() {
			if rc.publisher == loud.ID() && rc.kind == kind {
				return len(rc.payloads)
			}
		}
		return 0
	}
	audioCount := func(p *testPeer) int { return count(p, "audio") }
	videoCount := func(p *testPeer) int { return count(p, "video") }
	if err := request(mod, &signal.Message{Type: signal.TypeMute, TrackID: audioID, Muted: &muted}); err != nil {
		t.Fatalf("moderator mute: %v", err)
	}
	for _, p := range []*testPeer{loud, other} {
		wait.Until(t, 5*time.Second, "the mute announced", func() (bool, string) {
			return p.saw(signal.TypeTrackUpdated, func(m *signal.Message) bool {
				return m.Track.ID == audioID && m.Track.Muted && m.Track.MutedBy == mod.ID()
			}), ""
		})
	}
	// Audio in flight lands while 25 packets of video arrive; then none may
	// follow while 50 more do.
	v0 := videoCount(other)
	wait.For(t, 10*time.Second, "video after the mute", func() bool { return videoCount(other) >= v0+25 })
	before, v1 := audioCount(other), videoCount(other)
	wait.For(t, 10*time.Second, "more video after the mute", func() bool { return videoCount(other) >= v1+50 })
	if got := audioCount(other) - before; got > 0 {
		t.Fatalf("%d audio packets forwarded while 50 video packets arrived after a moderator's mute", got)
	}
	// The owner unmutes: forwarding resumes.
	unmuted := false
	if err := request(loud, &signal.Message{Type: signal.TypeMute, TrackID: audioID, Muted: &unmuted}); err != nil {
		t.Fatalf("owner unmute: %v", err)
	}
	wait.Until(t, 5*time.Second, "audio resumes after the owner unmutes", func() (bool, string) {
		got := audioCount(other) - before
		return got >= 20, ""
	})

	// Removal.
	if err := request(mod, &signal.Message{Type: signal.TypeRemove, ParticipantID: loud.ID()}); err != nil {
		t.Fatalf("moderator remove: %v", err)
	}
	wait.Until(t, 5*time.Second, "loud told it was removed", func() (bool, string) {
		return loud.saw(signal.TypeBye, func(m *signal.Message) bool { return m.Code == signal.CodeRemoved }), ""
	})
	for _, p := range []*testPeer{other, mod} {
		wait.Until(t, 5*time.Second, "the others see loud leave and its tracks end", func() (bool, string) {
			return p.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == loud.ID() }) &&
				p.saw(signal.TypeTrackUnpublished, func(m *signal.Message) bool { return m.Track.ID == audioID }), ""
		})
	}
	cl, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.Join(ctx, "class", "loud again", loudTok)
	if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Fatalf("removed identity rejoins: %v, want forbidden", err)
	}
}

func TestMintTokenRejectsBadParams(t *testing.T) {
	now := time.Now()
	for _, tp := range []access.TokenParams{
		{Room: "", Identity: "a", TTL: time.Hour},
		{Room: "r", Identity: "", TTL: time.Hour},
		{Room: "r", Identity: "a", TTL: 0},
		{Room: "r", Identity: "a", TTL: time.Hour, Role: "admin"},
		{Room: "r", Identity: "a", TTL: time.Hour, Name: "Ada\u202Enimda"},
		{Room: "r", Identity: "a", TTL: time.Hour, Name: "a\r\nb"},
		{Room: "r", Identity: "ad\u200Bmin", TTL: time.Hour},
		{Room: "r", Identity: "\x1b[2J", TTL: time.Hour},
	} {
		if _, err := access.Mint(testSecret, tp, now); err == nil {
			t.Errorf("minted a token for %+v", tp)
		}
	}
	if _, err := access.Mint(nil, access.TokenParams{Room: "r", Identity: "a", TTL: time.Hour}, now); err == nil {
		t.Error("minted a token without a secret")
	}
}
