package room_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/confab-sfu/confab/signal/client"
	"github.com/pion/webrtc/v4"
)

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestICEOverTCP: a client whose network allows only TCP connects over the
// server's single ICE-TCP port, and media flows both ways.
func TestICEOverTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := room.Config{}
	cfg.SFU.TCPPort = freeTCPPort(t)
	_, url := startServer(t, cfg)
	udp := join(t, ctx, url, "tcp", "udp")
	tcp := joinWith(t, ctx, url, "tcp", "tcp", client.APIOptions{Loopback: true, TCPOnly: true}, nil)
	mediaBothWays(t, ctx, udp, tcp, "over ICE-TCP")
	pair, err := selectedPair(tcp.PeerConnection())
	if err != nil {
		t.Fatal(err)
	}
	if pair.Local.Protocol != webrtc.ICEProtocolTCP || pair.Remote.Port != uint16(cfg.SFU.TCPPort) {
		t.Fatalf("selected pair %s: want TCP to port %d", pair, cfg.SFU.TCPPort)
	}
	t.Logf("path: %s", pair)
}

// TestMediaThatNeverConnectsIsDropped: a client that negotiates and then
// goes silent (its network died mid-setup) is disconnected after the
// connect timeout, with the reason, and leaves the room.
func TestMediaThatNeverConnectsIsDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := room.Config{}
	cfg.SFU.ConnectTimeout = 2 * time.Second
	mgr, url := startServer(t, cfg)
	watcher := join(t, ctx, url, "silent", "watcher")

	cl, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w, err := cl.Join(ctx, "silent", "ghost", "")
	if err != nil {
		t.Fatal(err)
	}
	// A real offer from a PeerConnection that is closed right after: ICE
	// can never succeed.
	api, err := client.NewAPI(client.APIOptions{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.Close()
	if _, err := cl.Request(ctx, &signal.Message{Type: signal.TypeOffer, SDP: offer.SDP}); err != nil {
		t.Fatalf("offer: %v", err)
	}
	var bye *signal.Message
	wait.Until(t, 30*time.Second, "the ghost is disconnected", func() (bool, string) {
		for {
			select {
			case m, ok := <-cl.Messages():
				if !ok {
					return bye != nil, "closed without bye"
				}
				if m.Type == signal.TypeBye {
					bye = m
				}
				continue
			default:
			}
			return false, ""
		}
	})
	if !strings.Contains(bye.Message, "did not connect") {
		t.Errorf("bye %q: want the connect timeout as the reason", bye.Message)
	}
	wait.Until(t, 10*time.Second, "others see the ghost leave", func() (bool, string) {
		return watcher.saw(signal.TypeParticipantLeft, func(m *signal.Message) bool { return m.Participant.ID == w.Participant.ID }), ""
	})
	if r := mgr.Room("silent"); r != nil && len(r.Participants()) != 1 {
		t.Errorf("room still lists %v", r.Participants())
	}
}
