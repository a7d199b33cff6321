package sfu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// A camera and a microphone published on node A reach a subscriber on node
// B through one relay link: B's Receivers keep the origin's ids, source and
// codec, the subscriber gets the publisher's payloads byte for byte, and
// the microphone's audio level crosses too.
func TestRelayForwardsMediaUnchanged(t *testing.T) {
	checkLeaks(t)
	a, b := newTestEngine(t), newTestEngine(t)
	pub := newClient(t, a, clientOpts{})
	cam := newSource(t, "cam", false)
	publishSource(t, pub, cam, "camera")
	camA := pub.nextReceiver()
	mic := newAudioSource(t, "mic", 30)
	mic.publish(t, pub)
	micA := pub.nextReceiver()

	pair := newRelayPair(t, a, b, false)
	for _, r := range []*Receiver{camA, micA} {
		if err := pair.out.Send(r, []int{0}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[TrackID]*Receiver{}
	for range 2 {
		r := pair.nextTrack()
		got[r.ID()] = r
	}
	for _, origin := range []*Receiver{camA, micA} {
		r := got[origin.ID()]
		if r == nil {
			t.Fatalf("track %s not announced on node B (got %v)", origin.ID(), got)
		}
		if r.publisher != origin.publisher || r.Info() != origin.Info() || r.codec.ClockRate != origin.codec.ClockRate {
			t.Fatalf("relayed track %s %+v does not keep the origin's %s %+v", r.publisher, r.Info(), origin.publisher, origin.Info())
		}
	}
	camB, micB := got[camA.ID()], got[micA.ID()]

	sub := newClient(t, b, clientOpts{})
	_, _, wCam := subscribeAndWatch(t, sub, camB, true)
	_, _, wMic := subscribeAndWatch(t, sub, micB, true)
	wait.For(t, patience, "video at the subscriber on node B", func() bool { return wCam.count() >= 50 })
	wait.For(t, patience, "audio at the subscriber on node B", func() bool { return wMic.count() >= 20 })
	wCam.mu.Lock()
	for seq, p := range wCam.bySeq {
		if !bytes.Equal(p, framePayload(cam, p)) {
			wCam.mu.Unlock()
			t.Fatalf("video payload of seq %d at the subscriber differs from what the publisher sent", seq)
		}
	}
	wCam.mu.Unlock()
	wMic.mu.Lock()
	for seq, p := range wMic.bySeq {
		if len(p) < 4 || !bytes.Equal(p, audioPayload(int(binary.BigEndian.Uint32(p)))) {
			wMic.mu.Unlock()
			t.Fatalf("audio payload of seq %d at the subscriber differs from what the publisher sent", seq)
		}
	}
	wMic.mu.Unlock()
	if lvl := micB.AudioLevel(); lvl != 30 {
		t.Fatalf("audio level on node B %d, want the publisher's 30", lvl)
	}
	if st := pair.out.Stats(); st.Tracks != 2 || st.Layers != 2 || st.Packets == 0 {
		t.Fatalf("relay out stats %+v, want 2 tracks on 2 layers with packets", st)
	}
	if st := pair.in.Stats(); st.Tracks != 2 || st.Layers != 2 || st.Packets == 0 {
		t.Fatalf("relay in stats %+v, want 2 tracks on 2 layers with packets", st)
	}
}

// Only the layers asked for cross the link, counted per SSRC on A's
// network; when the wanted layers change, the link follows, B's Receiver
// stays the same track, and B's subscriber follows to what is there.
func TestRelayCarriesOnlyTheWantedLayers(t *testing.T) {
	checkLeaks(t)
	a, tap := newTapEngine(t)
	b := newTestEngine(t)
	pub := newClient(t, a, clientOpts{})
	src := newSource(t, "cam", true)
	src.publish(t, pub, "camera")
	rA := pub.nextReceiver()
	wait.For(t, patience, "all three layers on node A", func() bool { return len(rA.Layers()) == 3 })

	pair := newRelayPair(t, a, b, false)
	if err := pair.out.Send(rA, []int{0}); err != nil {
		t.Fatal(err)
	}
	rB := pair.nextTrack()
	sub := newClient(t, b, clientOpts{})
	_, _, w := subscribeAndWatch(t, sub, rB, false)
	wait.For(t, patience, "the low layer at the subscriber", func() bool { return w.layerCount(0) >= 20 })
	assertLinkCarries(t, tap, pair.out, 0)
	if got := rB.Layers(); !slices.Equal(got, []int{0}) {
		t.Fatalf("node B receives layers %v, want only low", got)
	}

	if err := pair.out.Send(rA, []int{0, 2}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, patience, "the high layer at the subscriber", func() bool { return w.lastLayer() == 2 })
	assertLinkCarries(t, tap, pair.out, 0, 2)
	if n := cachedPayloadsMatch(t, rB, src); n < 20 {
		t.Fatalf("checked %d relayed packets against the publisher's, want at least 20", n)
	}

	old := pair.out.LayerStats()
	if err := pair.out.Send(rA, []int{1}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, patience, "node B down to the middle layer", func() bool {
		return slices.Equal(rB.Layers(), []int{1}) && w.lastLayer() == 1
	})
	before := tap.sentBySSRC()
	mid := w.layerCount(1)
	wait.For(t, patience, "the middle layer to keep flowing", func() bool { return w.layerCount(1) >= mid+25 })
	after := tap.sentBySSRC()
	for _, l := range old {
		if after[l.SSRC] != before[l.SSRC] {
			t.Fatalf("layer %d (ssrc %d) still crosses: %d packets, then %d", l.Layer, l.SSRC, before[l.SSRC], after[l.SSRC])
		}
	}
	assertLinkCarries(t, tap, pair.out, 1)
	select {
	case <-rB.Done():
		t.Fatal("node B's track ended while its layers were swapped")
	default:
	}
	if pair.in.Receiver(rA.ID()) != rB {
		t.Fatal("node B made a new Receiver for a layer change")
	}
	if st := pair.in.Stats(); st.Tracks != 1 || st.Layers != 1 {
		t.Fatalf("relay in stats %+v, want one track on one layer", st)
	}
}

// assertLinkCarries checks that A relays exactly the given layers and that
// each has crossed A's network under its own SSRC.
func assertLinkCarries(t *testing.T, tap *tapNet, out *RelayOut, layers ...int) {
	t.Helper()
	ls := out.LayerStats()
	var got []int
	for _, l := range ls {
		got = append(got, l.Layer)
	}
	if !slices.Equal(got, layers) {
		t.Fatalf("relayed layers %v, want %v", got, layers)
	}
	sent := tap.sentBySSRC()
	for _, l := range ls {
		if sent[l.SSRC] == 0 || uint64(sent[l.SSRC]) < l.Packets {
			t.Fatalf("layer %d: %d packets on the network for %d relayed", l.Layer, sent[l.SSRC], l.Packets)
		}
	}
}

// A keyframe request from B's subscriber crosses the link as a PLI on the
// layer's section and reaches the publisher.
func TestRelayKeyframeRequestReachesThePublisher(t *testing.T) {
	checkLeaks(t)
	a, b := newTestEngine(t), newTestEngine(t)
	pub := newClient(t, a, clientOpts{})
	src := newSource(t, "cam", false)
	plis := countPLIs(publishSource(t, pub, src, "camera"))
	rA := pub.nextReceiver()
	pair := newRelayPair(t, a, b, false)
	if err := pair.out.Send(rA, []int{0}); err != nil {
		t.Fatal(err)
	}
	rB := pair.nextTrack()
	sub := newClient(t, b, clientOpts{})
	dB, tr, w := subscribeAndWatch(t, sub, rB, false)
	wait.For(t, patience, "media at the subscriber", func() bool { return w.count() >= 20 })

	relayPLIs := func() uint64 { return pair.out.LayerStats()[0].PLIs }
	subBefore, relayBefore, pubBefore := dB.Stats().PLIs, relayPLIs(), plis()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(patience)
	for relayPLIs() == relayBefore || plis() == pubBefore {
		// Requests are throttled per layer: ask until one gets through.
		err := sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: uint32(tr.SSRC())}})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("keyframe request did not reach the publisher: subscriber %d, relay %d, publisher %d PLIs",
				dB.Stats().PLIs-subBefore, relayPLIs()-relayBefore, plis()-pubBefore)
		}
	}
}

