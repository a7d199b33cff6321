package room_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/room/access"
	"github.com/confab-sfu/confab/room/addrlimit"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/webrtc/v4"
)

// The WHIP and WHEP clients are package client's (client.PublishWHIP,
// client.Watch), written to RFC 9725: one POST of a complete offer, the
// answer in the 201, DELETE on the Location to stop.

func deleteSession(ctx context.Context, location string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// whipParticipant waits until member sees a participant named name join
// and returns its id.
func whipParticipant(t *testing.T, member *testPeer, name string) string {
	t.Helper()
	var id string
	wait.Until(t, 10*time.Second, "the member sees "+name+" join", func() (bool, string) {
		return member.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool {
			if m.Participant.Name == name {
				id = m.Participant.ID
			}
			return id != ""
		}), ""
	})
	return id
}

func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// whepViewer is a WHEP client that keeps what it gets.
type whepViewer struct {
	*client.HTTPSession
	mu       sync.Mutex
	payloads map[string][][]byte // kind -> payloads
}

func startWHEP(t *testing.T, ctx context.Context, base, roomName string) *whepViewer {
	t.Helper()
	return startWHEPWithToken(t, ctx, base, roomName, "")
}

// startWHEPWithToken starts a WHEP viewer presenting a bearer token.
func startWHEPWithToken(t *testing.T, ctx context.Context, base, roomName, token string) *whepViewer {
	t.Helper()
	v := &whepViewer{payloads: map[string][][]byte{}}
	s, err := client.Watch(ctx, loopbackAPI(t), base, roomName, token, func(rt *client.RemoteTrack) {
		go func() {
			for {
				p, _, err := rt.Track.ReadRTP()
				if err != nil {
					return
				}
				if p.Padding && len(p.Payload) == 0 {
					continue
				}
				v.mu.Lock()
				v.payloads[rt.Info.Kind] = append(v.payloads[rt.Info.Kind], append([]byte(nil), p.Payload...))
				v.mu.Unlock()
			}
		}()
	})
	if err != nil {
		t.Fatalf("WHEP: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	v.HTTPSession = s
	return v
}

// TestWHIPPublishesToWebSocketAndWHEPViewers: a WHIP publisher's VP8 and
// Opus reach a WebSocket member and a WHEP viewer intact; the members get an
// audience count, not a join per viewer; DELETE ends the broadcast for
// everyone.
func TestWHIPPublishesToWebSocketAndWHEPViewers(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mgr, base := startServer(t, room.Config{})
	member := join(t, ctx, base, "broadcast", "member")

	var srcs []*source
	var groups [][]webrtc.TrackLocal
	for _, kind := range []string{"audio", "video"} {
		src := newSource(t, kind, "obs")
		srcs = append(srcs, src)
		groups = append(groups, []webrtc.TrackLocal{src.track})
	}
	whip, _, err := client.PublishWHIP(ctx, loopbackAPI(t), base, "broadcast", "", groups...)
	if err != nil {
		t.Fatalf("WHIP: %v", err)
	}
	t.Cleanup(func() { _ = whip.Close() })
	for _, src := range srcs {
		src.run(ctx)
		defer src.halt()
	}
	if !strings.Contains(whip.Location(), "/whip/broadcast/") {
		t.Fatalf("Location %q", whip.Location())
	}
	pubID := whipParticipant(t, member, "WHIP")
	if strings.Contains(whip.Location(), pubID) {
		t.Fatalf("the session URL %q holds the publisher's participant id %s, which every member knows", whip.Location(), pubID)
	}
	wait.Until(t, 15*time.Second, "the WebSocket member receives the WHIP stream intact", func() (bool, string) {
		return checkTracks(member, 30, map[string][]*source{pubID: srcs})
	})

	viewer := startWHEP(t, ctx, base, "broadcast")
	wait.Until(t, 15*time.Second, "the WHEP viewer receives audio and video intact", func() (bool, string) {
		viewer.mu.Lock()
		defer viewer.mu.Unlock()
		for _, s := range srcs {
			got := viewer.payloads[s.kind]
			if len(got) < 30 {
				return false, fmt.Sprintf("%d %s packets", len(got), s.kind)
			}
			for i, p := range got {
				if !s.wasSent(p) {
					return false, fmt.Sprintf("%s packet %d differs from anything sent", s.kind, i)
				}
			}
		}
		return true, ""
	})
	wait.Until(t, 5*time.Second, "members told the audience count", func() (bool, string) {
		return member.saw(signal.TypeAudience, func(m *signal.Message) bool { return m.Audience == 1 }), ""
	})
	if member.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool { return m.Participant.ID != pubID }) {
		t.Error("a WHEP viewer was announced as a participant")
	}
	if n := mgr.Room("broadcast").Audience(); n != 1 {
		t.Errorf("audience %d, want 1", n)
	}

	// DELETE ends the broadcast: the member sees the publisher leave.
	if code, err := deleteSession(ctx, whip.Location()); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	wait.Until(t, 10*time.Second, "the member sees the WHIP publisher leave", func() (bool, string) {
		return member.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == pubID }), ""
	})
	if code, _ := deleteSession(ctx, whip.Location()); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	if code, _ := deleteSession(ctx, viewer.Location()); code != http.StatusOK {
		t.Errorf("WHEP DELETE: %d", code)
	}
}

