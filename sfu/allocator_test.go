package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/packetcache"
	"github.com/confab-sfu/confab/sfu/rate"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// track describes one subscribed track for an allocator test.
type track struct {
	kind   webrtc.RTPCodecType
	source string
	rates  []int64 // measured bit/s per layer; 0: not measured yet
	max    int     // the subscriber's cap
	paused bool    // paused by the subscriber
}

func video(source string, rates ...int64) track {
	return track{kind: webrtc.RTPCodecTypeVideo, source: source, rates: rates, max: maxLayers - 1}
}

// newAllocTest builds one subscriber's allocator over DownTracks of
// receivers with the given layer rates (no PeerConnection), estimating its
// path with path (nil: a send path without feedback, so REMB only).
func newAllocTest(t *testing.T, path pathEstimator, tracks []track) (*allocator, []*DownTrack) {
	t.Helper()
	if path == nil {
		sp := newSendPath()
		sp.streamBound(false) // a subscriber that took no transport-wide numbers
		path = sp
	}
	var downs []*DownTrack
	sub := &Peer{id: "sub", closed: make(chan struct{}), log: quiet}
	sub.alloc = newAllocator(path, func() []*DownTrack { return downs }, quiet)
	for i, tc := range tracks {
		r := &Receiver{id: TrackID(fmt.Sprintf("T%d", i)), kind: tc.kind, source: Source(tc.source), simulcast: len(tc.rates) > 1,
			codec: webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{ClockRate: 90000}},
			peer:  &Peer{id: "pub", closed: make(chan struct{}), log: quiet}, done: make(chan struct{})}
		for l, rate := range tc.rates {
			layer := &recvLayer{idx: int8(l), cache: packetcache.New(1)}
			layer.lastPacket.Store(time.Now().Add(time.Hour).UnixNano()) // live
			layer.lastKeyReq.Store(1 << 62)                              // no PLIs: there is no PeerConnection
			layer.bitrate.Store(rate)
			r.layers[l].Store(layer)
		}
		d := newDownTrack(r, sub)
		d.maxLayer = int8(tc.max)
		d.paused = tc.paused
		downs = append(downs, d)
	}
	return sub.alloc, downs
}

func TestAllocatorSharesTheEstimate(t *testing.T) {
	const k = 1000
	tests := []struct {
		name   string
		est    int64 // the subscriber's REMB, bit/s
		tracks []track
		want   []int8 // bandwidth cap per track (audio: ignored)
		probe  bool   // something is held back: a probe starts
	}{
		{"unknown estimate caps nothing", 0,
			[]track{video("camera", 100*k, 300*k, 1000*k)}, []int8{2}, false},
		{"room for the top layer", 2000 * k,
			[]track{video("camera", 100*k, 300*k, 1000*k)}, []int8{2}, false},
		{"the best layer that fits", 500 * k, // 450k usable: low, then mid (+200k)
			[]track{video("camera", 100*k, 300*k, 1000*k)}, []int8{1}, true},
		{"unmeasured layers count at typical rates", 600 * k, // low 150k + mid +350k = 500k of 540k
			[]track{video("camera", 0, 0, 0)}, []int8{1}, true},
		{"audio first", 300 * k, // (300k - 48k audio) * 0.9 = 227k: low only
			[]track{{kind: webrtc.RTPCodecTypeAudio, rates: []int64{0}}, video("camera", 100*k, 300*k, 1000*k)}, []int8{0, 0}, true},
		{"audio not arriving yet (relayed) needs its reserve", 300 * k,
			[]track{{kind: webrtc.RTPCodecTypeAudio}, video("camera", 100*k), video("camera", 100*k)}, []int8{0, 0, 0}, false},
		{"the first video keeps its lowest layer, others pause", 100 * k,
			[]track{video("camera", 100*k), video("camera", 100*k)}, []int8{0, noLayer}, true},
		{"screen shares come first", 150 * k,
			[]track{video("camera", 100*k, 300*k), video("screen", 100*k)}, []int8{noLayer, 0}, true},
		{"lowest layers for all before upgrades", 400 * k, // 360k: two lows (200k), then one mid (+200k) does not fit
			[]track{video("camera", 100*k, 300*k), video("camera", 100*k, 300*k)}, []int8{0, 0}, true},
		{"the subscriber's cap holds", 5000 * k,
			[]track{{kind: webrtc.RTPCodecTypeVideo, source: "camera", rates: []int64{100 * k, 300 * k, 1000 * k}, max: 1}}, []int8{1}, false},
		{"video the subscriber paused takes nothing", 250 * k,
			[]track{{kind: webrtc.RTPCodecTypeVideo, source: "screen", rates: []int64{200 * k}, max: 2, paused: true}, video("camera", 100*k, 300*k)},
			[]int8{2, 0}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, downs := newAllocTest(t, nil, tc.tracks)
			a.path.receiverEstimate(tc.est)
			// Three periods: a probe waits for the path to be calm for
			// half a second.
			now := time.Unix(1000, 0)
			for i := range 3 {
				a.allocate(now.Add(time.Duration(i) * 250 * time.Millisecond))
			}
			for i, d := range downs {
				if d.recv.kind == webrtc.RTPCodecTypeAudio {
					continue
				}
				if d.bwLayer != tc.want[i] {
					t.Errorf("track %d (%s): cap %d, want %d", i, d.recv.source, d.bwLayer, tc.want[i])
				}
			}
			if a.lastEstimate() != tc.est {
				t.Errorf("estimate %d, want %d", a.lastEstimate(), tc.est)
			}
			if a.rate.Probing() != tc.probe {
				t.Errorf("probing %v, want %v", a.rate.Probing(), tc.probe)
			}
		})
	}
}

