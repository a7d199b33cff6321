package clip

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// capture stands in for a PeerConnection's sender: a TrackLocal bound to
// it writes its RTP here.
type capture struct {
	codec webrtc.RTPCodecParameters
	ssrc  webrtc.SSRC

	mu      sync.Mutex
	pkts    []rtp.Packet
	onWrite func(p *rtp.Packet) // called after each packet, outside mu
	wrote   chan struct{}       // signalled after each packet
}

func newCapture(codec webrtc.RTPCodecParameters, ssrc webrtc.SSRC) *capture {
	return &capture{codec: codec, ssrc: ssrc, wrote: make(chan struct{}, 1)}
}

func (c *capture) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{c.codec}
}
func (c *capture) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter {
	return nil
}
func (c *capture) SSRC() webrtc.SSRC                       { return c.ssrc }
func (c *capture) SSRCRetransmission() webrtc.SSRC         { return 0 }
func (c *capture) SSRCForwardErrorCorrection() webrtc.SSRC { return 0 }
func (c *capture) WriteStream() webrtc.TrackLocalWriter    { return c }
func (c *capture) ID() string                              { return "capture" }
func (c *capture) RTCPReader() interceptor.RTCPReader      { return nil }
func (c *capture) Write(b []byte) (int, error)             { panic("unused") }
func (c *capture) count() int                              { c.mu.Lock(); defer c.mu.Unlock(); return len(c.pkts) }
func (c *capture) packets() []rtp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]rtp.Packet(nil), c.pkts...)
}
func (c *capture) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	p := rtp.Packet{Header: h.Clone(), Payload: append([]byte(nil), payload...)}
	c.mu.Lock()
	c.pkts = append(c.pkts, p)
	hook := c.onWrite
	c.mu.Unlock()
	if hook != nil {
		hook(&p)
	}
	select {
	case c.wrote <- struct{}{}:
	default:
	}
	return len(payload), nil
}

var vp8Params = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
	PayloadType:        96,
}

// sentFrame is one video frame as it went out.
type sentFrame struct {
	seq     uint16 // of its first packet
	ts      uint32
	picture uint16
	data    []byte // the VP8 frame, put together from its packets
}

// key reports a VP8 keyframe: bit 0 of the frame tag is clear.
func (f sentFrame) key() bool { return len(f.data) > 0 && f.data[0]&0x01 == 0 }

// frames groups captured VP8 packets into frames and checks that sequence
// numbers run without a gap and that every frame ends with the marker bit.
func frames(t *testing.T, pkts []rtp.Packet) []sentFrame {
	t.Helper()
	var out []sentFrame
	for i, p := range pkts {
		if i > 0 && p.SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("sequence jumps from %d to %d at packet %d", pkts[i-1].SequenceNumber, p.SequenceNumber, i)
		}
		var d codecs.VP8Packet
		if _, err := d.Unmarshal(p.Payload); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if d.S == 1 && d.PID == 0 {
			out = append(out, sentFrame{seq: p.SequenceNumber, ts: p.Timestamp, picture: d.PictureID})
		} else if len(out) == 0 || p.Timestamp != out[len(out)-1].ts {
			t.Fatalf("packet %d continues a frame with another timestamp", i)
		}
		out[len(out)-1].data = append(out[len(out)-1].data, d.Payload...)
		if next := i + 1; next < len(pkts) && p.Marker != (pkts[next].Timestamp != p.Timestamp) {
			t.Fatalf("packet %d: marker %v, but the next packet's timestamp says otherwise", i, p.Marker)
		}
	}
	return out
}

// runUntil runs a source until every capture holds at least n packets.
func runUntil(t *testing.T, run func(context.Context), caps []*capture, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.After(20 * time.Second)
	for _, c := range caps {
		for c.count() < n {
			select {
			case <-c.wrote:
			case <-deadline:
				t.Fatalf("only %d of %d packets sent in 20 s", c.count(), n)
			}
		}
	}
}

