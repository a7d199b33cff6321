package room_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
	"github.com/golang-jwt/jwt/v5"
)

// A moderator's decisions hold on every way into a room (issue 10): a
// removed identity cannot watch over WHEP or publish over WHIP, and a
// speaker demoted to viewer cannot publish again over WHIP.

// TestRemovedIdentityRefusedOnWHEPAndWHIP: a moderator removes "lurker";
// its WHEP player already watching ends, and its still-valid tokens get
// 403 from WHEP and WHIP. The speaker's media keeps reaching the room and
// another WHEP viewer.
func TestRemovedIdentityRefusedOnWHEPAndWHIP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	mgr, base := startServer(t, room.Config{AuthSecret: testSecret})
	now := time.Now()
	token := func(identity string, role access.Role) string {
		return mint(t, testSecret, "class", identity, role, time.Hour, now)
	}
	mod := joinWithToken(t, ctx, base, "class", "mod", token("mod", access.Moderator))
	prof := joinWithToken(t, ctx, base, "class", "prof", token("prof", access.Speaker))
	srcs := publish(t, ctx, prof, "prof", "audio", "video")
	wait.Until(t, 15*time.Second, "the moderator receives the speaker", func() (bool, string) {
		return checkTracks(mod, 20, map[string][]*source{prof.ID(): srcs})
	})
	profCast := &broadcast{srcs: srcs}
	fan := startWHEPWithToken(t, ctx, base, "class", token("fan", access.Viewer))
	lurkView, lurkSpeak := token("lurker", access.Viewer), token("lurker", access.Speaker)
	lurker := joinWithToken(t, ctx, base, "class", "lurker", lurkView)
	lurkerPlayer := startWHEPWithToken(t, ctx, base, "class", lurkView)
	fan.keepsReceiving(t, profCast, 0, "starting")
	lurkerPlayer.keepsReceiving(t, profCast, 0, "starting")
	if n := mgr.Room("class").Audience(); n != 2 {
		t.Fatalf("audience %d before the removal, want 2", n)
	}

	if _, err := mod.Client().Request(ctx, &signal.Message{Type: signal.TypeRemove, ParticipantID: lurker.ID()}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	wait.Until(t, 5*time.Second, "the lurker's WebSocket is told and its WHEP player ends", func() (bool, string) {
		n := mgr.Room("class").Audience()
		return lurker.saw(signal.TypeBye, func(m *signal.Message) bool { return m.Code == signal.CodeRemoved }) && n == 1, ""
	})
	before := fan.count()
	for _, c := range []struct{ what, path, token string }{
		{"WHEP with the removed identity's viewer token", "/whep/class", lurkView},
		{"WHIP with the removed identity's speaker token", "/whip/class", lurkSpeak},
	} {
		if status, body, _ := httpDo(t, ctx, http.MethodPost, base+c.path, c.token, "v=0\r\n"); status != http.StatusForbidden {
			t.Errorf("%s: %d (%s), want 403", c.what, status, body)
		}
	}
	if n := mgr.Room("class").Audience(); n != 1 {
		t.Errorf("audience %d after the refusals, want 1 (the fan)", n)
	}
	fan.keepsReceiving(t, profCast, before, "the removal")
	wait.Until(t, 10*time.Second, "the moderator still receives the speaker", func() (bool, string) {
		return checkTracks(mod, 100, map[string][]*source{prof.ID(): srcs})
	})
}

// TestDemotedSpeakerCannotPublishAgainOverWHIP: "spk" is in the room from
// a browser and from OBS (WHIP) with one speaker token. A moderator demotes
// it to viewer: its WHIP broadcast ends, and its old speaker token gets 403
// from WHIP. Another speaker's media keeps reaching the room.
func TestDemotedSpeakerCannotPublishAgainOverWHIP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, base := startServer(t, room.Config{AuthSecret: testSecret})
	now := time.Now()
	token := func(identity string, role access.Role) string {
		return mint(t, testSecret, "hall", identity, role, time.Hour, now)
	}
	mod := joinWithToken(t, ctx, base, "hall", "mod", token("mod", access.Moderator))
	prof := joinWithToken(t, ctx, base, "hall", "prof", token("prof", access.Speaker))
	srcs := publish(t, ctx, prof, "prof", "audio", "video")
	spkTok := token("spk", access.Speaker)
	browser := joinWithToken(t, ctx, base, "hall", "spk in a browser", spkTok)
	obs := startBroadcast(t, ctx, base, "hall", spkTok)
	obsID := whipParticipant(t, mod, "spk")
	waitBroadcast(t, mod, obsID, obs)

	if _, err := mod.Client().Request(ctx, &signal.Message{Type: signal.TypePromote, ParticipantID: browser.ID(), Role: signal.RoleViewer}); err != nil {
		t.Fatalf("demote: %v", err)
	}
	wait.Until(t, 5*time.Second, "the browser is told, and the WHIP broadcast of the same identity ends", func() (bool, string) {
		told := browser.saw(signal.TypePermissions, func(m *signal.Message) bool { return m.Role == signal.RoleViewer })
		left := mod.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == obsID })
		return told && left, ""
	})
	status, body, _ := httpDo(t, ctx, http.MethodPost, base+"/whip/hall", spkTok, "v=0\r\n")
	if status != http.StatusForbidden {
		t.Fatalf("WHIP with the demoted identity's old speaker token: %d (%s), want 403", status, body)
	}
	wait.Until(t, 10*time.Second, "the moderator still receives the other speaker", func() (bool, string) {
		return checkTracks(mod, 100, map[string][]*source{prof.ID(): srcs})
	})
	if mod.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool { return m.Participant.Name == "spk" && m.Participant.ID != obsID }) {
		t.Error("a new WHIP publisher of the demoted identity was announced")
	}
}

