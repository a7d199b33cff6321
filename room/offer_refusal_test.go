package room_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/room"
	"github.com/confab-sfu/confab/signal"
	"github.com/pion/webrtc/v4"
	"nhooyr.io/websocket"
)

// TestRefusedOffersAsDocumented: docs/protocol.md promises that an offer
// that does not parse changes nothing and the connection stays open, and
// that one the WebRTC stack refuses once it began applying it (pion cannot
// roll a remote offer back) is answered invalid_sdp, then bye, then a
// 1000 close. Either way the meeting around it goes on.
func TestRefusedOffersAsDocumented(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, base := startServer(t, room.Config{})
	v := startVictims(t, ctx, base)
	before := v.received()

	c, err := signal.Dial(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Alone in its room: no server offer is in the way of its own.
	if _, err := c.Join(ctx, "alone", "clumsy", ""); err != nil {
		t.Fatal(err)
	}
	_, err = c.Request(ctx, &signal.Message{Type: signal.TypeOffer, SDP: "this is not SDP"})
	if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeInvalidSDP {
		t.Fatalf("unparseable offer: %v, want invalid_sdp", err)
	}
	if _, err := c.Request(ctx, &signal.Message{Type: signal.TypeChat, Text: "still here"}); err != nil {
		t.Fatalf("the connection did not stay open after an unparseable offer: %v", err)
	}

	pc, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	noUfrag := strings.Replace(offer.SDP, "a=ice-ufrag:", "a=x-ice-ufrag:", 1)
	_, err = c.Request(ctx, &signal.Message{Type: signal.TypeOffer, SDP: noUfrag})
	if serr := (*signal.Error)(nil); !errors.As(err, &serr) || serr.Code != signal.CodeInvalidSDP {
		t.Fatalf("offer without ice-ufrag: %v, want invalid_sdp first", err)
	}
	var bye *signal.Message
	for m := range c.Messages() {
		if m.Type == signal.TypeBye {
			bye = m
		}
	}
	if bye == nil || !strings.HasPrefix(bye.Message, "media connection failed") || c.CloseStatus() != websocket.StatusNormalClosure {
		t.Fatalf("after the refused offer: bye %+v, close %d; want bye then 1000", bye, c.CloseStatus())
	}
	v.stillFlowing(t, before, "refused offers")
}