// Packets lost on the link are NACKed by node B and resent from node A's
// cache: the subscriber on B ends up with every packet.
func TestRelayRepairsLossFromTheCache(t *testing.T) {
	checkLeaks(t)
	a, tap := newTapEngine(t)
	b := newTestEngine(t)
	pub := newClient(t, a, clientOpts{})
	publishSource(t, pub, newSource(t, "cam", false), "camera")
	rA := pub.nextReceiver()
	pair := newRelayPair(t, a, b, false)
	if err := pair.out.Send(rA, []int{0}); err != nil {
		t.Fatal(err)
	}
	rB := pair.nextTrack()
	sub := newClient(t, b, clientOpts{})
	_, _, w := subscribeAndWatch(t, sub, rB, true)
	wait.For(t, patience, "media at the subscriber", func() bool { return w.count() >= 20 })

	const lost = 20
	tap.lose(pair.out.LayerStats()[0].SSRC, 5, lost)
	wait.For(t, patience, "the losses on the link", func() bool { return tap.droppedCount() == lost })
	target := w.count() + 30
	wait.For(t, patience, "every packet at the subscriber", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.packets >= target && holes(w.bySeq) == 0
	})
	if st := pair.out.Stats(); st.Resent < lost || st.NACKs < lost {
		t.Fatalf("relay out stats %+v, want at least %d NACKed and resent", st, lost)
	}
	if st := pair.in.Stats(); st.Lost < lost {
		t.Fatalf("relay in stats %+v, want at least %d lost on arrival", st, lost)
	}
	if _, in := b.RelayTotals("node-a"); in.Lost < lost {
		t.Fatalf("engine B's totals from node A %+v, want the losses", in)
	}
}