// TestAnnouncedRoleMatchesPermissions: on an open server a join asking to
// be "moderator" is announced as the speaker it is (and may not
// moderate); a signed token with an unknown role, with permissions beyond
// its role, or with hidden characters in its name or identity is refused
// as invalid_token by join and with 401 by WHIP.
func TestAnnouncedRoleMatchesPermissions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, open := startServer(t, room.Config{})
	first, err := signal.Dial(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.Join(ctx, "open", "first", ""); err != nil {
		t.Fatal(err)
	}
	faker, err := signal.Dial(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	defer faker.Close()
	w, err := faker.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: "open", Name: "boss", Version: signal.Version, Role: signal.RoleModerator})
	if err != nil {
		t.Fatal(err)
	}
	if w.Participant.Role != signal.RoleSpeaker || w.Permissions.Moderate {
		t.Errorf("open join as moderator: role %q, permissions %+v; want speaker without moderate", w.Participant.Role, *w.Permissions)
	}
	var joined *signal.Message
	for m := range first.Messages() {
		if m.Type == signal.TypeParticipantJoined {
			joined = m
			break
		}
	}
	if joined == nil || joined.Participant.Role != signal.RoleSpeaker {
		t.Errorf("the others were told %+v, want role speaker", joined)
	}
	_, err = faker.Request(ctx, &signal.Message{Type: signal.TypeRemove, ParticipantID: w.Members[0].ID})
	if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeForbidden {
		t.Errorf("the self-declared moderator removes someone: %v, want forbidden", err)
	}

	_, secured := startServer(t, room.Config{AuthSecret: testSecret})
	sign := func(c access.Claims) string {
		c.Room = "r"
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		if c.Subject == "" {
			c.Subject = "someone"
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for what, tok := range map[string]string{
		"an unknown role":                     sign(access.Claims{Role: "admin"}),
		"permissions beyond the role":         sign(access.Claims{Role: access.Viewer, Perms: access.Permissions{Subscribe: true, Publish: true, Moderate: true}}),
		"neither role nor permissions":        sign(access.Claims{}),
		"a right-to-left override in a name":  sign(access.Claims{Role: access.Speaker, Name: "Ada\u202Enimda"}),
		"an escape sequence in a name":        sign(access.Claims{Role: access.Speaker, Name: "\x1b[2JAda"}),
		"a zero-width space in the identity":  sign(access.Claims{Role: access.Speaker, RegisteredClaims: jwt.RegisteredClaims{Subject: "ad\u200Bmin"}}),
		"a line break in the identity":        sign(access.Claims{Role: access.Speaker, RegisteredClaims: jwt.RegisteredClaims{Subject: "a\nb"}}),
		"a name of more than 64 characters":   sign(access.Claims{Role: access.Speaker, Name: strings.Repeat("n", 65)}),
		"an identity of more than 128 bytes":  sign(access.Claims{Role: access.Speaker, RegisteredClaims: jwt.RegisteredClaims{Subject: strings.Repeat("i", 129)}}),
		"a byte order mark before the name":   sign(access.Claims{Role: access.Speaker, Name: "\uFEFFAda"}),
		"a pop directional isolate in a name": sign(access.Claims{Role: access.Speaker, Name: "Ada\u2069"}),
	} {
		c, err := signal.Dial(ctx, secured)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Join(ctx, "r", "x", tok)
		if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeInvalidToken {
			t.Errorf("join with %s: %v, want invalid_token", what, err)
		}
		_ = c.Close()
		if status, body, _ := httpDo(t, ctx, http.MethodPost, secured+"/whip/r", tok, "v=0\r\n"); status != http.StatusUnauthorized {
			t.Errorf("WHIP with %s: %d (%s), want 401", what, status, body)
		}
	}
	// The same claims made honestly are accepted.
	c, err := signal.Dial(ctx, secured)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if w, err := c.Join(ctx, "r", "x", sign(access.Claims{Role: access.Viewer, Name: "Zoë 🎻 \u05D0\u05D1"})); err != nil || w.Participant.Role != signal.RoleViewer {
		t.Errorf("an honest viewer token: %v", err)
	}
}
