package sfu

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/probe"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"
)

// allocateEvery is how often a subscriber's bandwidth is re-shared.
const allocateEvery = 250 * time.Millisecond

// audioReserve is what an audio track is assumed to need before its rate
// is measured, bit/s.
const audioReserve = 48_000

// defaultLayerRates are assumed for layers whose rate is not measured yet
// (low, medium, high), bit/s: typical browser simulcast at 720p.
var defaultLayerRates = [maxLayers]int64{150_000, 500_000, 1_500_000}

// allocator shares one subscriber's estimated downstream bandwidth among the
// tracks forwarded to it: audio first, then screen shares, then cameras;
// every video gets its lowest layer before any gets a better one, and video
// that cannot fit is paused rather than letting everything freeze (except
// the first video, which keeps its lowest layer; and none is paused where
// measured one-way delays show the path is not congested). When something
// is held back, the allocator probes for more room (package probe).
//
// DownTracks feed it the subscriber's feedback (transportFeedback,
// receiverEstimate); the peer's run loop calls allocate and pad.
type allocator struct {
	downs    func() []*DownTrack   // the subscriber's DownTracks
	est      cc.BandwidthEstimator // send-side GCC from this subscriber's TWCC
	twcc     atomic.Bool           // the subscriber sends TWCC feedback
	remb     atomic.Int64          // the subscriber's last REMB, bit/s
	estimate atomic.Int64          // the estimate last used, bit/s (0: unknown)

	// TWCC packet counts since the allocator last looked: a fast loss signal.
	fbTotal, fbReceived atomic.Int64
	// The queuing delay TWCC feedback shows (nil without departures).
	delays *delays

	// Owned by the goroutine that calls allocate and pad.
	probe   probe.Prober
	planned int64 // bit/s of what the last allocation forwards
	desired int64 // bit/s if every track got what its subscriber asked for
}

func newAllocator(est cc.BandwidthEstimator, downs func() []*DownTrack) *allocator {
	return &allocator{est: est, downs: downs}
}

// transportFeedback counts one TWCC report's packets. From the first one
// on, the estimate is GCC's rather than REMB's.
func (a *allocator) transportFeedback(total, received int) {
	a.twcc.Store(true)
	a.fbTotal.Add(int64(total))
	a.fbReceived.Add(int64(received))
}

// receiverEstimate records the subscriber's REMB, bit/s.
func (a *allocator) receiverEstimate(bps int64) { a.remb.Store(bps) }

// lastEstimate is the estimate the last allocation used, bit/s (0: unknown).
func (a *allocator) lastEstimate() int64 { return a.estimate.Load() }

// takeLoss returns the loss ratio reported since the previous call.
func (a *allocator) takeLoss() (float64, bool) {
	total := a.fbTotal.Swap(0)
	recv := a.fbReceived.Swap(0)
	if total <= 0 {
		return 0, false
	}
	return float64(total-recv) / float64(total), true
}

// currentEstimate returns the subscriber's available bandwidth: GCC when it
// sends TWCC feedback, else its REMB, else 0 (unknown: nothing is capped).
func (a *allocator) currentEstimate() int64 {
	if a.twcc.Load() && a.est != nil {
		return int64(a.est.GetTargetBitrate())
	}
	return a.remb.Load()
}

// allocate computes every video DownTrack's bandwidth cap.
func (a *allocator) allocate(now time.Time) {
	loss, haveLoss := a.takeLoss()
	// Where one-way delays are measured, a standing queue, not a falling
	// estimate, tells the prober that the path is congested: GCC reads
	// the scatter of noisy arrival times (Firefox's) as congestion.
	queue, measured := a.delays.queuing(now)
	a.probe.SetQueuing(queue, measured)
	est := a.probe.Update(now, a.currentEstimate(), loss, haveLoss)
	a.estimate.Store(est)
	audio, videos := a.tracks()
	if est <= 0 {
		for _, d := range videos {
			d.setBandwidthLayer(maxLayers - 1)
		}
		return
	}
	// Leave headroom: GCC's estimate is a ceiling, not a target. Pausing
	// blanks a participant, so it takes evidence: where one-way delays are
	// measured, only a path that shows a queue or loss pauses video; a low
	// estimate without either is GCC misreading noisy arrival times, and
	// every video keeps at least its lowest layer.
	mayPause := !measured || a.probe.Congested()
	chosen := chooseLayers(videos, (est-audio)*9/10, mayPause)
	planned, desired := audio, audio
	for i, d := range videos {
		d.setBandwidthLayer(chosen[i])
		if chosen[i] != noLayer {
			planned += d.recv.layerRate(chosen[i])
		}
		if l := d.recv.bestLayerAtMost(d.requestedLayer()); l != noLayer {
			desired += d.recv.layerRate(l)
		}
	}
	a.planned, a.desired = planned, desired
	// Something is held back: find out whether the link has more room.
	if desired*10 > est*9 && a.probe.Due(now) {
		a.probe.Start(now, est, a.probe.GoalFor(est, desired))
	}
}

