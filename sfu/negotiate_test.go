package sfu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
)

// publishN publishes n single-stream cameras from a new client and returns
// the server's Receivers in publishing order.
func publishN(t *testing.T, e *Engine, n int) (*client, []*Receiver) {
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
