package room_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/webrtc/v4"
)

// Attacks on WHIP and WHEP sessions by other clients (issue 10): each is
// refused with its status, and the broadcast keeps reaching its viewers.

// httpDo sends one raw request and returns its status, body and headers.
func httpDo(t *testing.T, ctx context.Context, method, target, token, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/sdp")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
}

// broadcast is a WHIP publisher sending audio and video.
type broadcast struct {
	*client.HTTPSession
	srcs []*source
}

func startBroadcast(t *testing.T, ctx context.Context, base, roomName, token string) *broadcast {
	t.Helper()
	b := &broadcast{}
	var groups [][]webrtc.TrackLocal
	for _, kind := range []string{"audio", "video"} {
		src := newSource(t, kind, "obs")
		b.srcs = append(b.srcs, src)
		groups = append(groups, []webrtc.TrackLocal{src.track})
	}
	s, _, err := client.PublishWHIP(ctx, loopbackAPI(t), base, roomName, token, groups...)
	if err != nil {
		t.Fatalf("WHIP: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b.HTTPSession = s
	for _, src := range b.srcs {
		src.run(ctx)
		t.Cleanup(src.halt)
	}
	return b
}

// waitBroadcast waits until member receives the broadcast: from then on a
// WHEP viewer has something to watch.
func waitBroadcast(t *testing.T, member *testPeer, pubID string, b *broadcast) {
	t.Helper()
	wait.Until(t, 15*time.Second, "the member receives the broadcast", func() (bool, string) {
		return checkTracks(member, 10, map[string][]*source{pubID: b.srcs})
	})
}

// count is how many packets the viewer has received.
func (v *whepViewer) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, p := range v.payloads {
		n += len(p)
	}
	return n
}

// keepsReceiving waits for 50 more packets, every one of them sent by b.
func (v *whepViewer) keepsReceiving(t *testing.T, b *broadcast, since int, what string) {
	t.Helper()
	wait.Until(t, 10*time.Second, "the WHEP viewer still receives after "+what, func() (bool, string) {
		v.mu.Lock()
		defer v.mu.Unlock()
		n := 0
		for kind, got := range v.payloads {
			for i, p := range got {
				sent := false
				for _, s := range b.srcs {
					sent = sent || (s.kind == kind && s.wasSent(p))
				}
				if !sent {
					return false, fmt.Sprintf("%s packet %d differs from anything sent", kind, i)
				}
			}
			n += len(got)
		}
		return n-since >= 50, fmt.Sprintf("%d packets since", n-since)
	})
}

// TestWHIPAndWHEPSessionsEndOnlyWithTheirCreatorsToken: on a server with
// tokens, a viewer who knows the publisher's participant id (every member
// does) cannot end the broadcast with it, and nobody can DELETE or PATCH a
// WHIP or WHEP session without the token that created it (401 without a
// token, 403 with another). The broadcast keeps flowing to its viewer and
// the member; the creator's own DELETE ends it.
func TestWHIPAndWHEPSessionsEndOnlyWithTheirCreatorsToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, base := startServer(t, room.Config{AuthSecret: testSecret})
	now := time.Now()
	token := func(identity string, role access.Role) string {
		return mint(t, testSecret, "stage", identity, role, time.Hour, now)
	}
	member := joinWithToken(t, ctx, base, "stage", "member", token("member", access.Speaker))
	obsTok, fanTok, malloryTok := token("obs", access.Speaker), token("fan", access.Viewer), token("mallory", access.Viewer)
	b := startBroadcast(t, ctx, base, "stage", obsTok)
	pubID := whipParticipant(t, member, "obs")
	waitBroadcast(t, member, pubID, b)
	fan := startWHEPWithToken(t, ctx, base, "stage", fanTok)
	fan.keepsReceiving(t, b, 0, "starting")

	whip, whep := b.Location(), fan.Location()
	cases := []struct {
		what, method, target, token string
		want                        int
	}{
		{"DELETE of the publisher's participant id", http.MethodDelete, base + "/whip/stage/" + pubID, malloryTok, http.StatusNotFound},
		{"DELETE of the WHIP session without a token", http.MethodDelete, whip, "", http.StatusUnauthorized},
		{"DELETE of the WHIP session with another valid token", http.MethodDelete, whip, malloryTok, http.StatusForbidden},
		{"DELETE of the WHIP session with the viewer's token", http.MethodDelete, whip, fanTok, http.StatusForbidden},
		{"DELETE of the WHIP session with a garbage token", http.MethodDelete, whip, "x.y.z", http.StatusForbidden},
		{"PATCH of the WHIP session without a token", http.MethodPatch, whip, "", http.StatusUnauthorized},
		{"PATCH of the WHIP session with another token", http.MethodPatch, whip, malloryTok, http.StatusForbidden},
		{"DELETE of the WHEP session without a token", http.MethodDelete, whep, "", http.StatusUnauthorized},
		{"DELETE of the WHEP session with the publisher's token", http.MethodDelete, whep, obsTok, http.StatusForbidden},
		{"the WHEP session's secret under /whip/", http.MethodDelete, strings.Replace(whep, "/whep/", "/whip/", 1), fanTok, http.StatusNotFound},
		{"the WHIP session's secret in another room", http.MethodDelete, strings.Replace(whip, "/stage/", "/other/", 1), obsTok, http.StatusNotFound},
	}
	before := fan.count()
	for _, c := range cases {
		status, body, h := httpDo(t, ctx, c.method, c.target, c.token, "")
		if status != c.want {
			t.Errorf("%s: %d (%s), want %d", c.what, status, body, c.want)
		}
		if status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without a Bearer challenge", c.what)
		}
	}
	fan.keepsReceiving(t, b, before, "the attacks")
	wait.Until(t, 10*time.Second, "the member still receives the broadcast", func() (bool, string) {
		return checkTracks(member, 50, map[string][]*source{pubID: b.srcs})
	})
	if member.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == pubID }) {
		t.Fatal("the broadcast ended during the attacks")
	}

	// The creator's token is let through: PATCH gets its honest 405, and
	// DELETE ends the sessions.
	if status, body, _ := httpDo(t, ctx, http.MethodPatch, whip, obsTok, ""); status != http.StatusMethodNotAllowed {
		t.Errorf("the publisher's PATCH: %d (%s), want 405", status, body)
	}
	if status, body, _ := httpDo(t, ctx, http.MethodDelete, whep, fanTok, ""); status != http.StatusOK {
		t.Errorf("the viewer's DELETE: %d (%s)", status, body)
	}
	_ = b.Close() // the client sends the token it was created with
	wait.Until(t, 10*time.Second, "the publisher's DELETE ends the broadcast", func() (bool, string) {
		return member.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == pubID }), ""
	})
}