func TestVideoLoopIsContinuous(t *testing.T) {
	v, err := NewVideoSource("cam", "s", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	v.pace = time.Millisecond
	n := len(v.frames[0])
	caps := make([]*capture, len(v.tracks))
	for i, tr := range v.tracks {
		caps[i] = newCapture(vp8Params, webrtc.SSRC(100+i))
		if _, err := tr.Bind(caps[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Enough packets for one and a half loops of the highest layer; the
	// lower layers are checked over the frames they had by then.
	perLoop := 0
	for _, f := range v.frames[2] {
		perLoop += len(f.data)/1200 + 1
	}
	runUntil(t, v.Run, caps[2:], perLoop*3/2)
	for l, c := range caps {
		// What the source says it sent of the layer is what was written.
		sum := uint64(0)
		for _, p := range c.packets() {
			sum += uint64(len(p.Payload))
		}
		if got := v.PayloadBytes(l); got != sum {
			t.Errorf("layer %d: PayloadBytes %d, the packets written carry %d", l, got, sum)
		}
		fs := frames(t, c.packets())
		if len(fs) < n+2 && l == 2 {
			t.Fatalf("layer %d: %d frames, want more than one loop of %d", l, len(fs), n)
		}
		for i, f := range fs {
			// Frame for frame the layer's clip, looped.
			if want := v.frames[l][i%n]; !bytes.Equal(f.data, want.data) || f.key() != want.key {
				t.Fatalf("layer %d frame %d (keyframe %v) is not frame %d of the clip (keyframe %v)", l, i, f.key(), i%n, want.key)
			}
			if i == 0 {
				continue
			}
			prev := fs[i-1]
			if f.ts-prev.ts != 3000 {
				t.Fatalf("layer %d frame %d: timestamp step %d, want 3000 (30 fps), also across the loop at %d", l, i, f.ts-prev.ts, n)
			}
			if f.picture != (prev.picture+1)&0x7fff {
				t.Fatalf("layer %d frame %d: picture id %d after %d", l, i, f.picture, prev.picture)
			}
		}
		if !fs[0].key() {
			t.Errorf("layer %d starts without a keyframe", l)
		}
	}
}

func TestVideoKeyframeRequestJumpsToNextKeyframe(t *testing.T) {
	v, err := NewVideoSource("cam", "s", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	v.pace = time.Millisecond
	c := newCapture(vp8Params, 1)
	if _, err := v.tracks[0].Bind(c); err != nil {
		t.Fatal(err)
	}
	// Ask for a keyframe as the 6th frame goes out (marker bit), far from
	// the clip's next keyframe.
	var frameCount int
	c.onWrite = func(p *rtp.Packet) {
		if p.Marker {
			frameCount++
			if frameCount == 6 {
				v.RequestKeyframe()
			}
		}
	}
	runUntil(t, v.Run, []*capture{c}, 60)
	fs := frames(t, c.packets())
	if len(fs) < 8 {
		t.Fatalf("%d frames", len(fs))
	}
	if v.frames[0][6].key {
		t.Fatal("clip has a keyframe at frame 6; the test needs a delta frame there")
	}
	if !fs[6].key() {
		t.Errorf("frame after the keyframe request is not a keyframe")
	}
	if fs[6].ts-fs[5].ts != 3000 || fs[6].picture != fs[5].picture+1 {
		t.Errorf("the jump broke continuity: ts step %d, picture %d -> %d", fs[6].ts-fs[5].ts, fs[5].picture, fs[6].picture)
	}
	// From there on the clip plays on from that keyframe.
	k := 6
	for !v.frames[0][k].key {
		k++
	}
	for i := 6; i < len(fs); i++ {
		if want := v.frames[0][(k+i-6)%len(v.frames[0])].data; !bytes.Equal(fs[i].data, want) {
			t.Fatalf("frame %d is not clip frame %d", i, (k+i-6)%len(v.frames[0]))
		}
	}
}

func TestAudioLoopIsContinuous(t *testing.T) {
	a, err := NewAudioSource("mic", "s")
	if err != nil {
		t.Fatal(err)
	}
	a.pace = time.Millisecond
	c := newCapture(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType:        111,
	}, 2)
	if _, err := a.track.Bind(c); err != nil {
		t.Fatal(err)
	}
	n := len(a.pkts)
	runUntil(t, a.Run, []*capture{c}, n+20)
	pkts := c.packets()
	for i := 1; i < len(pkts); i++ {
		if pkts[i].SequenceNumber != pkts[i-1].SequenceNumber+1 {
			t.Fatalf("sequence jumps at packet %d", i)
		}
		if step := pkts[i].Timestamp - pkts[i-1].Timestamp; step != 960 {
			t.Fatalf("packet %d: timestamp step %d, want 960 (20 ms at 48 kHz), the loop is at %d", i, step, n)
		}
	}
	for i := range 20 {
		if string(pkts[n+i].Payload) != string(a.pkts[i]) {
			t.Fatalf("packet %d is not the clip's packet %d again", n+i, i)
		}
	}
}

// Dynacast: a paused layer sends nothing while the others go on; when it
// comes back it starts on a keyframe, its timestamp as far on as the time
// it was paused.
func TestVideoPausedLayerResumesOnAKeyframe(t *testing.T) {
	v, err := NewVideoSource("cam", "s", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	v.pace = time.Millisecond
	caps := make([]*capture, len(v.tracks))
	for i, tr := range v.tracks {
		caps[i] = newCapture(vp8Params, webrtc.SSRC(100+i))
		if _, err := tr.Bind(caps[i]); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(c *capture, n int) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for c.count() < n {
			select {
			case <-c.wrote:
			case <-deadline:
				t.Fatalf("only %d of %d packets sent in 20 s", c.count(), n)
			}
		}
	}
	waitFor(caps[2], 30)
	v.SetActiveRIDs([]string{"l"})
	// A frame may have been under way: the pause holds from the next.
	waitFor(caps[0], caps[0].count()+20)
	high, med, sentHigh := caps[2].count(), caps[1].count(), v.LayerPacketsSent("h")
	lowBefore := len(frames(t, caps[0].packets()))
	waitFor(caps[0], caps[0].count()+200)
	if caps[2].count() != high || caps[1].count() != med || v.LayerPacketsSent("h") != sentHigh {
		t.Fatalf("paused layers went on sending: high %d -> %d, medium %d -> %d", high, caps[2].count(), med, caps[1].count())
	}
	lowFrames := len(frames(t, caps[0].packets())) - lowBefore
	v.SetActiveRIDs([]string{"l", "h"})
	waitFor(caps[2], high+30)
	pkts := caps[2].packets()
	before, after := pkts[high-1], pkts[high]
	if !frames(t, pkts[high:])[0].key() {
		t.Fatal("the resumed layer starts without a keyframe")
	}
	if skipped := after.Timestamp - before.Timestamp; skipped < uint32(lowFrames)*3000 {
		t.Fatalf("resumed %d timestamp units on, want at least the %d frames sent meanwhile (%d)", skipped, lowFrames, lowFrames*3000)
	}
	if caps[1].count() != med {
		t.Fatal("the medium layer, still paused, sent packets")
	}
}

// OnSend sees every packet's payload just before it is written: for video
// and audio, in order, each seen while the capture still lacks it.
func TestOnSendSeesEveryPayloadBeforeItIsWritten(t *testing.T) {
	v, err := NewVideoSource("cam", "s", false, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAudioSource("mic", "s")
	if err != nil {
		t.Fatal(err)
	}
	v.pace, a.pace = time.Millisecond, time.Millisecond
	vc := newCapture(vp8Params, 1)
	ac := newCapture(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType:        111,
	}, 2)
	if _, err := v.tracks[0].Bind(vc); err != nil {
		t.Fatal(err)
	}
	if _, err := a.track.Bind(ac); err != nil {
		t.Fatal(err)
	}
	for _, src := range []struct {
		name   string
		c      *capture
		onSend func(func([]byte))
		run    func(context.Context)
	}{{"video", vc, v.OnSend, v.Run}, {"audio", ac, a.OnSend, a.Run}} {
		var seen [][]byte
		early := 0 // payloads seen only after they were written
		src.onSend(func(p []byte) {
			if src.c.count() != len(seen) {
				early++
			}
			seen = append(seen, append([]byte(nil), p...))
		})
		runUntil(t, src.run, []*capture{src.c}, 40)
		pkts := src.c.packets()
		if early > 0 || len(seen) != len(pkts) {
			t.Fatalf("%s: %d payloads seen for %d written, %d seen late", src.name, len(seen), len(pkts), early)
		}
		for i, p := range pkts {
			if !bytes.Equal(p.Payload, seen[i]) {
				t.Fatalf("%s packet %d: written payload differs from the one seen", src.name, i)
			}
		}
	}
}
