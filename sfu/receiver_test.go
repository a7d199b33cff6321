package sfu

import (
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/codec"
	"github.com/confab-sfu/confab/sfu/packetcache"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestLayerIndexOfRID(t *testing.T) {
	lmh := []string{"l", "m", "h"}
	qhf := []string{"q", "h", "f"}
	cases := []struct {
		rid  string
		all  []string
		want int8
	}{
		{"l", lmh, 0}, {"m", lmh, 1}, {"h", lmh, 2},
		{"q", qhf, 0}, {"h", qhf, 1}, {"f", qhf, 2},
		{"h", []string{"q", "h"}, 1}, // "h" of q/h/f is the middle
		{"b", []string{"a", "b"}, 1}, {"z", []string{"x", "y", "z", "w"}, 2}, {"w", []string{"x", "y", "z", "w"}, 0},
		{"", nil, 0},
	}
	for _, c := range cases {
		if got := layerIndexOfRID(c.rid, c.all); got != c.want {
			t.Errorf("rid %q of %v: got %d want %d", c.rid, c.all, got, c.want)
		}
	}
}

// Keyframes of each layer tell its resolution; a subscriber's size limit
// picks the highest layer that fits.
func TestLayerForSize(t *testing.T) {
	r, _, _ := newTestReceiver(3, 0)
	f := &feeder{}
	now := time.Now().UnixNano()
	for l := 0; l < 3; l++ {
		f.send(r, l, true, now) // 320x180, 640x360, 1280x720
	}
	st := r.LayerStats()
	if len(st) != 3 || st[2].Width != 1280 || st[2].Height != 720 || st[0].Layer != 0 || st[0].Packets != 1 {
		t.Fatalf("layer stats %+v", st)
	}
	for _, c := range []struct{ w, h, want int }{
		{0, 0, 2}, {1280, 720, 2}, {1000, 0, 1}, {0, 400, 1}, {640, 360, 1}, {400, 300, 0}, {100, 100, 0},
	} {
		if got := r.layerForSize(c.w, c.h); got != c.want {
			t.Errorf("layerForSize(%d, %d) = %d, want %d", c.w, c.h, got, c.want)
		}
	}
}

// Before a layer's first keyframe its size is guessed from the known
// layers (4/2/1 scaling), so a subscriber asking for a medium-sized tile
// early is not given the top layer because its size is still unknown.
func TestLayerForSizeGuessesUnknownLayers(t *testing.T) {
	r, _, _ := newTestReceiver(3, 0)
	if got := r.layerForSize(700, 400); got != 2 {
		t.Fatalf("nothing known: LayerForSize = %d, want 2 (assumed to fit)", got)
	}
	(&feeder{}).send(r, 0, true, time.Now().UnixNano()) // only the low layer: 320x180
	for _, c := range []struct{ w, h, want int }{
		{700, 400, 1}, {1280, 720, 2}, {400, 200, 0}, {0, 0, 2},
	} {
		if got := r.layerForSize(c.w, c.h); got != c.want {
			t.Errorf("low layer known: LayerForSize(%d, %d) = %d, want %d", c.w, c.h, got, c.want)
		}
	}
	r2, _, _ := newTestReceiver(3, 0)
	f := &feeder{}
	f.send(r2, 2, true, time.Now().UnixNano()) // only the top layer: 1280x720
	if got := r2.layerForSize(700, 400); got != 1 {
		t.Errorf("top layer known: LayerForSize(700, 400) = %d, want 1", got)
	}
}

// A moderator's block stops a track for every subscriber; unblocked, each
// restarts at a keyframe with its numbering continuing.
func TestBlockedTrackStopsAndResumesAtAKeyframe(t *testing.T) {
	r, _, ws := newTestReceiver(1, 2)
	for _, w := range ws {
		w.keep = true
	}
	f := &feeder{}
	now := time.Now().UnixNano()
	f.send(r, 0, true, now)
	f.send(r, 0, false, now)
	r.SetBlocked(true)
	if !r.Blocked() {
		t.Fatal("not blocked")
	}
	f.send(r, 0, true, now)
	f.send(r, 0, false, now)
	for i, w := range ws {
		if w.packets != 2 {
			t.Fatalf("subscriber %d got %d packets while blocked", i, w.packets)
		}
	}
	r.SetBlocked(false)
	f.send(r, 0, false, now) // not a keyframe: cannot restart here
	f.send(r, 0, true, now)
	for i, w := range ws {
		if w.packets != 3 || w.seqs[2] != w.seqs[1]+1 {
			t.Fatalf("subscriber %d after unblocking: %d packets, seqs %v", i, w.packets, w.seqs)
		}
	}
}

// The audio level extension is read from every packet: the last level and
// the mean loudness since the room last looked.
func TestAudioLevels(t *testing.T) {
	r := &Receiver{id: "A", kind: webrtc.RTPCodecTypeAudio, ck: codec.Opus, levelExtID: 1,
		peer: &Peer{closed: make(chan struct{}), log: quiet}, done: make(chan struct{})}
	r.audioLevel.Store(-1)
	l := &recvLayer{cache: packetcache.New(audioCacheSize)}
	r.layers[0].Store(l)
	if r.AudioLevel() != -1 || r.TakeLoudness() != 0 {
		t.Fatal("levels before any packet")
	}
	for i, lvl := range []byte{127, 27, 0x80 | 7} { // the top bit is the voice flag
		p := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i)}, Payload: []byte{1}}
		if err := p.SetExtension(1, []byte{lvl}); err != nil {
			t.Fatal(err)
		}
		raw, _ := p.Marshal()
		r.handlePacket(l, raw, &p, int64(i))
	}
	if r.AudioLevel() != 7 {
		t.Fatalf("level %d, want 7", r.AudioLevel())
	}
	if got := r.TakeLoudness(); got != (0+100+120)/3 {
		t.Fatalf("loudness %d, want %d", got, (0+100+120)/3)
	}
	if r.TakeLoudness() != 0 {
		t.Fatal("loudness not reset")
	}
}