// holes counts the sequence numbers missing between the oldest and newest
// of seqs.
func holes(seqs map[uint16][]byte) int {
	if len(seqs) == 0 {
		return 0
	}
	var first, last uint16
	started := false
	for s := range seqs {
		if !started {
			first, last, started = s, s, true
			continue
		}
		if s-last < 0x8000 {
			last = s
		}
		if first-s < 0x8000 {
			first = s
		}
	}
	return int(last-first) + 1 - len(seqs)
}

// Stopping a relayed track ends its Receiver on node B and, through it, the
// subscriber's track; relaying it again brings it back. The publisher
// leaving ends it too.
func TestRelayStopEndsTheTrackOnTheOtherNode(t *testing.T) {
	checkLeaks(t)
	a, b := newTestEngine(t), newTestEngine(t)
	pub := newClient(t, a, clientOpts{})
	publishSource(t, pub, newSource(t, "cam", false), "camera")
	rA := pub.nextReceiver()
	pair := newRelayPair(t, a, b, false)
	sub := newClient(t, b, clientOpts{})
	relayAndWatch := func() (*Receiver, *mediaWatch) {
		t.Helper()
		if err := pair.out.Send(rA, []int{0}); err != nil {
			t.Fatal(err)
		}
		rB := pair.nextTrack()
		rB.OnClose(func() { sub.peer.Unsubscribe(rB.ID()) }) // as a room does
		_, _, w := subscribeAndWatch(t, sub, rB, false)
		wait.For(t, patience, "media at the subscriber", func() bool { return w.count() >= 10 })
		return rB, w
	}
	rB, w := relayAndWatch()

	pair.out.Stop(rA)
	wait.Recv(t, rB.Done(), patience, "node B's track to end")
	wait.Recv(t, w.done, patience, "the subscriber's track to end")
	if got := len(rA.DownTracks()); got != 0 {
		t.Fatalf("node A still forwards the track to %d relay layers", got)
	}
	if out, in := pair.out.Stats(), pair.in.Stats(); out.Tracks != 0 || in.Tracks != 0 || out.Packets == 0 || in.Packets == 0 {
		t.Fatalf("after Stop: out %+v, in %+v; want no tracks and the packets counted", out, in)
	}

	rB2, _ := relayAndWatch()
	if rB2 == rB || rB2.ID() != rA.ID() {
		t.Fatal("relaying again did not bring a new Receiver of the same track")
	}
	if err := pub.peer.Close(); err != nil {
		t.Fatal(err)
	}
	wait.Recv(t, rB2.Done(), patience, "node B's track to end with its publisher")
	wait.For(t, patience, "the relay to let go of the track", func() bool { return pair.out.Stats().Tracks == 0 })
}