// TestOpenServerSessionURLIsASecret: without an auth secret the session
// URL is the only credential. It holds 128 random bits and nothing members
// learn: the publisher's participant id, or guesses, get 404 and the
// broadcast goes on.
func TestOpenServerSessionURLIsASecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, base := startServer(t, room.Config{})
	member := join(t, ctx, base, "open", "member")
	b := startBroadcast(t, ctx, base, "open", "")
	pubID := whipParticipant(t, member, "WHIP")
	waitBroadcast(t, member, pubID, b)
	fan := startWHEP(t, ctx, base, "open")
	fan.keepsReceiving(t, b, 0, "starting")

	for _, loc := range []string{b.Location(), fan.Location()} {
		secret := loc[strings.LastIndex(loc, "/")+2:] // after the kind's letter
		if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) < 16 {
			t.Errorf("session URL %q: the secret is not 128 bits of base64url (%v)", loc, err)
		}
		if strings.Contains(loc, pubID) {
			t.Errorf("session URL %q holds the publisher's participant id", loc)
		}
	}
	if b.Location()[strings.LastIndex(b.Location(), "/"):] == fan.Location()[strings.LastIndex(fan.Location(), "/"):] {
		t.Error("two sessions share a secret")
	}
	before := fan.count()
	for _, target := range []string{
		base + "/whip/open/" + pubID,
		base + "/whep/open/" + pubID,
		base + "/whip/open/W" + base64.RawURLEncoding.EncodeToString(make([]byte, 16)),
		base + "/whip/open/" + url.PathEscape(member.ID()),
	} {
		for _, method := range []string{http.MethodDelete, http.MethodPatch} {
			if status, body, _ := httpDo(t, ctx, method, target, "", ""); status != http.StatusNotFound {
				t.Errorf("%s %s: %d (%s), want 404", method, target, status, body)
			}
		}
	}
	fan.keepsReceiving(t, b, before, "the guesses")
	if member.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == pubID }) {
		t.Fatal("the broadcast ended")
	}
}

// TestWHIPNamesAreCheckedLikeJoin: ?name= with escape sequences, line
// breaks, NUL, bidi overrides or zero-width characters gets 400 before the
// offer is looked at, as join refuses the same names with invalid_field;
// no member hears of them and the meeting's media flows on.
func TestWHIPNamesAreCheckedLikeJoin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, base := startServer(t, room.Config{})
	v := startVictims(t, ctx, base)
	before := v.received()
	bad := []string{"\x1b[2J\x1b[Hadmin", "a\r\nSet-Cookie: x", "nul\x00", "tab\there", "evil\u202Etxt.exe",
		"iso\u2066late", "zero\u200Bwidth", "\uFEFFbom", "word\u2060joiner", "bad\xffutf8", strings.Repeat("n", 65)}
	for _, name := range bad {
		status, body, _ := httpDo(t, ctx, http.MethodPost, base+"/whip/victims?name="+url.QueryEscape(name), "", "v=0\r\n")
		if status != http.StatusBadRequest {
			t.Errorf("WHIP ?name=%q: %d (%s), want 400", name, status, body)
		}
		c, err := signal.Dial(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Request(ctx, &signal.Message{Type: signal.TypeJoin, Room: "victims", Name: name, Version: signal.Version})
		if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeInvalidField {
			t.Errorf("join as %q: %v, want invalid_field", name, err)
		}
		_ = c.Close()
	}
	v.stillFlowing(t, before, "bad WHIP names")
	for _, p := range []*testPeer{v.ada, v.bob} {
		if p.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool { return m.Participant.ID != v.ada.ID() && m.Participant.ID != v.bob.ID() }) {
			t.Errorf("%s was told of a participant with a refused name", p.ID())
		}
	}
}