// TestWHIPAndWHEPRefusals: each bad request gets its HTTP status.
func TestWHIPAndWHEPRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secret := []byte("whip test secret")
	_, base := startServer(t, room.Config{AuthSecret: secret})
	post := func(path, ctype, token, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	now := time.Now()
	speaker := mint(t, secret, "stage", "obs", access.Speaker, time.Hour, now)
	viewer := mint(t, secret, "stage", "v", access.Viewer, time.Hour, now)
	other := mint(t, secret, "elsewhere", "obs", access.Speaker, time.Hour, now)
	cases := []struct {
		what, path, ctype, token, body string
		want                           int
	}{
		{"no token", "/whip/stage", "application/sdp", "", "v=0", http.StatusUnauthorized},
		{"bad token", "/whip/stage", "application/sdp", "garbage", "v=0", http.StatusUnauthorized},
		{"token for another room", "/whip/stage", "application/sdp", other, "v=0", http.StatusUnauthorized},
		{"viewer publishing", "/whip/stage", "application/sdp", viewer, "v=0", http.StatusForbidden},
		{"not SDP", "/whip/stage", "application/json", speaker, "{}", http.StatusUnsupportedMediaType},
		{"malformed offer", "/whip/stage", "application/sdp", speaker, "this is not sdp", http.StatusBadRequest},
		{"too big", "/whip/stage", "application/sdp", speaker, strings.Repeat("a", 70<<10), http.StatusRequestEntityTooLarge},
		{"bad room name", "/whip/.hidden", "application/sdp", speaker, "v=0", http.StatusNotFound},
		{"WHEP of an empty room", "/whep/stage", "application/sdp", viewer, "v=0", http.StatusNotFound},
	}
	for _, c := range cases {
		if got, body := post(c.path, c.ctype, c.token, c.body); got != c.want {
			t.Errorf("%s: %d (%s), want %d", c.what, got, strings.TrimSpace(body), c.want)
		}
	}
	for _, m := range []string{http.MethodDelete, http.MethodPatch} {
		req, _ := http.NewRequestWithContext(ctx, m, base+"/whip/stage/Pnosuchsession", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s of an unknown session: %d, want 404", m, resp.StatusCode)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/whip/stage", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestWHIPSessionsCountPerAddress: WHIP and WHEP sessions count against
// the per-address limit like WebSockets, and give their place back when
// they end.
func TestWHIPSessionsCountPerAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, base := startServer(t, room.Config{Addrs: addrlimit.New(1)})
	src := newSource(t, "audio", "obs")
	whip, _, err := client.PublishWHIP(ctx, loopbackAPI(t), base, "capped", "", []webrtc.TrackLocal{src.track})
	if err != nil {
		t.Fatalf("first session: %v", err)
	}
	var herr *client.HTTPStatusError
	if _, err := client.Watch(ctx, loopbackAPI(t), base, "capped", "", nil); !errors.As(err, &herr) || herr.Status != http.StatusTooManyRequests {
		t.Fatalf("second session from the same address: %v, want 429", err)
	}
	_ = whip.Close()
	again, _, err := client.PublishWHIP(ctx, loopbackAPI(t), base, "capped", "", []webrtc.TrackLocal{newSource(t, "audio", "obs2").track})
	if err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
	_ = again.Close()
}
