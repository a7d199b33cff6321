package sfu

import (
	"fmt"
	"testing"
	"time"

	"github.com/confab-sfu/confab/sfu/packetcache"
	"github.com/confab-sfu/confab/sfu/queuing"
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
// receivers with the given layer rates (no PeerConnection).
func newAllocTest(t *testing.T, tracks []track) (*allocator, []*DownTrack) {
	t.Helper()
	var downs []*DownTrack
	sub := &Peer{id: "sub", closed: make(chan struct{}), log: quiet}
	sub.alloc = newAllocator(nil, func() []*DownTrack { return downs })
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
			a, downs := newAllocTest(t, tc.tracks)
			a.receiverEstimate(tc.est)
			now := time.Unix(1000, 0)
			a.allocate(now)
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
			if a.probe.Busy() != tc.probe {
				t.Errorf("probing %v, want %v", a.probe.Busy(), tc.probe)
			}
		})
	}
}

// Transport-wide feedback replaces REMB as the estimate's source, and its
// loss counts feed the prober.
func TestAllocatorFeedback(t *testing.T) {
	a, _ := newAllocTest(t, nil)
	a.receiverEstimate(700_000)
	if a.currentEstimate() != 700_000 {
		t.Fatalf("REMB estimate %d", a.currentEstimate())
	}
	a.transportFeedback(100, 90)
	a.transportFeedback(100, 100)
	if loss, ok := a.takeLoss(); !ok || loss != 0.05 {
		t.Fatalf("loss %v %v, want 5 %%", loss, ok)
	}
	if _, ok := a.takeLoss(); ok {
		t.Fatal("loss reported twice")
	}
	if !a.twcc.Load() {
		t.Fatal("TWCC feedback not noted: the estimate would stay on REMB")
	}
}

// Where one-way delays are measured, a low estimate pauses video only while
// the path shows a queue: GCC falls far below what a path carries when the
// subscriber's arrival times are noisy (Firefox), and pausing a participant
// on that alone blanked them for good.
func TestAllocatorPausesOnlyWhenThePathQueues(t *testing.T) {
	const k = 1000
	for _, tc := range []struct {
		name  string
		queue int64 // µs added to the one-way delay of the last 500 ms
		want  int8  // the second video's cap
	}{
		{"no queue: every video keeps its lowest layer", 0, 0},
		{"a standing queue: the second video pauses", 60_000, noLayer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, downs := newAllocTest(t, []track{video("camera", 100*k), video("camera", 100*k)})
			a.delays = &delays{deps: &queuing.Departures{}}
			now := time.Now()
			a.delays.mon.Add(1000, now.Add(-5*time.Second))
			a.delays.mon.Add(1000+tc.queue, now)
			a.receiverEstimate(100 * k)
			a.allocate(now)
			if downs[0].bwLayer != 0 || downs[1].bwLayer != tc.want {
				t.Fatalf("caps %d and %d, want 0 and %d", downs[0].bwLayer, downs[1].bwLayer, tc.want)
			}
		})
	}
}
