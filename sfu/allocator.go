package sfu

import (
	"log/slog"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/confab-sfu/confab/sfu/probe"
	"github.com/confab-sfu/confab/sfu/rate"
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

// allocator shares one subscriber's bandwidth among the tracks forwarded to
// it: audio first, then screen shares, then cameras; every video gets its
// lowest layer before any gets a better one. The estimate comes from
// package rate, on the signals of the subscriber's pathEstimator.
//
// Pausing a video is the last resort, and a pause or resume never follows
// the previous one of the same track within minDwell (gate.go): a video
// already forwarded is paused only when its lowest layer has not fitted for
// pauseAfter while the path showed congestion, and resumed once it has
// fitted on a calm path for resumeAfter. The first video in priority order
// is never paused: a picture at low quality beats a frozen one, and it
// carries the probes that find out when the link improves.
//
// DownTracks feed the path estimator; the peer's run loop calls allocate
// and pad.
type allocator struct {
	downs    func() []*DownTrack // the subscriber's DownTracks
	path     pathEstimator
	log      *slog.Logger
	estimate atomic.Int64  // the estimate last used, bit/s (0: unknown)
	wake     chan struct{} // asks the run loop for an allocation now

	// Owned by the goroutine that calls allocate and pad.
	rate    rate.Controller
	updated bool // the rate controller has seen a period
	// queueKnown: the last period measured the path's queue
	queueKnown bool
	planned    int64 // bit/s of what the last allocation forwards
	verdict    verdict
}

// verdict is what the log last said of the path.
type verdict struct{ trusting, troubled, congested bool }

func newAllocator(path pathEstimator, downs func() []*DownTrack, log *slog.Logger) *allocator {
	return &allocator{path: path, downs: downs, log: log, wake: make(chan struct{}, 1)}
}

// kick asks for an allocation soon (a track was added): a new track must
// not start above what the subscriber's bandwidth allows.
func (a *allocator) kick() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// lastEstimate is the estimate the last allocation used, bit/s (0: unknown).
func (a *allocator) lastEstimate() int64 { return a.estimate.Load() }

// allocate takes one period's signals of the path and computes every
// video DownTrack's bandwidth cap.
func (a *allocator) allocate(now time.Time) {
	sig := a.path.signals(now)
	audio, videos := a.tracks()
	desired := desiredRate(audio, videos)
	est := a.rate.Update(now, sig, desired)
	a.queueKnown = sig.HaveQueue
	a.updated = true
	a.logVerdict(sig, est, desired)
	a.share(now, est, audio, videos)
	a.rate.Probe(now, est, desired)
}

// reshare computes the caps again within a period (a track was added),
// from the estimate as it stands.
func (a *allocator) reshare(now time.Time) {
	if !a.updated {
		a.allocate(now)
		return
	}
	audio, videos := a.tracks()
	a.share(now, a.rate.Peek(desiredRate(audio, videos)), audio, videos)
}

// desiredRate is what the tracks would use if nothing were held back.
func desiredRate(audio int64, videos []*DownTrack) int64 {
	desired := audio
	for _, d := range videos {
		if l := d.recv.bestLayerAtMost(d.requestedLayer()); l != noLayer {
			desired += d.recv.layerRate(l)
		}
	}
	return desired
}

// share caps every video to what est allows, through each one's pause
// hysteresis.
func (a *allocator) share(now time.Time, est, audio int64, videos []*DownTrack) {
	a.estimate.Store(est)
	if est <= 0 {
		for _, d := range videos {
			d.gate.start(now)
			d.setBandwidthLayer(maxLayers - 1)
		}
		return
	}
	modes := make([]allocMode, len(videos))
	for i, d := range videos {
		modes[i] = d.gate.mode(now)
	}
	// Leave headroom: an estimate is a ceiling, not a target.
	chosen, fits := chooseLayers(videos, (est-audio)*9/10, modes)
	a.planned = audio
	for i, d := range videos {
		d.gate.observe(now, chosen[i] != noLayer, fits[i], a.evidence())
		d.setBandwidthLayer(chosen[i])
		if chosen[i] != noLayer {
			a.planned += d.recv.layerRate(chosen[i])
		}
	}
}

// evidence is what the path shows for the pause hysteresis. Where no
// queue is measured (a subscriber without transport-wide feedback), its
// own estimate (REMB) is its receiver's verdict on the path: a video that
// does not fit it is evidence enough.
func (a *allocator) evidence() evidence {
	calm := !a.rate.Troubled()
	if !a.queueKnown {
		return evidence{calm: calm, troubled: true, congested: true}
	}
	return evidence{calm: calm, troubled: !calm, congested: a.rate.Congested()}
}

// logVerdict logs (debug) when the path's verdict changes.
func (a *allocator) logVerdict(s rate.Signals, est, desired int64) {
	v := verdict{a.rate.Trusting(), a.rate.Troubled(), a.rate.Congested()}
	if v == a.verdict || a.log == nil {
		return
	}
	a.verdict = v
	a.log.Debug("path", "trusting", v.trusting, "troubled", v.troubled, "congested", v.congested, "estimate", est,
		"desired", desired, "estimator", s.Estimate, "loss", s.Loss, "queue", s.Queue, "delivered", s.Delivered)
}

// tracks returns what the subscriber's audio needs, bit/s, and the video
// to share the rest among, in priority order. Video the subscriber paused
// needs nothing, and starts afresh when it comes back.
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
		if d.subscriberPaused() {
			d.gate = gate{}
			continue
		}
		videos = append(videos, d)
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
// subscriber asked for. A video left at noLayer is paused. fits says
// whether each video's lowest layer fitted what was left at its turn; the
// modes decide the rest: a kept video gets its lowest layer whatever the
// budget, a held one nothing. The first video always fits.
func chooseLayers(videos []*DownTrack, budget int64, modes []allocMode) (chosen []int8, fits []bool) {
	chosen, fits = make([]int8, len(videos)), make([]bool, len(videos))
	for i, d := range videos {
		chosen[i] = noLayer
		low := d.recv.bestLayerAtMost(0)
		if low == noLayer {
			continue
		}
		r := d.recv.layerRate(low)
		fits[i] = r <= budget || i == 0
		if modes[i] != hold && (fits[i] || modes[i] == keep) {
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
	return chosen, fits
}

// pad tops up what is forwarded with padding up to the probe's goal, on
// one track that can carry it.
func (a *allocator) pad() {
	on, goal := a.rate.Padding()
	if !on {
		return
	}
	extra := goal - a.planned
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
