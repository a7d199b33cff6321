package sfu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/webrtc/v4"
)

// publishN publishes n single-stream cameras from a new client and returns
// the server's Receivers in publishing order.
func publishN(t testing.TB, e *Engine, n int) (*client, []*Receiver) {
	t.Helper()
	pub := newClient(t, e, clientOpts{})
	var recvs []*Receiver
	for i := 0; i < n; i++ {
		src := newSource(t, NewID("cam"), false)
		src.publish(t, pub, SourceCamera)
		recvs = append(recvs, pub.nextReceiver())
	}
	return pub, recvs
}

func mediaSections(sdp string) int { return strings.Count(sdp, "\nm=") }

// The server offers each change, the client answers, and media flows; a
// removed track's media section is reused by the next one, so the SDP does
// not grow with every subscribe and unsubscribe.
func TestServerOfferAnswerCycles(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 2)
	sub := newClient(t, e, clientOpts{})

	d0, err := subscribe(sub, recvs[0])
	if err != nil {
		t.Fatal(err)
	}
	o1 := wait.Recv(t, sub.answered, patience, "the first server offer")
	if o1.mids == nil || len(o1.mids) != 1 {
		t.Fatalf("first offer maps %v, want one section for %s", o1.mids, recvs[0].ID())
	}
	for _, id := range o1.mids {
		if id != recvs[0].ID() {
			t.Fatalf("offer maps a section to %s, want %s", id, recvs[0].ID())
		}
	}
	tr := sub.nextTrack()
	if info := recvs[0].Info(); tr.ID() != string(info.ID) || tr.StreamID() != info.StreamID {
		t.Fatalf("client got track %s/%s, want %s/%s", tr.StreamID(), tr.ID(), info.StreamID, info.ID)
	}
	w := watch(tr, false)
	wait.For(t, patience, "media of the first track", func() bool { return w.count() >= 10 })
	if again, err := subscribe(sub, recvs[0]); err != nil || again != d0 {
		t.Fatalf("subscribing twice made a second DownTrack (%v)", err)
	}

	sub.peer.Unsubscribe(recvs[0].ID())
	o2 := wait.Recv(t, sub.answered, patience, "the offer removing the track")
	if len(o2.mids) != 0 {
		t.Fatalf("offer after unsubscribe still maps %v", o2.mids)
	}
	if err := sub.peer.Subscribe(recvs[1].ID()); err != nil {
		t.Fatal(err)
	}
	o3 := wait.Recv(t, sub.answered, patience, "the offer adding the second track")
	if mediaSections(o3.sdp) != mediaSections(o1.sdp) {
		t.Fatalf("SDP grew from %d to %d media sections: the free section was not reused",
			mediaSections(o1.sdp), mediaSections(o3.sdp))
	}
	tr2 := sub.nextTrack()
	if tr2.ID() != string(recvs[1].ID()) {
		t.Fatalf("client got %s, want %s", tr2.ID(), recvs[1].ID())
	}
	w2 := watch(tr2, false)
	wait.For(t, patience, "media of the second track", func() bool { return w2.count() >= 10 })
	if got := len(sub.peer.DownTracks()); got != 1 || sub.peer.DownTrack(recvs[1].ID()) == nil {
		t.Fatalf("%d DownTracks, want only the second track's", got)
	}
}

// Subscribing to several tracks at once makes one offer; changes made while
// an offer is outstanding wait for its answer and go out together.
func TestTrackChangesBatchIntoOneOffer(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 4)
	sub := newClient(t, e, clientOpts{manual: true})
	for _, r := range recvs[:3] {
		if err := sub.peer.Subscribe(r.ID()); err != nil {
			t.Fatal(err)
		}
	}
	o1 := wait.Recv(t, sub.offers, patience, "a server offer")
	if len(o1.mids) != 3 {
		t.Fatalf("first offer carries %d tracks, want all 3 batched", len(o1.mids))
	}
	// With o1 outstanding, a further change is only noted.
	if err := sub.peer.Subscribe(recvs[3].ID()); err != nil {
		t.Fatal(err)
	}
	sub.peer.mu.Lock()
	armed, pending := sub.peer.negTimer != nil, sub.peer.needNeg
	sub.peer.mu.Unlock()
	if armed || !pending {
		t.Fatalf("change during an outstanding offer: timer armed %v, pending %v; want it held until the answer", armed, pending)
	}
	sub.answerNow(o1)
	o2 := wait.Recv(t, sub.offers, patience, "the offer after the answer")
	if len(o2.mids) != 4 {
		t.Fatalf("second offer maps %d tracks, want 4", len(o2.mids))
	}
	sub.answerNow(o2)
	for i := 0; i < 4; i++ {
		sub.nextTrack()
	}
}

