package room_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/loadtest"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// httpClient is a WHIP or WHEP client written to RFC 9725: one POST of a
// complete offer (no trickle), the answer in the 201 response, DELETE on
// the Location to stop.
type httpClient struct {
	pc       *webrtc.PeerConnection
	location string
	links    []string
}

// postOffer sends pc's complete offer to endpoint and applies the answer.
func postOffer(ctx context.Context, pc *webrtc.PeerConnection, endpoint, token string) (*httpClient, int, string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, 0, "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, 0, "", err
	}
	<-gathered
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return nil, resp.StatusCode, string(body), nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		return nil, resp.StatusCode, "", fmt.Errorf("answer Content-Type %q", ct)
	}
	loc, err := url.Parse(endpoint)
	if err != nil {
		return nil, 0, "", err
	}
	rel, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return nil, 0, "", fmt.Errorf("no Location in the 201")
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return nil, 0, "", fmt.Errorf("apply answer: %w", err)
	}
	return &httpClient{pc: pc, location: loc.ResolveReference(rel).String(), links: resp.Header.Values("Link")}, resp.StatusCode, "", nil
}

func (c *httpClient) delete(ctx context.Context) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, c.location, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func newPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	api, err := loadtest.NewAPI(loadtest.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// whepViewer is a receive-only WHEP client that keeps what it gets.
type whepViewer struct {
	*httpClient
	mu       sync.Mutex
	payloads map[string][][]byte // kind -> payloads
}

func (v *whepViewer) count(kind string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.payloads[kind])
}

func startWHEP(t *testing.T, ctx context.Context, endpoint, token string) (*whepViewer, int, string) {
	t.Helper()
	pc := newPC(t)
	v := &whepViewer{payloads: map[string][][]byte{}}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if p.Padding && len(p.Payload) == 0 {
				continue
			}
			v.mu.Lock()
			v.payloads[tr.Kind().String()] = append(v.payloads[tr.Kind().String()], append([]byte(nil), p.Payload...))
			v.mu.Unlock()
		}
	})
	c, status, body, err := postOffer(ctx, pc, endpoint, token)
	if err != nil {
		t.Fatal(err)
	}
	v.httpClient = c
	return v, status, body
}

// TestWHIPPublishesToWebSocketAndWHEPViewers: a WHIP publisher's VP8 and
// Opus reach a WebSocket member and a WHEP viewer intact; the members get an
// audience count, not a join per viewer; DELETE ends the broadcast for
// everyone.
func TestWHIPPublishesToWebSocketAndWHEPViewers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mgr, base := startServer(t, room.Config{})
	member := join(t, ctx, base, "broadcast", "member")

	pc := newPC(t)
	var srcs []*source
	for _, kind := range []string{"audio", "video"} {
		s := newSource(t, kind, "obs")
		if _, err := pc.AddTransceiverFromTrack(s.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	whip, status, body, err := postOffer(ctx, pc, base+"/whip/broadcast", "")
	if err != nil || whip == nil {
		t.Fatalf("WHIP POST: %d %s %v", status, body, err)
	}
	for _, s := range srcs {
		s.run(ctx)
		defer s.halt()
	}
	pubID := whip.location[strings.LastIndex(whip.location, "/")+1:]
	if !strings.Contains(whip.location, "/whip/broadcast/") {
		t.Fatalf("Location %q", whip.location)
	}
	eventually(t, 15*time.Second, "the WebSocket member receives the WHIP stream intact", func() (bool, string) {
		return checkTracks(member, 30, map[string][]*source{pubID: srcs})
	})

	viewer, status, body := startWHEP(t, ctx, base+"/whep/broadcast", "")
	if viewer.httpClient == nil {
		t.Fatalf("WHEP POST: %d %s", status, body)
	}
	eventually(t, 15*time.Second, "the WHEP viewer receives audio and video intact", func() (bool, string) {
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
	eventually(t, 5*time.Second, "members told the audience count", func() (bool, string) {
		return member.saw(signal.TypeAudience, func(m *signal.Message) bool { return m.Audience == 1 }), ""
	})
	if member.saw(signal.TypeParticipantJoined, func(m *signal.Message) bool { return m.Participant.ID != pubID }) {
		t.Error("a WHEP viewer was announced as a participant")
	}
	if n := mgr.Room("broadcast").Audience(); n != 1 {
		t.Errorf("audience %d, want 1", n)
	}

	// DELETE ends the broadcast: the member sees the publisher leave.
	if code, err := whip.delete(ctx); err != nil || code != http.StatusOK {
		t.Fatalf("DELETE: %d %v", code, err)
	}
	eventually(t, 10*time.Second, "the member sees the WHIP publisher leave", func() (bool, string) {
		return member.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == pubID }), ""
	})
	if code, _ := whip.delete(ctx); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	if code, _ := viewer.delete(ctx); code != http.StatusOK {
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
	speaker := mint(t, secret, "stage", "obs", room.RoleSpeaker, time.Hour, now)
	viewer := mint(t, secret, "stage", "v", room.RoleViewer, time.Hour, now)
	other := mint(t, secret, "elsewhere", "obs", room.RoleSpeaker, time.Hour, now)
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