// Padding keeps no layer alive: Firefox pads its top layer's SSRC after it
// stopped encoding it under CPU load, and a subscriber targeting that layer
// would wait for a keyframe that never comes.
func TestPaddingDoesNotKeepALayerAlive(t *testing.T) {
	r, downs, _ := newTestReceiver(3, 1)
	d := downs[0]
	top := r.layers[2].Load()
	top.lastPacket.Store(time.Now().Add(-2 * layerStale).UnixNano())
	before := top.bytes.Load()
	for i := range 20 {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), SSRC: 3,
			Padding: true, PaddingSize: 255}}
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var parsed rtp.Packet
		if err := parsed.Unmarshal(raw); err != nil || len(parsed.Payload) != 0 {
			t.Fatalf("padding packet parsed with %d payload bytes: %v", len(parsed.Payload), err)
		}
		r.handlePacket(top, raw, &parsed, time.Now().UnixNano())
	}
	if got := r.bestLayerAtMost(2); got != 1 {
		t.Fatalf("with only padding on the top layer, the best layer is %d, want 1 (medium)", got)
	}
	if top.bytes.Load() != before {
		t.Errorf("padding counted in the layer's rate: %d bytes", top.bytes.Load()-before)
	}
	r.retarget()
	if d.target != 1 {
		t.Fatalf("subscriber targets layer %d, want 1", d.target)
	}
	// Media on the top layer brings it back.
	(&feeder{}).send(r, 2, false, time.Now().UnixNano())
	if got := r.bestLayerAtMost(2); got != 2 {
		t.Fatalf("after media on the top layer, the best layer is %d, want 2", got)
	}
}

// A track that shows nothing yet starts on the first keyframe of any layer
// up to its target, then moves up at the target's keyframe; a track already
// showing a layer still switches only to the target.
func TestStartsOnAnyLayerUpToTheTarget(t *testing.T) {
	r, downs, ws := newTestReceiver(3, 1)
	d, w := downs[0], ws[0]
	d.SetMaxLayer(1)
	f := &feeder{}
	now := time.Now().UnixNano()
	f.send(r, 2, true, now) // above the target: never taken
	if w.packets != 0 || d.current != noLayer {
		t.Fatalf("started on a layer above the target: layer %d, %d packets", d.current, w.packets)
	}
	f.send(r, 1, false, now)
	f.send(r, 0, true, now)
	if d.current != 0 || w.packets != 1 {
		t.Fatalf("did not start on the low layer's keyframe: layer %d, %d packets", d.current, w.packets)
	}
	f.send(r, 0, false, now)
	f.send(r, 1, false, now) // the target, but not a keyframe
	if d.current != 0 || w.packets != 2 {
		t.Fatalf("left the low layer before the target's keyframe: layer %d, %d packets", d.current, w.packets)
	}
	f.send(r, 1, true, now)
	if d.current != 1 || w.packets != 3 {
		t.Fatalf("not on the target after its keyframe: layer %d, %d packets", d.current, w.packets)
	}
	// Showing the medium layer, a low keyframe is no reason to go down.
	f.send(r, 0, true, now)
	if d.current != 1 || w.packets != 3 {
		t.Fatalf("went down without a reason: layer %d, %d packets", d.current, w.packets)
	}
}