// A client offer while a server offer is outstanding is refused with
// ErrGlare and changes nothing; the client takes the server's offer, offers
// again, and media flows both ways.
func TestGlareRefusedThenRecovered(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	c := newClient(t, e, clientOpts{manual: true})
	src := newSource(t, "mine", false)
	src.publish(t, c, SourceCamera)
	mine := c.nextReceiver()

	if err := c.peer.Subscribe(recvs[0].ID()); err != nil {
		t.Fatal(err)
	}
	o := wait.Recv(t, c.offers, patience, "the server offer")
	// The client renegotiates at the same moment (say, its track became a
	// screen share): refused, and nothing of it is kept.
	if err := c.offer(map[string]Source{"mine": SourceScreen}); !errors.Is(err, ErrGlare) {
		t.Fatalf("client offer during a server offer: %v, want ErrGlare", err)
	}
	c.peer.mu.Lock()
	kept := c.peer.sources["mine"]
	c.peer.mu.Unlock()
	if kept != SourceCamera {
		t.Fatalf("the refused offer changed the peer: source %q", kept)
	}

	c.answerNow(o) // the polite client takes the server's offer ...
	if err := c.offer(map[string]Source{"mine": SourceScreen}); err != nil {
		t.Fatalf("client offer after the server's was answered: %v", err) // ... and offers again
	}
	w := watch(c.nextTrack(), false)
	wait.For(t, patience, "the subscribed media", func() bool { return w.count() >= 10 })
	before := mine.LayerStats()[0].Packets
	wait.For(t, patience, "the published media to keep flowing", func() bool {
		return mine.LayerStats()[0].Packets >= before+10
	})
}

// A client that never answers a server offer is failed when the answer
// window passes: pion cannot roll the offer back, so it could never be
// renegotiated again.
func TestUnansweredOfferTimesOut(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	e.offerWindow = 300 * time.Millisecond
	_, recvs := publishN(t, e, 1)
	c := newClient(t, e, clientOpts{manual: true})
	if err := c.peer.Subscribe(recvs[0].ID()); err != nil {
		t.Fatal(err)
	}
	wait.Recv(t, c.offers, patience, "the server offer")
	sent := time.Now()
	err := wait.Recv(t, c.failed, patience, "the peer to fail")
	if !errors.Is(err, errOfferTimedOut) {
		t.Fatalf("failed with %v, want errOfferTimedOut", err)
	}
	if waited := time.Since(sent); waited < 250*time.Millisecond {
		t.Fatalf("failed %v after the offer, before the window of %v", waited, e.offerWindow)
	}
}

