package room_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/confab-sfu/confab/room/turn"

	"github.com/confab-sfu/confab/room"
	"github.com/pion/webrtc/v4"
)

// dataOffer is a data-channel-only offer from a pion client.
func dataOffer(t *testing.T, withVideo bool) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.CreateDataChannel("check", nil); err != nil {
		t.Fatal(err)
	}
	if withVideo {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func postCheck(t *testing.T, base, transport, sdp string) (int, string) {
	t.Helper()
	res, err := http.Post(base+"/check/ice?transport="+transport, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The check endpoint: the configuration a participant would get; answers
// with one transport's candidates only; refuses media, unknown transports
// and a transport the server does not offer; and rate-limits each address.
func TestConnectionCheckEndpoint(t *testing.T) {
	_, base := startServer(t, room.Config{ICE: turn.ICE{TURN: turn.Credentials{URLs: []string{"turn:127.0.0.1:3478"}, Secret: "s"}}})
	res, err := http.Get(base + "/check/config")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ICEServers []struct {
			URLs     []string `json:"urls"`
			Username string   `json:"username"`
		} `json:"iceServers"`
		TCP bool `json:"tcp"`
	}
	if err := json.NewDecoder(res.Body).Decode(&cfg); err != nil || len(cfg.ICEServers) != 1 || cfg.ICEServers[0].Username == "" || cfg.TCP {
		t.Fatalf("config %+v (%v): want the TURN server with credentials, no TCP", cfg, err)
	}
	res.Body.Close()

	offer := dataOffer(t, false)
	status, answer := postCheck(t, base, "udp", offer)
	if status != http.StatusCreated || !strings.Contains(answer, " udp ") || strings.Contains(answer, " tcp ") {
		t.Fatalf("udp check: %d %q, want 201 with udp candidates only", status, answer)
	}
	if status, body := postCheck(t, base, "tcp", offer); status != http.StatusNotFound {
		t.Errorf("tcp check without -ice-tcp-port: %d %q, want 404", status, body)
	}
	if status, body := postCheck(t, base, "udp", dataOffer(t, true)); status != http.StatusBadRequest || !strings.Contains(body, "data channel only") {
		t.Errorf("check offering video: %d %q, want 400", status, body)
	}
	if status, _ := postCheck(t, base, "carrier-pigeon", offer); status != http.StatusBadRequest {
		t.Errorf("unknown transport: %d, want 400", status)
	}
	// Four checks spent so far (refused ones count too); the allowance is
	// twelve in a burst.
	limited := 0
	for range 10 {
		if status, _ := postCheck(t, base, "carrier-pigeon", offer); status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 2 {
		t.Errorf("%d of 10 more checks were refused, want 2 (a burst of 12)", limited)
	}
}
