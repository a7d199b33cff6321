package room_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
)

// stunCounter counts the STUN packets that reach one UDP address.
type stunCounter struct {
	conn *net.UDPConn
	n    atomic.Int32
}

func listenSTUN(t *testing.T, ip string) *stunCounter {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	s := &stunCounter{conn: c}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 20 && buf[0] < 2 && string(buf[4:8]) == "\x21\x12\xa4\x42" { // a STUN message
				s.n.Add(1)
			}
		}
	}()
	return s
}

func (s *stunCounter) candidate(ufrag string) *signal.Candidate {
	mid, index := "0", uint16(0)
	a := s.conn.LocalAddr().(*net.UDPAddr)
	return &signal.Candidate{Candidate: fmt.Sprintf("candidate:1 1 udp 2130706431 %s %d typ host", a.IP, a.Port),
		SDPMid: &mid, SDPMLineIndex: &index, UsernameFragment: &ufrag}
}

// TestRemoteCandidatesOutsideAllowedNetworksGetNoTraffic: a client cannot
// point the media port at addresses outside -ice-allowed-cidrs (say, a
// service inside the server's network): of two candidates it hands over,
// the server sends connectivity checks only to the allowed one.
func TestRemoteCandidatesOutsideAllowedNetworksGetNoTraffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := room.Config{}
	cfg.SFU.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("127.0.0.3/32")}
	_, base := startServer(t, cfg)
	c, err := signal.Dial(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Join(ctx, "ice", "pointer", ""); err != nil {
		t.Fatal(err)
	}
	pc, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil) // its own candidates are never sent: only the two below
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctx, &signal.Message{Type: signal.TypeOffer, SDP: offer.SDP}); err != nil {
		t.Fatalf("offer: %v", err)
	}
	ufrag := ""
	for _, line := range strings.Split(offer.SDP, "\r\n") {
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok {
			ufrag = v
		}
	}
	allowed, internal := listenSTUN(t, "127.0.0.3"), listenSTUN(t, "127.0.0.2")
	for _, s := range []*stunCounter{internal, allowed} {
		if err := c.Send(&signal.Message{Type: signal.TypeCandidate, Candidate: s.candidate(ufrag)}); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, 15*time.Second, "connectivity checks at the allowed candidate", func() (bool, string) {
		n := allowed.n.Load()
		return n >= 3, fmt.Sprintf("%d STUN packets", n)
	})
	if n := internal.n.Load(); n != 0 {
		t.Fatalf("%d STUN packets sent to a candidate outside the allowed networks", n)
	}
}