// tracks returns what the subscriber's audio needs, bit/s, and the video
// to share the rest among, in priority order (subscriber-paused video
// needs nothing).
func (a *allocator) tracks() (audio int64, videos []*DownTrack) {
	for _, d := range a.downs() {
		if d.recv.kind == webrtc.RTPCodecTypeAudio {
			// A relayed track exists before its first packet: until then
			// it needs its reserve, not the unaffordable rate of a layer
			// that is not there.
			if d.recv.layer(0) != nil {
				audio += max(d.recv.layerRate(0), audioReserve)
			} else {
				audio += audioReserve
			}
			continue
		}
		if !d.subscriberPaused() {
			videos = append(videos, d)
		}
	}
	sort.SliceStable(videos, func(i, j int) bool {
		pi, pj := videos[i].priority(), videos[j].priority()
		if pi != pj {
			return pi > pj
		}
		return videos[i].recv.id < videos[j].recv.id
	})
	return audio, videos
}

// chooseLayers shares budget (bit/s) among videos, in their order: first
// every video's lowest live layer, then upgrades toward what each
// subscriber asked for. A video left at noLayer is paused; without
// mayPause, every video gets its lowest layer whatever the budget.
func chooseLayers(videos []*DownTrack, budget int64, mayPause bool) []int8 {
	chosen := make([]int8, len(videos))
	for i, d := range videos {
		chosen[i] = noLayer
		low := d.recv.bestLayerAtMost(0)
		if low == noLayer {
			continue
		}
		// The first video in priority order always keeps its lowest layer:
		// a picture at low quality beats a frozen one, and it carries the
		// probes that find out when the link improves. Others pause.
		if r := d.recv.layerRate(low); r <= budget || i == 0 || !mayPause {
			chosen[i] = low
			budget -= r
		}
	}
	for i, d := range videos {
		if chosen[i] == noLayer {
			continue
		}
		base := d.recv.layerRate(chosen[i])
		for l := d.requestedLayer(); l > chosen[i]; l-- {
			if d.recv.layer(l) == nil {
				continue
			}
			if extra := d.recv.layerRate(l) - base; extra <= budget {
				budget -= extra
				chosen[i] = l
				break
			}
		}
	}
	return chosen
}

// pad tops up what is forwarded with padding up to the probe's goal, on
// one track that can carry it.
func (a *allocator) pad() {
	if !a.probe.Padding() {
		return
	}
	extra := a.probe.Goal() - a.planned
	if extra <= 0 {
		return
	}
	bytes := int(extra / 8 * int64(probe.Pace) / int64(time.Second))
	for _, d := range a.downs() {
		if d.canProbe() {
			d.writePadding(bytes)
			return
		}
	}
}

// priority orders video for allocation: screen shares first.
func (d *DownTrack) priority() int {
	if d.recv.source == SourceScreen {
		return 1
	}
	return 0
}

func (d *DownTrack) subscriberPaused() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paused
}

func (d *DownTrack) requestedLayer() int8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.maxLayer
}

// setBandwidthLayer applies the allocator's cap (noLayer pauses the track).
func (d *DownTrack) setBandwidthLayer(l int8) {
	d.mu.Lock()
	same := d.bwLayer == l
	d.bwLayer = l
	d.mu.Unlock()
	if !same {
		d.updateTarget()
	}
}

// layerRate is a layer's measured bitrate, or a typical one until measured.
func (r *Receiver) layerRate(i int8) int64 {
	l := r.layer(i)
	if l == nil {
		return math.MaxInt32
	}
	if b := l.bitrate.Load(); b > 0 {
		return b
	}
	if r.kind == webrtc.RTPCodecTypeAudio {
		return audioReserve
	}
	return defaultLayerRates[i]
}