// Bad SDP and answers out of turn are refused with errors that keep both
// the sentinel and the cause.
func TestNegotiationErrors(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	p, err := e.NewPeer(PeerParams{ID: "P1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.HandleAnswer("v=0"); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("answer without an offer: %v, want ErrNoOffer", err)
	}
	err = p.HandleOffer("not sdp", nil, func(string) { t.Error("garbage answered") })
	if !errors.Is(err, ErrInvalidSDP) {
		t.Fatalf("garbage offer: %v, want ErrInvalidSDP", err)
	}
	var cause error
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		cause = u
	}
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range multi.Unwrap() {
			if e != ErrInvalidSDP {
				cause = e
			}
		}
	}
	if cause == nil || cause == ErrInvalidSDP || !strings.Contains(err.Error(), "parse offer") {
		t.Fatalf("garbage offer error %q lost its cause", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.HandleOffer("v=0", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("offer after close: %v, want ErrClosed", err)
	}
}

// Offers are checked against the publish permission and the track limit
// before anything is applied.
func TestOffersCheckedAgainstPublishRights(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	denied := newClient(t, e, clientOpts{params: PeerParams{CanPublish: func() bool { return false }}})
	src := newSource(t, "cam", false)
	denied.addSender(src.locals()...)
	if err := denied.offer(nil); !errors.Is(err, ErrPublishDenied) {
		t.Fatalf("offer without the publish right: %v, want ErrPublishDenied", err)
	}
	limited := newClient(t, e, clientOpts{params: PeerParams{MaxTracks: 1}})
	limited.addSender(newSource(t, "a", false).locals()...)
	limited.addSender(newSource(t, "b", false).locals()...)
	if err := limited.offer(nil); !errors.Is(err, ErrTooManyTracks) {
		t.Fatalf("two tracks over a limit of one: %v, want ErrTooManyTracks", err)
	}
	if limited.peer.pc.RemoteDescription() != nil {
		t.Fatal("a refused offer was applied")
	}
}

// iceUfrag is the first a=ice-ufrag of an SDP.
func iceUfrag(sdp string) string {
	_, rest, _ := strings.Cut(sdp, "a=ice-ufrag:")
	u, _, _ := strings.Cut(rest, "\r\n")
	return u
}

// A client that offers right after answering the server's first offer (as
// the web client does when it publishes into a room with tracks) gets an
// answer with the server's ICE credentials. pion starts ICE asynchronously
// after the first exchange; an offer applied before that was taken for an
// ICE restart, and its answer carried new credentials, which Firefox
// refuses: its media never connected (the server logged "handshake error:
// EOF" when the client gave up).
func TestOfferRightAfterFirstAnswerKeepsICECredentials(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	for i := range 16 {
		sub := newClient(t, e, clientOpts{manual: true})
		if err := sub.peer.Subscribe(recvs[0].ID()); err != nil {
			t.Fatal(err)
		}
		o := wait.Recv(t, sub.offers, patience, "the server's first offer")
		src := newSource(t, NewID("cam"), false)
		var answer string
		var err error
		sub.do(func() {
			if err = sub.answer(o); err != nil {
				return
			}
			if _, err = sub.pc.AddTransceiverFromTrack(src.tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				return
			}
			var off webrtc.SessionDescription
			if off, err = sub.pc.CreateOffer(nil); err != nil {
				return
			}
			err = sub.peer.HandleOffer(off.SDP, nil, func(a string) { answer = a })
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := iceUfrag(answer), iceUfrag(o.sdp); got != want {
			t.Fatalf("client %d: the answer's ICE ufrag is %q, the server's offer had %q: an ICE restart nobody asked for", i, got, want)
		}
	}
}

// A subscriber that cannot decode a track's codec (an H.264-only browser
// and a VP8 track) answers without it. The answer is accepted, the track
// is bound and sends nothing, and the connection goes on: refusing the
// answer would leave the offer outstanding until the peer is failed.
func TestAnswerWithoutTheTracksCodecIsAccepted(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	_, recvs := publishN(t, e, 1)
	sub := newClient(t, e, clientOpts{manual: true})
	if err := sub.peer.Subscribe(recvs[0].ID()); err != nil {
		t.Fatal(err)
	}
	d := sub.peer.DownTrack(recvs[0].ID())
	o := wait.Recv(t, sub.offers, patience, "the server's offer")
	var err error
	h264 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102}
	sub.do(func() {
		if err = sub.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: o.sdp}); err != nil {
			return
		}
		for _, tr := range sub.pc.GetTransceivers() {
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				if err = tr.SetCodecPreferences([]webrtc.RTPCodecParameters{h264}); err != nil {
					return
				}
			}
		}
		var ans webrtc.SessionDescription
		if ans, err = sub.pc.CreateAnswer(nil); err != nil {
			return
		}
		if strings.Contains(ans.SDP, "VP8") {
			err = errors.New("the H.264-only answer lists VP8")
			return
		}
		if err = sub.pc.SetLocalDescription(ans); err != nil {
			return
		}
		err = sub.peer.HandleAnswer(ans.SDP)
	})
	if err != nil {
		t.Fatalf("answer without VP8: %v", err)
	}
	wait.For(t, patience, "the subscriber connected", sub.peer.Connected)
	// What must not happen, checked for a second.
	for range 20 {
		if d.Stats().Packets != 0 {
			t.Fatalf("%d packets of a codec the subscriber cannot decode were sent", d.Stats().Packets)
		}
		select {
		case err := <-sub.failed:
			t.Fatalf("the subscriber's peer failed: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