// scriptedPath hands the allocator the signals a test sets.
type scriptedPath struct{ s rate.Signals }

func (p *scriptedPath) transportFeedback(*rtcp.TransportLayerCC, time.Time) {}
func (p *scriptedPath) receiverEstimate(int64)                              {}
func (p *scriptedPath) signals(time.Time) rate.Signals                      { return p.s }

// Pausing is the last resort and never toggles fast: a video already
// forwarded is kept while the path is calm however low the estimate, paused
// only after pauseAfter of trouble with congestion, and resumed after
// resumeAfter of calm, never within minDwell of its previous switch.
func TestAllocatorPauseHysteresis(t *testing.T) {
	const k = 1000
	path := &scriptedPath{}
	a, downs := newAllocTest(t, path, []track{video("camera", 1000*k), video("camera", 1000*k)})
	now := time.Unix(1000, 0)
	// periods runs n allocation periods of 250 ms on signals s and returns
	// the first at which the second video's state differs from forwarded
	// (-1: none).
	periods := func(n int, s rate.Signals, forwarded bool) int {
		path.s = s
		for i := range n {
			a.allocate(now)
			now = now.Add(250 * time.Millisecond)
			if (downs[1].bwLayer != noLayer) != forwarded {
				return i
			}
		}
		return -1
	}
	calm := func(est, delivered int64) rate.Signals {
		return rate.Signals{Estimate: est, HaveLoss: true, HaveQueue: true, Delivered: delivered}
	}
	if i := periods(4, calm(3000*k, 0), true); i != -1 {
		t.Fatalf("room for both, yet the second video is off at period %d", i)
	}
	// A low estimate on a calm path pauses nothing.
	if i := periods(40, calm(1200*k, 0), true); i != -1 {
		t.Fatalf("paused at period %d on a calm path", i)
	}
	// Congestion: paused after a second of it (4 periods), not before.
	lossy := calm(1200*k, 0)
	lossy.Loss, lossy.Queue = 0.1, 40*time.Millisecond
	if i := periods(8, lossy, true); i != 4 {
		t.Fatalf("paused at period %d of congestion, want 4", i)
	}
	if downs[0].bwLayer == noLayer {
		t.Fatal("the first video was paused")
	}
	// Calm with room again: resumed minDwell after the pause, not before.
	dwell := int(minDwell/(250*time.Millisecond)) - 1
	if i := periods(24, calm(3000*k, 3000*k), false); i != dwell {
		t.Fatalf("resumed at period %d of calm, want %d", i, dwell)
	}
	// Paused again soon after: each next resume waits twice as long for
	// calm (4 s, within minDwell, then 8 s).
	again := calm(1200*k, 1200*k)
	again.Loss, again.Queue = 0.1, 40*time.Millisecond
	for round, want := range []int{dwell, 8000 / 250} { // 8 s from the first calm period
		if i := periods(40, again, true); i != dwell {
			t.Fatalf("round %d: paused at period %d of congestion, want %d (minDwell after the resume)", round, i, dwell)
		}
		if i := periods(40, calm(3000*k, 3000*k), false); i != want {
			t.Fatalf("round %d: resumed at period %d of calm, want %d", round, i, want)
		}
	}
}
