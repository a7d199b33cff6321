package sfu

import (
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
)

// Load shedding: while its node is loaded, an Engine holds back part of
// what its subscribers asked for, the same for every subscriber: video
// above a layer cap, and video a subscriber receives in the background
// (a hidden tab, Limit.Background). Each DownTrack applies it when it
// picks its target (shedTarget), so a switch waits for a keyframe like any
// other, and lifting it restores what each subscriber asked for.

// Shed is what an Engine holds back.
type Shed struct {
	// MaxLayer caps every forwarded video's layer, 0 (low) to 2 (high).
	MaxLayer int
	// PauseBackground stops video its subscriber receives in the
	// background.
	PauseBackground bool
}

// NoShed holds nothing back.
var NoShed = Shed{MaxLayer: maxLayers - 1}

// shedState is an Engine's Shed; nil holds nothing back.
type shedState = atomic.Pointer[Shed]

// SetShed changes what the engine holds back and retargets every
// subscriber of every live track.
func (e *Engine) SetShed(s Shed) {
	s.MaxLayer = max(0, min(s.MaxLayer, maxLayers-1))
	e.shed.Store(&s)
	e.tracksMu.Lock()
	recvs := make([]*Receiver, 0, len(e.tracks))
	for _, r := range e.tracks {
		recvs = append(recvs, r)
	}
	e.tracksMu.Unlock()
	for _, r := range recvs {
		r.retarget()
	}
}

// Shed is what the engine holds back now.
func (e *Engine) Shed() Shed {
	if s := e.shed.Load(); s != nil {
		return *s
	}
	return NoShed
}

// shedCap is the layer the engine's shedding lets this video subscriber
// have at most; off when it pauses the track (background video).
func (d *DownTrack) shedCap() (limit int8, off bool) {
	if d.peer != nil && d.peer.engine != nil {
		if s := d.peer.engine.shed.Load(); s != nil {
			return int8(s.MaxLayer), s.PauseBackground && d.background.Load()
		}
	}
	return maxLayers - 1, false
}

// shedTarget lowers the layer a video subscriber would get (want: its
// own cap and its bandwidth's) to what the engine's shedding allows, and
// picks the best layer the publisher sends at most that.
func (d *DownTrack) shedTarget(want int8) int8 {
	limit, off := d.shedCap()
	if off {
		return noLayer
	}
	return d.recv.bestLayerAtMost(min(want, limit))
}

// SetBackground says whether the subscriber receives the track in the
// background (its tab hidden): such video is the first paused when the
// engine sheds load.
func (d *DownTrack) SetBackground(b bool) {
	if d.background.Swap(b) != b {
		d.updateTarget()
	}
}

// ForwardedTotals are the RTP packets and bytes forwarded to subscribers
// since the process started (every Engine's), for load measurement.
func ForwardedTotals() (packets, bytes uint64) {
	var m dto.Metric
	if metricPacketsOut.Write(&m) == nil {
		packets = uint64(m.GetCounter().GetValue())
	}
	m.Reset()
	if metricBytesOut.Write(&m) == nil {
		bytes = uint64(m.GetCounter().GetValue())
	}
	return packets, bytes
}
