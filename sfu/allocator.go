package sfu

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

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
// the first video, which keeps its lowest layer). When something is held
// back, the allocator probes for more room (probe.go).
type allocator struct {
	peer     *Peer
	est      cc.BandwidthEstimator // send-side GCC from this subscriber's TWCC
	twcc     atomic.Bool           // the subscriber sends TWCC feedback
	remb     atomic.Int64          // the subscriber's last REMB, bit/s
	estimate atomic.Int64          // the estimate last used, bit/s (0: unknown)

	// TWCC packet counts since the allocator last looked: a fast loss signal.
	fbTotal, fbReceived atomic.Int64

	// Owned by the allocator goroutine.
	probe   prober
	lastGCC int64
	planned int64 // bit/s of what the last allocation forwards
	desired int64 // bit/s if every track got what its subscriber asked for
}

// feedback counts one TWCC report's packets.
func (a *allocator) feedback(total, received int) {
	a.fbTotal.Add(int64(total))
	a.fbReceived.Add(int64(received))
}

// takeLoss returns the loss ratio reported since the previous call.
func (a *allocator) takeLoss() (float64, bool) {
	total := a.fbTotal.Swap(0)
	recv := a.fbReceived.Swap(0)
	if total <= 0 {
		return 0, false
	}
	return float64(total-recv) / float64(total), true
}

func newAllocator(p *Peer, est cc.BandwidthEstimator) *allocator {
	return &allocator{peer: p, est: est}
}

// currentEstimate returns the subscriber's available bandwidth: GCC when it
// sends TWCC feedback, else its REMB, else 0 (unknown: nothing is capped).
func (a *allocator) currentEstimate() int64 {
	if a.twcc.Load() && a.est != nil {
		return int64(a.est.GetTargetBitrate())
	}
	return a.remb.Load()
}

// run re-allocates periodically, and paces probes, until the peer closes.
func (a *allocator) run() {
	t := time.NewTicker(allocateEvery)
	defer t.Stop()
	pace := time.NewTicker(probePace)
	defer pace.Stop()
	for {
		select {
		case <-a.peer.closed:
			return
		case <-t.C:
			a.allocate(time.Now())
		case <-pace.C:
			if a.probe.active {
				a.sendProbe()
			}
		}
	}
}

// allocate computes every video DownTrack's bandwidth cap.
func (a *allocator) allocate(now time.Time) {
	gcc := a.currentEstimate()
	loss, haveLoss := a.takeLoss()
	est := a.probe.update(now, gcc, a.lastGCC, loss, haveLoss)
	a.lastGCC = gcc
	a.estimate.Store(est)
	downs := a.peer.DownTracks()
	var videos []*DownTrack
	budget := est
	for _, d := range downs {
		if d.recv.kind == webrtc.RTPCodecTypeAudio {
			budget -= max(d.recv.layerRate(0), audioReserve)
			continue
		}
		if d.subscriberPaused() {
			continue
		}
		videos = append(videos, d)
	}
	if est <= 0 {
		for _, d := range videos {
			d.setBandwidthLayer(maxLayers - 1)
		}
		return
	}
	full := est - budget // audio
	desired := full
	for _, d := range videos {
		if l := d.recv.bestLayerAtMost(d.requestedLayer()); l != noLayer {
			desired += d.recv.layerRate(l)
		}
	}
	sort.SliceStable(videos, func(i, j int) bool {
		pi, pj := videos[i].priority(), videos[j].priority()
		if pi != pj {
			return pi > pj
		}
		return videos[i].recv.id < videos[j].recv.id
	})
	// Leave headroom: GCC's estimate is a ceiling, not a target.
	budget = budget * 9 / 10
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
		if r := d.recv.layerRate(low); r <= budget || i == 0 {
			chosen[i] = low
			budget -= r
		}
	}
	for i, d := range videos {
		if chosen[i] == noLayer {
			continue
		}
		want := d.requestedLayer()
		base := d.recv.layerRate(chosen[i])
		for l := want; l > chosen[i]; l-- {
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
	planned := full
	for i, d := range videos {
		d.setBandwidthLayer(chosen[i])
		if chosen[i] != noLayer {
			planned += d.recv.layerRate(chosen[i])
		}
	}
	a.planned, a.desired = planned, desired
	// Something is held back: find out whether the link has more room.
	if desired*10 > est*9 && !a.probe.busy() && now.After(a.probe.next) {
		a.probe.start(now, est, a.probe.goalFor(est, desired))
	}
}

// sendProbe tops up what is forwarded with padding to the probe's rate.
func (a *allocator) sendProbe() {
	extra := a.probe.goal - a.planned
	if extra <= 0 {
		return
	}
	bytes := int(extra / 8 * int64(probePace) / int64(time.Second))
	for _, d := range a.peer.DownTracks() {
		if d.canProbe() {
			d.writePadding(bytes)
			return
		}
	}
}

// priority orders video for allocation: screen shares first.
func (d *DownTrack) priority() int {
	if d.recv.source == "screen" {
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
