package sfu

import (
	"sync"
	"testing"
	"time"

	"github.com/confab-sfu/confab/internal/wait"
	"github.com/pion/rtp"
)

// sinkLog is a PacketWriter that keeps what a sink handed on.
type sinkLog struct {
	mu     sync.Mutex
	ssrcs  []uint32
	seqs   []uint16
	layers []int // the byte after the VP8 header (source_test.go), when there is one
	onPkt  func()
}

func (w *sinkLog) WriteRTP(p *rtp.Packet, _ time.Time) {
	w.mu.Lock()
	w.ssrcs = append(w.ssrcs, p.SSRC)
	w.seqs = append(w.seqs, p.SequenceNumber)
	l := -1
	if len(p.Payload) > vp8HdrLen {
		l = int(p.Payload[vp8HdrLen])
	}
	w.layers = append(w.layers, l)
	f := w.onPkt
	w.mu.Unlock()
	if f != nil {
		f()
	}
}

func (w *sinkLog) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seqs)
}

func (w *sinkLog) lastLayer() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.layers) == 0 {
		return -1
	}
	return w.layers[len(w.layers)-1]
}

// A sink takes the top layer, from its first keyframe on, as the
// publisher sent it (its SSRC and sequence numbers), and nothing of the
// layers below.
func TestSinkStartsAtTheTopLayersKeyframe(t *testing.T) {
	r, _, _ := newTestReceiver(3, 1)
	w := &sinkLog{}
	s, err := r.AddSink(w)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := &feeder{}
	f.seq = [3]uint16{10, 20000, 65534}
	now := time.Now().UnixNano()
	f.send(r, 2, false, now) // the top layer, but no keyframe yet
	f.send(r, 0, true, now)  // a keyframe, but not of the top layer
	f.send(r, 1, true, now)
	if w.count() != 0 || s.Layer() != -1 {
		t.Fatalf("handed on %d packets (layer %d) before the top layer's keyframe", w.count(), s.Layer())
	}
	for i := 0; i < 4; i++ {
		for l := 0; l < 3; l++ {
			f.send(r, l, i == 0, now)
		}
	}
	if w.count() != 4 || s.Layer() != 2 {
		t.Fatalf("%d packets on layer %d, want 4 of the top layer", w.count(), s.Layer())
	}
	for i, ssrc := range w.ssrcs {
		if ssrc != 3 || w.seqs[i] != uint16(65535+i) {
			t.Fatalf("packet %d: ssrc %d seq %d, want the publisher's (ssrc 3, seq %d): %v", i, ssrc, w.seqs[i], uint16(65535+i), w.seqs)
		}
	}
}

// When the top layer goes silent the sink moves down at the next layer's
// keyframe, and back up at the top layer's keyframe when it returns.
func TestSinkFollowsTheBestLiveLayer(t *testing.T) {
	r, _, _ := newTestReceiver(3, 0)
	w := &sinkLog{}
	s, err := r.AddSink(w)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := &feeder{}
	now := time.Now().UnixNano()
	f.send(r, 2, true, now)
	r.layers[2].Load().lastPacket.Store(now - int64(2*layerStale)) // the publisher stopped it
	r.retarget()
	f.send(r, 1, false, now)
	if s.Layer() != 2 {
		t.Fatal("switched before a keyframe of the layer below")
	}
	f.send(r, 1, true, now)
	f.send(r, 2, true, now) // a late packet of the old layer: not handed on
	if s.Layer() != 1 || w.count() != 2 || w.ssrcs[1] != 2 {
		t.Fatalf("layer %d, ssrcs %v: want the middle layer after its keyframe", s.Layer(), w.ssrcs)
	}
	r.layers[2].Load().lastPacket.Store(now) // it is back
	r.retarget()
	f.send(r, 2, false, now)
	f.send(r, 1, false, now)
	f.send(r, 2, true, now)
	if s.Layer() != 2 || w.count() != 4 || w.ssrcs[2] != 2 || w.ssrcs[3] != 3 {
		t.Fatalf("layer %d, ssrcs %v: want the middle layer until the top one's keyframe", s.Layer(), w.ssrcs)
	}
}