// Closing either end of a link ends it on the other node too: its tracks
// end there, it reports the failure, and nothing is left running.
func TestRelayClosingEitherEndCleansUp(t *testing.T) {
	for _, closeOut := range []bool{true, false} {
		name := "close relay in"
		if closeOut {
			name = "close relay out"
		}
		t.Run(name, func(t *testing.T) {
			checkLeaks(t)
			a, b := newTestEngine(t), newTestEngine(t)
			pub := newClient(t, a, clientOpts{})
			publishSource(t, pub, newSource(t, "cam", false), "camera")
			rA := pub.nextReceiver()
			pair := newRelayPair(t, a, b, false)
			if err := pair.out.Send(rA, []int{0}); err != nil {
				t.Fatal(err)
			}
			rB := pair.nextTrack()
			wait.For(t, patience, "media on node B", func() bool { return pair.in.Stats().Packets >= 10 })

			closer, other, failed := error(nil), pair.in.Done(), pair.inFailed
			if closeOut {
				closer = pair.out.Close()
			} else {
				closer = pair.in.Close()
				other, failed = pair.out.Done(), pair.outFailed
			}
			if closer != nil {
				t.Fatal(closer)
			}
			if err := wait.Recv(t, failed, patience, "the other end to notice"); !errors.Is(err, ErrRelayClosedRemotely) {
				t.Fatalf("other end failed with %v, want ErrRelayClosedRemotely", err)
			}
			wait.Recv(t, other, patience, "the other end to close")
			wait.Recv(t, rB.Done(), patience, "node B's track to end")
			if got := len(rA.DownTracks()); got != 0 {
				t.Fatalf("node A still forwards the track to %d relay layers", got)
			}
			out, _ := a.RelayTotals("node-b")
			_, in := b.RelayTotals("node-a")
			if out.Links != 0 || in.Links != 0 || out.Tracks != 0 || in.Tracks != 0 || out.Packets == 0 || in.Packets == 0 {
				t.Fatalf("totals after close: out %+v, in %+v; want no links or tracks, packets kept", out, in)
			}
			if err := pair.out.Send(rA, []int{0}); !errors.Is(err, ErrClosed) {
				t.Fatalf("Send on a closed relay: %v, want ErrClosed", err)
			}
		})
	}
}

// Changes are batched into one offer, and a change made while an offer is
// outstanding waits for its answer; an offer never answered fails the link.
func TestRelayOffersOneAtATime(t *testing.T) {
	checkLeaks(t)
	a, b := newTestEngine(t), newTestEngine(t)
	a.offerWindow = 2 * time.Second
	_, recvs := publishN(t, a, 2)
	pair := newRelayPair(t, a, b, true)
	for _, r := range recvs {
		if err := pair.out.Send(r, []int{0}); err != nil {
			t.Fatal(err)
		}
	}
	o1 := wait.Recv(t, pair.pending, patience, "the first relay offer")
	if len(o1.Sections) != 2 {
		t.Fatalf("first offer has %d sections, want both tracks batched", len(o1.Sections))
	}
	pair.out.Stop(recvs[1])
	pair.out.mu.Lock()
	armed, needed := pair.out.negTimer != nil, pair.out.needNeg
	pair.out.mu.Unlock()
	if armed || !needed {
		t.Fatalf("change during an outstanding offer: timer armed %v, pending %v; want it held for the answer", armed, needed)
	}
	if err := pair.exchange(o1); err != nil {
		t.Fatal(err)
	}
	o2 := wait.Recv(t, pair.pending, patience, "the offer after the answer")
	if len(o2.Sections) != 1 || pair.offerCount() != 2 {
		t.Fatalf("second offer has %d sections after %d offers, want 1 after 2", len(o2.Sections), pair.offerCount())
	}
	for _, sec := range o2.Sections {
		if sec.Track != recvs[0].ID() {
			t.Fatalf("second offer carries %s, want %s", sec.Track, recvs[0].ID())
		}
	}
	// Never answered: the link fails when the window passes.
	if err := wait.Recv(t, pair.outFailed, patience, "the unanswered offer to fail the link"); err == nil {
		t.Fatal("no error for the unanswered offer")
	}
	wait.Recv(t, pair.out.Done(), patience, "the relay to close")
	if got := len(recvs[0].DownTracks()); got != 0 {
		t.Fatalf("the failed relay still forwards to %d layers", got)
	}
}

// relayTestParams are valid parameters for either end.
func relayTestParams() RelayParams {
	return RelayParams{Node: "n", Logger: quiet, OnOffer: func(RelayOffer) {}, OnTrack: func(*Receiver) {}}
}

