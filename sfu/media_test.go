package sfu

import (
	"bytes"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// subscribeAndWatch subscribes c to r, answers the offer, and watches the
// track at the client once its first packet arrived.
func subscribeAndWatch(t testing.TB, c *client, r *Receiver, keep bool) (*DownTrack, *webrtc.TrackRemote, *mediaWatch) {
	t.Helper()
	d, err := subscribe(c, r)
	if err != nil {
		t.Fatal(err)
	}
	if c.manual {
		c.answerNow(wait.Recv(t, c.offers, patience, "the server offer"))
	} else {
		wait.Recv(t, c.answered, patience, "the server offer")
	}
	tr := c.nextTrack()
	if tr.ID() != string(r.ID()) {
		t.Fatalf("client got track %s, want %s", tr.ID(), r.ID())
	}
	return d, tr, watch(tr, keep)
}

// A NACK from a subscriber is answered from the publisher's shared cache:
// the same packet, under the sequence number the subscriber saw. A NACK
// for a packet never sent is not. Through pion's send path (a port per
// peer) and the direct one (the shared port, direct.go) alike.
func TestNACKAnsweredFromTheCache(t *testing.T) {
	checkLeaks(t)
	t.Run("port per peer", func(t *testing.T) { testNACKAnswered(t, newTestEngine(t), false) })
	t.Run("shared port, direct send", func(t *testing.T) { testNACKAnswered(t, newSharedPortEngine(t), true) })
}

func testNACKAnswered(t *testing.T, e *Engine, direct bool) {
	_, recvs := publishN(t, e, 1)
	sub := newClient(t, e, clientOpts{})
	d, tr, w := subscribeAndWatch(t, sub, recvs[0], true)
	wait.For(t, patience, "packets at the subscriber", func() bool { return w.count() >= 20 })
	if got := d.peer.direct.Load() != nil; got != direct {
		t.Fatalf("direct route %v, want %v", got, direct)
	}

	w.mu.Lock()
	var seq uint16
	var orig []byte
	for s, p := range w.bySeq {
		seq, orig = s, p
		break
	}
	newest := uint16(0)
	for s := range w.bySeq {
		if s-newest < 0x8000 {
			newest = s
		}
	}
	w.mu.Unlock()

	nack := func(s uint16) {
		t.Helper()
		err := sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: uint32(tr.SSRC()),
			Nacks: []rtcp.NackPair{{PacketID: s}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	directBefore := testutil.ToFloat64(metricDirectRTCP)
	nack(newest + 5000) // never sent: nothing to resend
	nack(seq)
	wait.For(t, patience, "the resent packet", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.resent > 0
	})
	w.mu.Lock()
	again := w.bySeq[seq]
	resent := w.resent
	w.mu.Unlock()
	if !bytes.Equal(again, orig) || resent != 1 {
		t.Fatalf("resent %d packets, payload equal to the original: %v", resent, bytes.Equal(again, orig))
	}
	// NACKs are handled in order: the first one was done before the second.
	if st := d.Stats(); st.NACKs != 2 || st.Resent != 1 {
		t.Fatalf("stats %+v, want 2 NACKs and 1 resent", st)
	}
	// A keyframe request takes the same way.
	if err := sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: uint32(tr.SSRC())}}); err != nil {
		t.Fatal(err)
	}
	wait.For(t, patience, "the keyframe request at the server", func() bool { return d.Stats().PLIs == 1 })
	// Over the shared port the feedback was read on the spot, not by pion.
	if taken := testutil.ToFloat64(metricDirectRTCP) - directBefore; direct && taken < 3 {
		t.Fatalf("%v RTCP datagrams taken directly, want the two NACKs and the PLI", taken)
	}
}

