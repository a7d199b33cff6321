package sfu

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/webrtc/v4"
)

// AnswerWhole negotiates once, WHEP style: the answer already holds the
// server's candidates, the offered receive section carries the track, and
// the peer refuses a second negotiation.
func TestAnswerWholeNegotiatesOnce(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 2)
	c := newClient(t, e, clientOpts{manual: true})
	var offer string
	c.do(func() {
		if _, err := c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Error(err)
			return
		}
		o, err := c.pc.CreateOffer(nil)
		if err != nil {
			t.Error(err)
			return
		}
		if err := c.pc.SetLocalDescription(o); err != nil {
			t.Error(err)
		}
		offer = o.SDP
	})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	answer, err := c.peer.AnswerWhole(ctx, offer, []TrackID{recvs[0].ID()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "a=candidate:") {
		t.Fatal("answer without candidates: a WHEP client has no other way to get them")
	}
	c.do(func() {
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
			t.Error(err)
		}
	})
	tr := c.nextTrack()
	if tr.ID() != string(recvs[0].ID()) {
		t.Fatalf("got track %s, want %s", tr.ID(), recvs[0].ID())
	}
	w := watch(tr, false)
	wait.For(t, patience, "media", func() bool { return w.count() >= 10 })
	if _, err := c.peer.AnswerWhole(ctx, offer, []TrackID{recvs[0].ID()}); !errors.Is(err, ErrInvalidSDP) {
		t.Fatalf("second negotiation: %v, want ErrInvalidSDP", err)
	}
	// A change that would renegotiate any other peer schedules nothing.
	if err := c.peer.Subscribe(recvs[1].ID()); err != nil {
		t.Fatal(err)
	}
	c.peer.mu.Lock()
	armed, pending := c.peer.negTimer != nil, c.peer.needNeg
	c.peer.mu.Unlock()
	if armed || !pending {
		t.Fatalf("after a change: timer armed %v, change noted %v; a whole peer never offers", armed, pending)
	}
}