// Bad input to either end is refused with a clear error, and changes
// nothing: the good offer that follows is applied and media flows.
func TestRelayRefusesBadInput(t *testing.T) {
	checkLeaks(t)
	a, b := newTestEngine(t), newTestEngine(t)
	for _, p := range []RelayParams{{OnOffer: func(RelayOffer) {}}, {Node: "n"}} {
		if _, err := a.NewRelayOut(p); err == nil {
			t.Fatalf("NewRelayOut(%+v) accepted", p)
		}
	}
	for _, p := range []RelayParams{{OnTrack: func(*Receiver) {}}, {Node: "n"}} {
		if _, err := a.NewRelayIn(p); err == nil {
			t.Fatalf("NewRelayIn(%+v) accepted", p)
		}
	}
	pub := newClient(t, a, clientOpts{})
	publishSource(t, pub, newSource(t, "cam", false), "camera")
	rA := pub.nextReceiver()
	pair := newRelayPair(t, a, b, true)
	for _, layers := range [][]int{{3}, {-1}} {
		if err := pair.out.Send(rA, layers); err == nil {
			t.Fatalf("Send with layers %v accepted", layers)
		}
	}
	if err := pair.out.Send(nil, []int{0}); err == nil {
		t.Fatal("Send without a track accepted")
	}
	if err := pair.out.HandleAnswer("v=0"); !errors.Is(err, ErrNoOffer) {
		t.Fatalf("answer without an offer: %v, want ErrNoOffer", err)
	}
	if err := pair.out.Send(rA, []int{0}); err != nil {
		t.Fatal(err)
	}
	good := wait.Recv(t, pair.pending, patience, "the relay offer")
	if err := pair.out.HandleAnswer("not sdp"); !errors.Is(err, ErrInvalidSDP) {
		t.Fatalf("garbage answer: %v, want ErrInvalidSDP", err)
	}
	var mid string
	for m := range good.Sections {
		mid = m
	}
	for name, bad := range badRelayOffers(good, mid) {
		_, err := pair.in.HandleOffer(t.Context(), bad)
		if !errors.Is(err, ErrInvalidRelayOffer) && !errors.Is(err, ErrInvalidSDP) {
			t.Fatalf("%s: %v, want ErrInvalidRelayOffer or ErrInvalidSDP", name, err)
		}
		if pair.in.pc.RemoteDescription() != nil || len(pair.in.Receivers()) != 0 {
			t.Fatalf("%s: the refused offer was applied", name)
		}
	}
	if err := pair.exchange(good); err != nil {
		t.Fatalf("the good offer after bad ones: %v", err)
	}
	rB := pair.nextTrack()
	wait.For(t, patience, "media on node B", func() bool { return len(rB.Layers()) == 1 })

	// A live track cannot change codec under its subscribers.
	if err := pair.out.Send(rA, []int{0}); err != nil {
		t.Fatal(err)
	}
	pair.out.Stop(rA)
	next := wait.Recv(t, pair.pending, patience, "the offer stopping the track")
	changed := RelayOffer{SDP: good.SDP, Sections: map[string]RelaySection{}}
	sec := good.Sections[mid]
	sec.Codec = RelayCodec{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}
	changed.Sections[mid] = sec
	if _, err := pair.in.HandleOffer(t.Context(), changed); !errors.Is(err, ErrInvalidRelayOffer) {
		t.Fatalf("codec change of a live track: %v, want ErrInvalidRelayOffer", err)
	}
	if err := pair.exchange(next); err != nil {
		t.Fatal(err)
	}
	wait.Recv(t, rB.Done(), patience, "the stopped track to end on node B")
	if err := pair.in.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pair.in.HandleOffer(t.Context(), good); !errors.Is(err, ErrClosed) {
		t.Fatalf("offer to a closed relay: %v, want ErrClosed", err)
	}
}

// badRelayOffers spoils a good one-section offer in every way a node could.
func badRelayOffers(good RelayOffer, mid string) map[string]RelayOffer {
	with := func(f func(s *RelaySection)) RelayOffer {
		s := good.Sections[mid]
		f(&s)
		return RelayOffer{SDP: good.SDP, Sections: map[string]RelaySection{mid: s}}
	}
	return map[string]RelayOffer{
		"garbage sdp":        {SDP: "not sdp", Sections: good.Sections},
		"no metadata":        {SDP: good.SDP},
		"metadata elsewhere": {SDP: good.SDP, Sections: map[string]RelaySection{mid + "x": good.Sections[mid]}},
		"wrong kind":         with(func(s *RelaySection) { s.Kind = "audio"; s.Codec.MimeType = webrtc.MimeTypeOpus }),
		"no track id":        with(func(s *RelaySection) { s.Track = "" }),
		"no publisher":       with(func(s *RelaySection) { s.Publisher = "" }),
		"layer 3":            with(func(s *RelaySection) { s.Layer = 3 }),
		"negative layer":     with(func(s *RelaySection) { s.Layer = -1 }),
		"audio codec":        with(func(s *RelaySection) { s.Codec.MimeType = webrtc.MimeTypeOpus }),
		"no clock rate":      with(func(s *RelaySection) { s.Codec.ClockRate = 0 }),
	}
}