// When the publisher stops sending its top layer, subscribers fall back to
// the next one at once (the layer counts as gone after layerStale), and
// return to it when it comes back.
func TestSubscriberFollowsLayersThatStopAndResume(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	pub := newClient(t, e, clientOpts{})
	src := newSource(t, "cam", true)
	src.publish(t, pub, SourceCamera)
	r := pub.nextReceiver()
	wait.For(t, patience, "all three layers at the server", func() bool { return len(r.Layers()) == 3 })

	sub := newClient(t, e, clientOpts{})
	d, _, w := subscribeAndWatch(t, sub, r, false)
	wait.For(t, patience, "the top layer at the subscriber", func() bool { return w.lastLayer() == 2 })

	src.pause(2, true)
	wait.For(t, patience, "the fallback to the middle layer", func() bool {
		dec := d.Decision()
		return dec.Target == 1 && dec.Reason == "publisher" && w.lastLayer() == 1
	})
	before := w.layerCount(1)
	wait.For(t, patience, "the middle layer to keep flowing", func() bool { return w.layerCount(1) >= before+10 })

	src.pause(2, false)
	wait.For(t, patience, "the return to the top layer", func() bool {
		dec := d.Decision()
		return dec.Target == 2 && dec.Current == 2 && w.lastLayer() == 2
	})
	if st := d.Stats(); st.Switches < 3 {
		t.Fatalf("%d switches, want the start, the fallback and the return", st.Switches)
	}
}

// remb tells the server the subscriber's bandwidth, as a browser without
// transport-wide feedback does; pion hands it to the senders of the tracks.
func remb(t *testing.T, c *client, bps float32, tracks ...*webrtc.TrackRemote) {
	t.Helper()
	var ssrcs []uint32
	for _, tr := range tracks {
		ssrcs = append(ssrcs, uint32(tr.SSRC()))
	}
	if err := c.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: bps, SSRCs: ssrcs}}); err != nil {
		t.Fatal(err)
	}
}

// Under a capped estimate the allocator keeps the most important video on
// its lowest layer and pauses the rest; as the estimate grows it resumes
// them and upgrades to what was asked for.
func TestAllocatorPausesAndUpgradesUnderACappedEstimate(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	pub := newClient(t, e, clientOpts{})
	// The simulcast camera goes last: pion's debug line for a new simulcast
	// layer reads the track unlocked, racing with a later negotiation that
	// renames tracks (sfu's pion log adapter formats it even when debug is
	// off).
	screenSrc := newSource(t, "screen", false)
	screenSrc.publish(t, pub, SourceScreen)
	screen := pub.nextReceiver()
	camSrc := newSource(t, "cam", true)
	camSrc.publish(t, pub, SourceCamera)
	cam := pub.nextReceiver()
	wait.For(t, patience, "all camera layers at the server", func() bool { return len(cam.Layers()) == 3 })

	sub := newClient(t, e, clientOpts{})
	dCam, trCam, wCam := subscribeAndWatch(t, sub, cam, false)
	dScreen, trScreen, wScreen := subscribeAndWatch(t, sub, screen, false)
	wait.For(t, patience, "the camera's top layer", func() bool { return wCam.lastLayer() == 2 })
	wait.For(t, patience, "the screen share", func() bool { return wScreen.count() >= 5 })

	// 120 kbit/s: the screen share (first in priority) keeps its only
	// layer, the camera's lowest (about 80 kbit/s) no longer fits.
	remb(t, sub, 120_000, trCam, trScreen)
	wait.For(t, patience, "the camera paused for bandwidth", func() bool {
		dec := dCam.Decision()
		return dec.Target == -1 && dec.Current == -1 && dec.Reason == "bandwidth" && dec.Bandwidth == 120_000
	})
	if dec := dScreen.Decision(); dec.Target != 0 || dec.Paused {
		t.Fatalf("screen share under a capped estimate: %+v, want it kept", dec)
	}
	screenBefore := wScreen.count()
	wait.For(t, patience, "the screen share to keep flowing", func() bool { return wScreen.count() >= screenBefore+10 })

	// 250 kbit/s: room for the camera's lowest layer, not for more.
	remb(t, sub, 250_000, trCam, trScreen)
	wait.For(t, patience, "the camera back on its lowest layer", func() bool {
		dec := dCam.Decision()
		return dec.Current == 0 && dec.Reason == "bandwidth" && wCam.lastLayer() == 0
	})

	// Plenty: the camera gets the top layer it asked for.
	remb(t, sub, 5_000_000, trCam, trScreen)
	wait.For(t, patience, "the camera upgraded to its top layer", func() bool {
		dec := dCam.Decision()
		return dec.Current == 2 && dec.Reason == "requested" && wCam.lastLayer() == 2
	})

	// A subscriber's own cap is kept whatever the bandwidth.
	dCam.SetMaxLayer(1)
	wait.For(t, patience, "the camera at the requested middle layer", func() bool {
		dec := dCam.Decision()
		return dec.Current == 1 && dec.Reason == "requested" && wCam.lastLayer() == 1
	})
}