// A moderator's block stops the sink; unblocked, it restarts at a
// keyframe. Once closed, it gets nothing.
func TestSinkBlockedAndClosed(t *testing.T) {
	r, _, _ := newTestReceiver(1, 0)
	w := &sinkLog{}
	s, err := r.AddSink(w)
	if err != nil {
		t.Fatal(err)
	}
	f := &feeder{}
	now := time.Now().UnixNano()
	f.send(r, 0, true, now)
	r.SetBlocked(true)
	f.send(r, 0, true, now)
	if w.count() != 1 {
		t.Fatalf("%d packets, want none while blocked", w.count())
	}
	r.SetBlocked(false)
	f.send(r, 0, false, now)
	f.send(r, 0, true, now)
	if w.count() != 2 || w.seqs[1] != 3 {
		t.Fatalf("seqs %v after the block: want a restart at the keyframe (seq 3)", w.seqs)
	}
	s.Close()
	f.send(r, 0, true, now)
	if w.count() != 2 || len(*r.sinks.Load()) != 0 {
		t.Fatalf("%d packets after Close", w.count())
	}
}

// The writer may ask for a keyframe from inside WriteRTP (a recorder that
// lost a packet does) without a deadlock. (The test receiver has no
// PeerConnection: its PLIs are throttled away; TestSinkOnAPublishedTrack
// sees them go out.)
func TestSinkKeyframeRequestFromItsWriter(t *testing.T) {
	r, _, _ := newTestReceiver(3, 0)
	w := &sinkLog{}
	s, err := r.AddSink(w)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	asked := 0
	w.onPkt = func() { asked++; s.RequestKeyframe() }
	f := &feeder{}
	f.send(r, 2, true, time.Now().UnixNano())
	if asked != 1 || w.count() != 1 {
		t.Fatalf("asked %d times, %d packets", asked, w.count())
	}
}

// A sink adds no allocation to the forwarding path.
func TestSinkAllocatesNothing(t *testing.T) {
	r, _, _ := newTestReceiver(3, 4)
	s, err := r.AddSink(discardPackets{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := newFrameFeeder(r)
	now := time.Now().UnixNano()
	if n := testing.AllocsPerRun(1000, func() { f.next(now) }); n != 0 {
		t.Fatalf("%.1f allocations per packet with a sink", n)
	}
}

type discardPackets struct{}

func (discardPackets) WriteRTP(*rtp.Packet, time.Time) {}

// BenchmarkSink is BenchmarkForward's path with one sink besides four
// subscribers.
func BenchmarkSink(b *testing.B) {
	r, _, _ := newTestReceiver(3, 4)
	s, err := r.AddSink(discardPackets{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	f := newFrameFeeder(r)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.next(now)
	}
}

// Over real PeerConnections: a sink on a simulcast track gets the top
// layer, moves down when the publisher stops it and back when it resumes;
// a sink on an ended track is refused.
func TestSinkOnAPublishedTrack(t *testing.T) {
	checkLeaks(t)
	e := newTestEngine(t)
	pub := newClient(t, e, clientOpts{})
	src := newSource(t, "cam", true)
	src.publish(t, pub, SourceCamera)
	r := pub.nextReceiver()
	wait.For(t, patience, "all three layers at the server", func() bool { return len(r.Layers()) == 3 })
	w := &sinkLog{}
	s, err := r.AddSink(w)
	if err != nil {
		t.Fatal(err)
	}
	if r.layer(2).lastKeyReq.Load() == 0 {
		t.Fatal("no keyframe asked for when the sink started")
	}
	if c := r.CodecParams(); c.MimeType != "video/VP8" || c.ClockRate != 90000 {
		t.Fatalf("codec %+v", c)
	}
	wait.For(t, patience, "the top layer at the sink", func() bool { return w.lastLayer() == 2 && w.count() > 10 })
	src.pause(2, true)
	wait.For(t, patience, "the middle layer at the sink", func() bool { return w.lastLayer() == 1 })
	src.pause(2, false)
	wait.For(t, patience, "the top layer again", func() bool { return w.lastLayer() == 2 })
	s.Close()
	if err := pub.peer.Close(); err != nil {
		t.Fatal(err)
	}
	<-r.Done()
	if _, err := r.AddSink(w); err != ErrTrackEnded {
		t.Fatalf("a sink on an ended track: %v, want ErrTrackEnded", err)
	}
}
